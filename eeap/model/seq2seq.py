"""The sequence-to-sequence core that translation and captioning share: a decoder over an encoder's memory, its
teacher-forced loss (label smoothing, the doubly stochastic attention penalty, the attentions' own auxiliary losses),
greedy and beam decoding, and the metrics (exact match, token accuracy, BLEU and chrF from sacrebleu's statistics).

A task computes the memory from its own source (tokens, an image) and hands it here; what it plots and what
``predict`` reads stay the task's own."""

from __future__ import annotations

import abc
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eeap import threads
from eeap.attend.base import Attention, head_mean, noting
from eeap.data.text import BOS, PAD, Tokenizer, pad
from eeap.model.prediction import DecodeOptions, Problems, rounded
from eeap.model.task import Example, Task
from eeap.predict.base import SequenceDecoder
from eeap.predict.search import Hypotheses, beam_search


def auxiliary_attentions(module: nn.Module) -> list[Attention]:
    """The attentions inside ``module`` that have an auxiliary loss of their own (hard, gated)."""
    return [
        m
        for m in module.modules()
        if isinstance(m, Attention) and type(m).auxiliary_loss is not Attention.auxiliary_loss
    ]


class Seq2Seq(nn.Module):
    """Decoder, loss, decoding and metrics over an encoder's memory.

    # Parameters
    decoder: the sequence decoder (with its attention).
    target: the target tokenizer (decodes outputs for the metrics).
    max_output_len: the longest output decoded.
    label_smoothing: cross-entropy label smoothing.
    beam_size, length_penalty: decoding at test time (validation decodes greedily).
    attention_penalty: λ of Show, Attend and Tell's doubly stochastic regularisation, λ · mean_i (1 − Σ_t α_ti)².
    bleu_tokenize: sacrebleu's tokenizer for BLEU (``13a`` for sentences, ``none`` for text already split into
        tokens by spaces, such as formula markup).
    """

    SCORES = ("exact_match", "token_accuracy", "bleu", "chrf")  # each split's metrics, as ``evaluate`` logs them

    def __init__(
        self,
        decoder: SequenceDecoder,
        target: Tokenizer,
        max_output_len: int,
        label_smoothing: float = 0.0,
        beam_size: int = 1,
        length_penalty: float = 0.0,
        attention_penalty: float = 0.0,
        bleu_tokenize: str = "13a",
    ) -> None:
        super().__init__()
        self.decoder, self.target = decoder, target
        self.max_output_len, self.label_smoothing = max_output_len, label_smoothing
        self.beam_size, self.length_penalty, self.attention_penalty = beam_size, length_penalty, attention_penalty
        self.bleu_tokenize = bleu_tokenize
        self.auxiliary = auxiliary_attentions(decoder)

    def new_metrics(self) -> dict[str, Any]:
        """One split's metrics: exact match and token accuracy (means), BLEU and chrF (sacrebleu's corpus scores)."""
        import torchmetrics

        from eeap.model.metrics import CorpusBLEU, CorpusChrF

        return {
            "exact_match": torchmetrics.MeanMetric(),
            "token_accuracy": torchmetrics.MeanMetric(),
            "bleu": CorpusBLEU(tokenize=self.bleu_tokenize),
            "chrf": CorpusChrF(),
        }

    def metric_names(self) -> list[str]:
        """What ``evaluate`` logs: the loss and the scores."""
        return ["loss", *self.SCORES]

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """Token cross-entropy (with label smoothing) over non-padding tokens; logits (batch, tgt_len, vocab)."""
        return F.cross_entropy(logits.transpose(1, 2), target, ignore_index=PAD, label_smoothing=self.label_smoothing)

    def doubly_stochastic(self, weights: Tensor, src_mask: Tensor, target: Tensor) -> Tensor:
        """λ · mean over valid source positions i of (1 − Σ_t α_ti)², the sum over t over real output tokens;
        averaged over the batch. weights (batch, tgt_len, src_len), or per head (batch, heads, tgt_len, src_len):
        then each head is penalised alone and the penalties averaged over heads. src_mask (batch, src_len).

        The paper sums over i; the mean keeps λ = 1 on the scale of a per-token cross-entropy whatever the grid size."""
        real = (target != PAD).to(weights.dtype).unsqueeze(-1)  # (batch, tgt_len, 1)
        valid = src_mask.to(weights.dtype)  # (batch, src_len)
        if weights.dim() == 4:  # per head
            real, valid = real.unsqueeze(1), valid.unsqueeze(1)  # (batch, 1, tgt_len, 1), (batch, 1, src_len)
        received = (weights * real).sum(-2)  # (batch, [heads,] src_len)
        penalty = ((1 - received) ** 2 * valid).sum(-1) / valid.sum(-1).clamp(min=1)  # (batch, [heads])
        return self.attention_penalty * penalty.mean()

    def training_loss(self, memory: Tensor, mask: Tensor, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        """The training loss of a batch (``tgt_in``, ``tgt_out``) over memory (batch, src_len, dim) and its mask,
        and the terms to log (``loss``, ``attention_penalty``, ``attention_loss``)."""
        penalise = self.attention_penalty > 0
        logits, weights = self.decoder(batch["tgt_in"], memory, mask, need_weights=penalise)
        target = batch["tgt_out"]
        loss = self.loss(logits, target)
        logs = {"loss": loss}
        if penalise and weights is not None:
            penalty = self.doubly_stochastic(weights, mask, target)
            logs["attention_penalty"] = penalty
            loss = loss + penalty
        if self.auxiliary:
            nll = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=PAD, reduction="none")  # (batch, tgt)
            log_likelihood = -nll.sum(1)  # (batch,) the reward of hard attention's REINFORCE
            extra = torch.stack([m.auxiliary_loss(log_likelihood) for m in self.auxiliary]).sum()
            logs["attention_loss"] = extra
            loss = loss + extra
        return loss, logs

    def decode(
        self,
        memory: Tensor,
        mask: Tensor,
        beam_size: Optional[int] = None,
        n_best: int = 1,
        length_penalty: Optional[float] = None,
        coverage: float = 0.0,
        progress: Optional[Callable[[Tensor], None]] = None,
    ) -> Hypotheses:
        """Greedy (beam 1) or beam search over memory (batch, src_len, dim): the best output of each example (and the
        ``n_best``); the model's beam size and length penalty unless given; on the CPU, on one thread
        (``eeap.threads``)."""
        alpha = self.length_penalty if length_penalty is None else length_penalty
        with threads.for_search(memory.device):
            return beam_search(
                self.decoder,
                memory,
                mask,
                self.max_output_len + 1,
                max(beam_size or self.beam_size, n_best),
                alpha,
                n_best=n_best,
                coverage=coverage,
                progress=progress,
            )

    def explain(self, memory: Tensor, mask: Tensor, hyps: Hypotheses) -> dict[str, Tensor]:
        """For each of the ranked hypotheses, what the decoder's attentions decided beyond their weights
        (``Attention.notes``: hard attention's chosen position, local attention's window, gated attention's gates):
        {note: (batch, n, steps, ...)}, named ``module.note`` where several attentions keep notes; and for a decoder
        with several attending layers (a Transformer) every layer's weights under ``layers``: (batch, n, layers,
        [heads,] steps, src_len). Empty where there is neither.

        The decoder reads each hypothesis again, teacher-forced (BOS, then its tokens), in evaluation mode: step t
        sees what it saw while decoding, so it decides the same (its weights equal beam search's; tested)."""
        noted = any(isinstance(m, Attention) and m.notes for m in self.decoder.modules())
        layered = self.decoder.attention_layers > 1
        if hyps.ranked_tokens is None or not (noted or layered):
            return {}
        batch, n, steps = hyps.ranked_tokens.shape
        tokens = hyps.ranked_tokens.reshape(batch * n, steps)  # (batch·n, steps)
        start = torch.full_like(tokens[:, :1], BOS)
        read = torch.cat([start, tokens[:, :-1]], 1)  # (batch·n, steps): what step t read
        rows = torch.arange(batch, device=memory.device).repeat_interleave(n)  # (batch·n,)
        with torch.no_grad(), noting(self.decoder) as notes:
            every = self.decoder.layer_weights(read, memory[rows], mask[rows]) if layered else []
            if noted and not layered:
                self.decoder(read, memory[rows], mask[rows], need_weights=True)
        named = {
            (key if len(notes) == 1 else f"{module}.{key}"): value.reshape(batch, n, *value.shape[1:])
            for module, kept in notes.items()
            for key, value in kept.items()
        }
        if every:
            stacked = torch.stack(every, 1)  # (batch·n, layers, [heads,] steps, src_len)
            named["layers"] = stacked.reshape(batch, n, *stacked.shape[1:])
        return named

    def evaluate(
        self, memory: Tensor, mask: Tensor, batch: dict, metrics: dict[str, Any], beam_size: int
    ) -> tuple[Tensor, Hypotheses]:
        """Loss and decoded outputs of a batch; ``metrics`` (``new_metrics``' set) updated with it."""
        logits, _ = self.decoder(batch["tgt_in"], memory, mask)
        loss = self.loss(logits, batch["tgt_out"])
        real = batch["tgt_out"] != PAD
        correct = (logits.argmax(-1) == batch["tgt_out"]) & real
        metrics["token_accuracy"].update(correct.sum() / real.sum(), real.sum())
        hyps = self.decode(memory, mask, beam_size)
        outputs = [self.target.decode(row) for row in hyps.tokens.tolist()]
        references = references_of(batch)
        metrics["exact_match"].update(exact_matches(outputs, references, self.target))
        most = max(len(r) for r in references)  # sacrebleu: one stream per reference, None where an example has fewer
        padded = [list(r) + [None] * (most - len(r)) for r in references]
        metrics["bleu"].update(outputs, padded)
        metrics["chrf"].update(outputs, padded)
        return loss, hyps

    def bleu_signature(self) -> str:
        """The sacrebleu signature of the BLEU computed here, so scores compare across versions."""
        from eeap.model.metrics import bleu_signature

        return bleu_signature(self.bleu_tokenize)


def exact_matches(outputs: list[str], references: list[list[str]], target: Tokenizer) -> Tensor:
    """1.0 where an output is one of its references as the target tokenizer writes text (split into its pieces and
    joined back: by words, ``a square.`` is written ``a square .``), else 0.0; (batch,)."""
    return torch.tensor(
        [o in {target.join(target.split(x)) for x in r} for o, r in zip(outputs, references)], dtype=torch.float32
    )


def references_of(batch: dict) -> list[list[str]]:
    """Each example's reference outputs: ``references`` where the data gives several (an image's captions), else its
    one target text."""
    if "references" in batch:
        return [list(r) for r in batch["references"]]
    return [[t] for t in batch["tgt_text"]]


def hypothesis_records(
    hyps: Hypotheses,
    target: Any,
    n_best: int = 1,
    attention: bool = False,
    details: Optional[dict[str, Tensor]] = None,
) -> list[dict]:
    """What ``eeap predict`` reports of each decoded example: the output text and its score; with ``n_best`` > 1 the
    ranked outputs with theirs; with ``attention`` the weights of each output token over the source (``attention``;
    the mean over heads where the attention has several, and each head's under ``attention_heads``), rounded to 4
    places, what each row is (``output_pieces``, the end's row ``</s>``), what the attention decided beyond its
    weights (``attention_details``, from ``Seq2Seq.explain``) and, for a decoder with several attending layers,
    every layer's weights (``attention_layers``: layer, [head,] output piece, source piece; ``attention`` is the
    last layer's): each of the n best has all of these too."""

    def described(row: int, rank: int, tokens: Tensor, score: Tensor, length: int) -> dict[str, Any]:
        record: dict[str, Any] = {"output": target.decode(tokens.tolist()), "score": round(float(score), 6)}
        weights = hyps.ranked_weights[row, rank] if hyps.ranked_weights is not None else None
        if not attention or weights is None:
            return record
        mean = head_mean(weights.unsqueeze(0), 3)[0]  # (steps, src_len): the heads' mean where there are heads
        record["attention"] = rounded(mean[:length].float().cpu().tolist())
        if weights.dim() == 3:
            record["attention_heads"] = rounded(weights[:, :length].float().cpu().tolist())
        pieces = target.pieces(tokens[:length].tolist())
        record["output_pieces"] = pieces + ["</s>"] * (length - len(pieces))  # the end's row
        notes = {key: value for key, value in (details or {}).items() if key != "layers"}
        if notes:
            record["attention_details"] = {
                key: detail_values(value[row, rank, :length]) for key, value in notes.items()
            }
        if details and "layers" in details:  # (layers, [heads,] steps, src_len)
            record["attention_layers"] = rounded(details["layers"][row, rank, ..., :length, :].float().cpu().tolist())
        return record

    records = []
    for row in range(hyps.tokens.shape[0]):
        assert hyps.ranked_tokens is not None and hyps.ranked_scores is not None and hyps.ranked_lengths is not None
        each = [
            described(row, rank, hyps.ranked_tokens[row, rank], hyps.ranked_scores[row, rank], int(length))
            for rank, length in enumerate(hyps.ranked_lengths[row])
        ]
        record = dict(each[0])
        if n_best > 1:
            record["n_best"] = each
        records.append(record)
    return records


def detail_values(value: Tensor) -> Any:
    """An attention's note as JSON: whole numbers as ints, others rounded to 4 places."""
    if value.is_floating_point():
        return rounded(value.float().cpu().tolist())
    return value.cpu().tolist()


class Inputs(abc.ABC):
    """The input side of a sequence-to-sequence task, the one thing translation and captioning do differently: how
    a batch's source is masked, how ``predict`` reads a line, how an input is shown and its attention drawn."""

    @abc.abstractmethod
    def mask(self, source: Tensor, embedded: Tensor) -> Tensor:
        """The valid positions (batch, src_len) of ``source`` once embedded (batch, src_len, dim)."""

    @abc.abstractmethod
    def example(self) -> tuple[Tensor, dict[int, str]]:
        """An example source batch for ``eeap export``, with its dynamic axes."""

    @abc.abstractmethod
    def read(self, text: str, number: int, problems: Problems) -> Optional[Any]:
        """One ``predict`` input from a line's text (numbered ``number``), or None with a message in ``problems``."""

    @abc.abstractmethod
    def collate(self, items: list) -> Tensor:
        """A source batch from what ``read`` gave."""

    @abc.abstractmethod
    def shown(self, source: Tensor, text: Optional[str]) -> Any:
        """An example's input as the loggers show it (its text, or the image), from its row of the batch."""

    @abc.abstractmethod
    def figure(self, weights: Tensor, source: Tensor, output: list[str], text: str, title: str) -> Any:
        """The attention of each output piece over one source: weights (len(output), src_len), source its row of
        the batch, ``text`` the output as text; a matplotlib figure."""

    def labels(self, source: Tensor) -> Optional[list[str]]:
        """What each position of one source (its row of the batch) is, as text (the attention's columns), or None
        where positions are not pieces of text (an image's grid cells)."""
        return None


class TokenInputs(Inputs):
    """Sentences as token ids (translation): padding masked, lines over ``max_len`` tokens skipped, unknown words
    warned of; attention drawn as a source × output heatmap.

    # Parameters
    tokenizer: the source tokenizer; max_len: the longest source the model takes.
    """

    def __init__(self, tokenizer: Tokenizer, max_len: int) -> None:
        self.tokenizer, self.max_len = tokenizer, max_len

    def mask(self, source: Tensor, embedded: Tensor) -> Tensor:
        return source != PAD  # (batch, src_len)

    def example(self) -> tuple[Tensor, dict[int, str]]:
        """Token ids (batch, src_len), batch and length dynamic."""
        return torch.randint(PAD + 4, len(self.tokenizer), (3, 7)), {0: "batch", 1: "src"}

    def read(self, text: str, number: int, problems: Problems) -> Optional[Any]:
        ids = self.tokenizer.encode(text)
        if len(ids) > self.max_len:
            problems.skip(
                f"line {number}: {len(ids)} tokens, longer than this model's max_src_len={self.max_len}; skipped"
            )
            return None
        unknown = sorted(set(self.tokenizer.unknown(text)))
        if unknown:
            problems.warn(f"line {number}: not in the vocabulary, read as <unk>: {', '.join(repr(u) for u in unknown)}")
        return ids

    def collate(self, items: list) -> Tensor:
        return pad(items)  # (batch, longest)

    def shown(self, source: Tensor, text: Optional[str]) -> Any:
        return text if text is not None else self.tokenizer.decode(source.tolist())

    def figure(self, weights: Tensor, source: Tensor, output: list[str], text: str, title: str) -> Any:
        from eeap.model.plotting import attention_heatmap

        return attention_heatmap(weights, self.labels(source), output, title=title)

    def labels(self, source: Tensor) -> list[str]:
        return self.tokenizer.pieces(source.tolist())


class ImageInputs(Inputs):
    """Images (captioning): every grid cell valid; a line is an image file's path, brought to the model's size as
    its data were (``fit``); attention drawn over the image, one panel per output token.

    # Parameters
    channels, image_size: the images the model takes; grid: the embedding's grid (h, w).
    fit: how an image of another size is read (``exact``: refused; ``resize``; ``crop``: aspect kept, centre cut),
        as the model's data read them.
    """

    def __init__(self, channels: int, image_size: tuple[int, int], grid: tuple[int, int], fit: str = "exact") -> None:
        self.channels, self.image_size = channels, (int(image_size[0]), int(image_size[1]))
        self.grid, self.fit = (int(grid[0]), int(grid[1])), fit

    def mask(self, source: Tensor, embedded: Tensor) -> Tensor:
        return torch.ones(embedded.shape[:2], dtype=torch.bool, device=embedded.device)  # (batch, h·w)

    def example(self) -> tuple[Tensor, dict[int, str]]:
        """Images (batch, C, H, W) at the model's size, batch dynamic."""
        return torch.rand(3, self.channels, *self.image_size), {0: "batch"}

    def read(self, text: str, number: int, problems: Problems) -> Optional[Any]:
        from pathlib import Path

        from eeap.data.images import read_image
        from eeap.errors import DataError

        try:
            image = read_image(Path(text), self.channels, self.image_size, self.fit == "resize", self.fit == "crop")
            return torch.as_tensor(image)
        except DataError as e:
            problems.skip(f"line {number}: {e}")
            return None

    def collate(self, items: list) -> Tensor:
        return torch.stack(items)  # (batch, C, H, W)

    def shown(self, source: Tensor, text: Optional[str]) -> Any:
        from eeap.model.plotting import display_image

        return display_image(source.float().cpu())

    def figure(self, weights: Tensor, source: Tensor, output: list[str], text: str, title: str) -> Any:
        from eeap.model.plotting import caption_overlays

        return caption_overlays(source.float().cpu(), weights, self.grid, output, title, text)


class Seq2SeqTask(Task):
    """The sequence-to-sequence task core that translation and captioning share: source → embed → encode → memory →
    a decoder that attends (``Seq2Seq``) → tokens. What differs is composed in: the parts, and the input side
    (``inputs``: tokens or images). A registered task gives its builder, its data (``info_class``) and ``monitor``.

    # Parameters
    info: the data's info (``target``: the output tokenizer), supplied by the framework.
    embed: the source embedding; encoder: the sequence encoder over it.
    seq2seq: the decoder with its attention, its loss, decoding and metrics.
    inputs: the input side (``TokenInputs``, ``ImageInputs``).
    optim: optimizer section (see ``eeap.model.task.OptimConfig``).
    plot_examples: validation examples whose attention is plotted each validation.
    val_beam_size: the beam validation decodes with (1: greedy; test decodes with the model's ``beam_size``).
    """

    def __init__(
        self,
        info: Any,
        embed: nn.Module,
        encoder: nn.Module,
        seq2seq: Seq2Seq,
        inputs: Inputs,
        optim: Optional[dict] = None,
        plot_examples: int = 4,
        val_beam_size: int = 1,
    ) -> None:
        super().__init__(optim)
        self.info, self.embed, self.encoder, self.seq2seq = info, embed, encoder, seq2seq
        self.inputs, self.plot_examples, self.val_beam_size = inputs, plot_examples, val_beam_size

    def metric_names(self) -> list[str]:
        return self.seq2seq.metric_names()

    def new_metrics(self) -> dict[str, Any]:
        return self.seq2seq.new_metrics()

    def hyperparameters(self) -> dict[str, Any]:
        return {"sacrebleu_signature": self.seq2seq.bleu_signature()}

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor]:
        """src (batch, src_len) token ids or (batch, C, H, W) images -> memory (batch, src_len, encoder_dim) and its
        mask (batch, src_len)."""
        x = self.embed(src)  # (batch, src_len, embed_dim)
        mask = self.inputs.mask(src, x)  # (batch, src_len)
        return self.encoder(x, mask), mask

    def encode_inputs(self, src: Tensor) -> tuple[Tensor, Tensor]:
        """What ``eeap export`` exports as the encoder: ``encode``."""
        return self.encode(src)

    def example_inputs(self) -> dict[str, tuple[Tensor, dict[int, str]]]:
        """The input side's example source batch for ``encode_inputs``."""
        return {"src": self.inputs.example()}

    def forward(self, src: Tensor, tgt_in: Tensor, need_weights: bool = False) -> Any:
        """Teacher-forced logits (batch, tgt_len, vocab) and weights (batch, tgt_len, src_len) or None."""
        return self.seq2seq.decoder(tgt_in, *self.encode(src), need_weights=need_weights)

    def decode(self, src: Tensor, beam_size: Optional[int] = None, **options: Any) -> Hypotheses:
        """Decode a batch: the best hypotheses with their attention weights (``options``: n_best, length_penalty,
        coverage, as ``Seq2Seq.decode``)."""
        return self.seq2seq.decode(*self.encode(src), beam_size, **options)

    def training_loss(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        return self.seq2seq.training_loss(*self.encode(batch["src"]), batch)

    def evaluate(self, batch: dict, split: str, metrics: dict[str, Any]) -> tuple[Tensor, Hypotheses]:
        """Validation decodes with ``val_beam_size`` (greedily unless set), test with the model's beam."""
        beam_size = self.val_beam_size if split == "val" else self.seq2seq.beam_size
        return self.seq2seq.evaluate(*self.encode(batch["src"]), batch, metrics, beam_size)

    def validation_examples(self, batch: dict, outputs: Hypotheses) -> list[Example]:
        return [self.example(outputs, row, batch) for row in range(min(self.plot_examples, len(batch["src"])))]

    def example(self, hyps: Hypotheses, row: int, batch: dict) -> Example:
        """Validation example ``row`` as the loggers show it: source, output, reference and attention figure."""
        text = batch["src_text"][row] if "src_text" in batch else None
        output = self.info.target.decode(hyps.tokens[row].tolist())
        title = f"{text} → {output}" if text is not None else f"true: {batch['tgt_text'][row]}"
        figure = self.figure(hyps, row, batch["src"][row], title)
        return Example(self.inputs.shown(batch["src"][row], text), output, batch["tgt_text"][row], figure)

    def figure(self, hyps: Hypotheses, row: int, source: Tensor, title: str) -> Any:
        """One decoded example's attention (each output token, and the end, over the source; the mean over heads
        where there are several), or None without attention."""
        if hyps.weights is None:
            return None
        length = int(hyps.lengths[row])
        output = self.info.target.pieces(hyps.tokens[row, :length].tolist()) + ["</s>"]
        weights = head_mean(hyps.weights, 3)[row, : length + 1].float().cpu()  # (tokens + 1, src_len)
        return self.inputs.figure(weights, source.cpu(), output, self.info.target.join(output[:-1]), title)

    def read_input(self, text: str, number: int, problems: Problems) -> Optional[Any]:
        return self.inputs.read(text, number, problems)

    def predict_batch(
        self, items: list, texts: list[str], options: DecodeOptions, figures: bool
    ) -> tuple[list[dict], list[Any]]:
        """Decode the batch: ``hypothesis_records``, and each one's attention figure when asked for."""
        src = self.inputs.collate(items).to(self.device)
        memory, mask = self.encode(src)
        report = options.progress
        progress = (lambda tokens: report([self.info.target.decode(r) for r in tokens.tolist()])) if report else None
        hyps = self.seq2seq.decode(memory, mask, options.beam_size, progress=progress, **options.search())
        details = self.seq2seq.explain(memory, mask, hyps) if options.attention else None
        records = hypothesis_records(hyps, self.info.target, options.n_best, options.attention, details)
        if options.attention and hyps.weights is not None:  # what the weights' columns are
            for row, record in enumerate(records):
                labels = self.inputs.labels(src[row])
                if labels is not None:
                    record["source_pieces"] = labels
        shown = [
            self.figure(hyps, row, src[row], f"{text} → {records[row]['output']}") if figures else None
            for row, text in enumerate(texts)
        ]
        return records, shown
