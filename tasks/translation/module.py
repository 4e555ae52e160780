"""The translation task: tokens → Embed → Encode → memory → Predict (a decoder that Attends) → tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor

from eeap.attend.base import head_mean
from eeap.embed.base import TokenEmbedder
from eeap.encode.base import SequenceEncoder
from eeap.plotting import attention_heatmap, save_figure
from eeap.predict.base import SequenceDecoder
from eeap.predict.search import Hypotheses
from eeap.prediction import DecodeOptions, Problems
from eeap.registry import EMBED, ENCODE, TASK, NonNegativeFloat, NonNegativeInt, PositiveInt, Probability
from eeap.seq2seq import Seq2Seq, hypothesis_records
from eeap.task import AttendSection, Example, Task, build_predict
from eeap.tasks.translation.data import TranslationInfo
from eeap.text import PAD, pad

DEFAULT_ATTEND = {"type": "additive"}


@TASK.register("translation")
class TranslationTask(Task):
    """Sequence-to-sequence translation with attention; exact match, BLEU and chrF (sacrebleu), attention heatmaps.

    # Parameters
    info: the data's tokenizers and limits, supplied by the framework.
    embed: the source embedding (a token embedding).
    encoder: the sequence encoder over the embedded source.
    seq2seq: the decoder with its attention, its loss, decoding and metrics (``eeap.seq2seq.Seq2Seq``).
    optim: optimizer section (see ``eeap.task.OptimConfig``).
    plot_examples: validation examples whose attention is plotted each validation.
    """

    info_class = TranslationInfo
    monitor = ("val/exact_match", "max")

    def metric_names(self) -> list[str]:
        return self.seq2seq.metric_names()

    def __init__(
        self,
        info: TranslationInfo,
        embed: TokenEmbedder,
        encoder: SequenceEncoder,
        seq2seq: Seq2Seq,
        optim: Optional[dict] = None,
        plot_examples: int = 4,
    ) -> None:
        super().__init__(optim)
        self.info, self.embed, self.encoder, self.seq2seq = info, embed, encoder, seq2seq
        self.plot_examples = plot_examples

    @classmethod
    def from_config(
        cls,
        info: TranslationInfo,
        embed: dict,
        encode: dict,
        predict: dict,
        attend: AttendSection = DEFAULT_ATTEND,
        optim: Optional[dict] = None,
        label_smoothing: Probability = 0.0,
        beam_size: PositiveInt = 1,
        length_penalty: NonNegativeFloat = 0.0,
        max_output_len: Optional[PositiveInt] = None,
        plot_examples: NonNegativeInt = 4,
        attention_penalty: NonNegativeFloat = 0.0,
    ) -> TranslationTask:
        """The builder: the ``model`` section's parts, built and wired.

        ::

            source tokens ─ embed (token embedding; vocab_size from the data)
                          ─ encode (sequence encoder; input_dim = embed.output_dim) ─ memory
            memory ─ predict (sequence decoder; vocab_size, encoder_dim = encode.output_dim) ─ target tokens
                        └ attend (attention; query_dim from the decoder, key_dim = encode.output_dim), once per
                          slot the decoder asks for (one, or one per Transformer layer)

        # Parameters
        embed, encode, predict, attend: the four parts' sections (``attend: none`` for no attention).
        optim: optimizer section (see ``eeap.task.OptimConfig``).
        label_smoothing: cross-entropy label smoothing.
        beam_size, length_penalty: decoding at test time (validation decodes greedily).
        max_output_len: longest output (default max_tgt_len).
        plot_examples: validation examples whose attention is plotted each validation.
        attention_penalty: λ of the doubly stochastic regularisation of Show, Attend and Tell,
            λ · mean_i (1 − Σ_t α_ti)², which asks every source position to get about one unit of attention.
        """
        embedding = EMBED.build(embed, "model.embed", role=TokenEmbedder, vocab_size=len(info.source))
        encoder = ENCODE.build(encode, "model.encode", role=SequenceEncoder, input_dim=embedding.output_dim)
        decoder = build_predict(
            predict, attend, SequenceDecoder, vocab_size=len(info.target), encoder_dim=encoder.output_dim
        )
        seq2seq = Seq2Seq(
            decoder,
            info.target,
            max_output_len or info.max_tgt_len,
            label_smoothing,
            beam_size,
            length_penalty,
            attention_penalty,
            bleu_tokenize="13a",
        )
        return cls(info, embedding, encoder, seq2seq, optim, plot_examples)

    def encode(self, src: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """src (batch, src_len) -> memory (batch, src_len, encoder_dim) and its mask (batch, src_len)."""
        return self.encoder(self.embed(src), mask), mask

    def encode_inputs(self, src: Tensor) -> tuple[Tensor, Tensor]:
        """src (batch, src_len) token ids, padded with PAD -> memory and mask (what ``eeap export`` exports)."""
        return self.encode(src, src != PAD)

    def example_inputs(self) -> dict[str, tuple[Tensor, dict[int, str]]]:
        """Token ids (batch, src_len) for ``encode_inputs``, batch and length dynamic."""
        return {"src": (torch.randint(PAD + 4, len(self.info.source), (3, 7)), {0: "batch", 1: "src"})}

    def forward(self, src: Tensor, mask: Tensor, tgt_in: Tensor, need_weights: bool = False) -> Any:
        """Teacher-forced logits (batch, tgt_len, vocab) and weights (batch, tgt_len, src_len) or None."""
        memory, mask = self.encode(src, mask)
        return self.seq2seq.decoder(tgt_in, memory, mask, need_weights=need_weights)

    def decode(self, src: Tensor, mask: Tensor, beam_size: Optional[int] = None, **options: Any) -> Hypotheses:
        """Decode a batch; src (batch, src_len) -> best hypotheses with their attention weights (``options``: n_best,
        length_penalty, coverage, as ``Seq2Seq.decode``)."""
        return self.seq2seq.decode(*self.encode(src, mask), beam_size, **options)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss, logs = self.seq2seq.training_loss(*self.encode(batch["src"], batch["src_mask"]), batch)
        for key, value in logs.items():
            self.log(key, value, prog_bar=key == "train/loss", batch_size=len(batch["src"]))
        return loss

    def evaluate(self, batch: dict, split: str, beam_size: int) -> Hypotheses:
        """Loss, decoding and metrics for a validation or test batch."""
        memory, mask = self.encode(batch["src"], batch["src_mask"])
        loss, hyps, metrics = self.seq2seq.evaluate(memory, mask, batch, split, beam_size)
        self.log_metrics(split, {"loss": loss, **metrics}, len(batch["src"]), prog_bar="exact_match")
        return hyps

    def validation_step(self, batch: dict, batch_idx: int) -> dict:
        return {"hyps": self.evaluate(batch, "val", beam_size=1)}

    def validation_examples(self, batch: dict, outputs: dict) -> list[Example]:
        hyps = outputs["hyps"]
        return [self.example(hyps, i, batch) for i in range(min(self.plot_examples, len(batch["src"])))]

    def example(self, hyps: Hypotheses, row: int, batch: dict) -> Example:
        """Validation example ``row`` as the loggers show it: source, output, reference and attention heatmap."""
        output = self.info.target.join(self.info.target.pieces(hyps.tokens[row, : int(hyps.lengths[row])].tolist()))
        figure = self.figure(hyps, row, batch["src"][row].tolist(), batch["src_text"][row])
        return Example(batch["src_text"][row], output, batch["tgt_text"][row], figure)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self.evaluate(batch, "test", beam_size=self.seq2seq.beam_size)

    def on_fit_start(self) -> None:
        for logger in self.loggers:
            logger.log_hyperparams({"sacrebleu_signature": self.seq2seq.bleu_signature()})

    def figure(self, hyps: Hypotheses, row: int, source_ids: list[int], source_text: str) -> Any:
        """The heatmap of one decoded example's attention (source × output; the mean over heads where there are
        several), or None without attention."""
        if hyps.weights is None:
            return None
        length = int(hyps.lengths[row])
        output = self.info.target.pieces(hyps.tokens[row, :length].tolist()) + ["</s>"]
        return attention_heatmap(
            head_mean(hyps.weights, 3)[row, :length].float().cpu(),
            self.info.source.pieces(source_ids),
            output,
            title=f"{source_text} → {self.info.target.join(output[:-1])}",
        )

    @torch.no_grad()
    def predict_lines(
        self, lines: list[str], options: DecodeOptions = DecodeOptions(), plot_dir: Optional[str] = None, first: int = 1
    ) -> tuple[list[Optional[dict]], Problems]:
        """Translate each line (numbered from ``first``): one record per line (``hypothesis_records``), None for an
        empty or over-long line, which gets a message instead, never an exception."""
        problems = Problems()
        outputs: list[Optional[dict]] = [None] * len(lines)
        todo = []
        for number, line in enumerate(lines, first):
            text = line.strip()
            if not text:
                problems.skip(f"line {number}: empty input, nothing to translate")
                continue
            ids = self.info.source.encode(text)
            if len(ids) > self.info.max_src_len:
                problems.skip(
                    f"line {number}: {len(ids)} tokens, longer than this model's "
                    f"max_src_len={self.info.max_src_len}; skipped"
                )
                continue
            unknown = sorted(set(self.info.source.unknown(text)))
            if unknown:
                problems.warn(
                    f"line {number}: not in the vocabulary, read as <unk>: {', '.join(repr(u) for u in unknown)}"
                )
            todo.append((number - first, text, ids))
        for start in range(0, len(todo), options.batch_size):
            chunk = todo[start : start + options.batch_size]
            src = pad([ids for _, _, ids in chunk]).to(self.device)
            hyps = self.decode(src, src != PAD, options.beam_size, **options.search())
            records = hypothesis_records(hyps, self.info.target, options.n_best, options.attention)
            for row, (index, text, ids) in enumerate(chunk):
                outputs[index] = records[row]
                figure = self.figure(hyps, row, ids, text) if plot_dir else None
                if figure is not None:
                    save_figure(figure, Path(plot_dir or ".") / f"line{index + first:05d}.png")
        return outputs, problems
