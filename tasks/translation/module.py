"""The translation task: Embed → Encode → (Attend inside) Predict, trained with cross-entropy."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union


import sacrebleu
import torch
import torch.nn.functional as F
import torchmetrics
from torch import Tensor

from eeap.attend.base import WrappedAttention
from eeap.inference import Problems
from eeap.loggers import log_figure
from eeap.metrics import CorpusBLEU, CorpusChrF
from eeap.plotting import attention_heatmap, save_figure
from eeap.predict.search import Hypotheses, beam_search
from eeap.registry import (
    EMBED, ENCODE, PREDICT, TASK, NonNegativeFloat, NonNegativeInt, PositiveInt, Probability,
)
from eeap.task import Task, attend_section
from eeap.text import PAD
from tasks.translation.data import TranslationInfo, pad

BLEU_TOKENIZE = "13a"


@TASK.register("translation")
class TranslationTask(Task):
    """Sequence-to-sequence translation with attention.

    # Parameters
    info: the data's tokenizers and limits, supplied by the framework.
    embed: source embedding section, e.g. ``{type: token, dim: 64}``.
    encode: encoder section, e.g. ``{type: rnn, hidden: 128}``.
    attend: attention section used by the decoder, e.g. ``{type: additive}``; ``none`` or null for no attention.
    predict: decoder section, e.g. ``{type: rnn_decoder, style: bahdanau}``.
    optim: optimizer section (see ``eeap.task.OptimConfig``).
    label_smoothing: cross-entropy label smoothing.
    beam_size, length_penalty: decoding at test time (validation decodes greedily).
    max_output_len: longest output (default max_tgt_len).
    plot_examples: validation examples whose attention is plotted each validation.
    attention_penalty: λ of the doubly stochastic regularisation of Show, Attend and Tell,
        λ · mean_i (1 − Σ_t α_ti)², which asks every source position to get about one unit of attention over the
        output.
    """

    monitor = ("val/exact_match", "max")

    def __init__(
        self,
        info: TranslationInfo,
        embed: dict,
        encode: dict,
        predict: dict,
        attend: Union[dict, str, None] = None,
        optim: Optional[dict] = None,
        label_smoothing: Probability = 0.0,
        beam_size: PositiveInt = 1,
        length_penalty: NonNegativeFloat = 0.0,
        max_output_len: Optional[PositiveInt] = None,
        plot_examples: NonNegativeInt = 4,
        attention_penalty: NonNegativeFloat = 0.0,
    ) -> None:
        super().__init__(optim)
        attend = attend_section(attend)
        self.info = info
        self.embed = self.build_embed(embed, info)
        self.encoder = ENCODE.build(encode, "model.encode", input_dim=self.embed.output_dim)
        self.decoder = PREDICT.build(predict, "model.predict", vocab_size=len(info.target),
                                     encoder_dim=self.encoder.output_dim, attend=attend)
        self.label_smoothing = label_smoothing
        self.beam_size, self.length_penalty = beam_size, length_penalty
        self.max_output_len = max_output_len or info.max_tgt_len
        self.plot_examples, self.attention_penalty = plot_examples, attention_penalty
        self.extra_losses = [m for m in self.modules() if isinstance(m, WrappedAttention)]  # hard, gated, local
        for split in ("val", "test"):
            setattr(self, f"{split}_exact", torchmetrics.MeanMetric())
            setattr(self, f"{split}_token_acc", torchmetrics.MeanMetric())
            setattr(self, f"{split}_bleu", CorpusBLEU(tokenize=BLEU_TOKENIZE))
            setattr(self, f"{split}_chrf", CorpusChrF())

    def build_embed(self, embed: dict, info: TranslationInfo) -> torch.nn.Module:
        """The source embedding, sized by the data."""
        return EMBED.build(embed, "model.embed", vocab_size=len(info.source))

    def encode(self, src: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """src (batch, src_len) -> memory (batch, src_len, encoder_dim) and its mask (batch, src_len)."""
        return self.encoder(self.embed(src), mask), mask

    def forward(self, src: Tensor, mask: Tensor, tgt_in: Tensor, need_weights: bool = False):
        """Teacher-forced logits (batch, tgt_len, vocab) and weights (batch, tgt_len, src_len) or None."""
        memory, mask = self.encode(src, mask)
        return self.decoder(tgt_in, memory, mask, need_weights=need_weights)

    def translate(self, src: Tensor, mask: Tensor, beam_size: int = 1) -> Hypotheses:
        """Decode a batch; src (batch, src_len) -> best hypotheses with their attention weights."""
        memory, mask = self.encode(src, mask)
        return beam_search(self.decoder, memory, mask, self.max_output_len + 1, beam_size, self.length_penalty)

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """Token cross-entropy (with label smoothing) averaged over non-padding tokens; logits (batch, tgt, vocab)."""
        return F.cross_entropy(logits.transpose(1, 2), target, ignore_index=PAD, label_smoothing=self.label_smoothing)

    def doubly_stochastic(self, weights: Tensor, src_mask: Tensor, target: Tensor) -> Tensor:
        """λ · mean over valid source positions i of (1 − Σ_t α_ti)², the sum over t over real output tokens;
        averaged over the batch. weights (batch, tgt_len, src_len), src_mask (batch, src_len).

        The paper sums over i; the mean keeps λ = 1 on the scale of a per-token cross-entropy whatever the grid size."""
        received = (weights * (target != PAD).unsqueeze(-1)).sum(1)  # (batch, src_len)
        src_mask = src_mask.to(weights.dtype)
        penalty = ((1 - received) ** 2 * src_mask).sum(1) / src_mask.sum(1).clamp(min=1)  # (batch,)
        return self.attention_penalty * penalty.mean()

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        penalise = self.attention_penalty > 0
        logits, weights = self(batch["src"], batch["src_mask"], batch["tgt_in"], need_weights=penalise)
        target = batch["tgt_out"]
        loss = self.loss(logits, target)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(target))
        if penalise and weights is not None:
            mask = batch["src_mask"] if batch["src_mask"] is not None else weights.new_ones(weights[:, 0].shape)
            penalty = self.doubly_stochastic(weights, mask, target)
            self.log("train/attention_penalty", penalty, batch_size=len(target))
            loss = loss + penalty
        if not self.extra_losses:
            return loss
        nll = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=PAD, reduction="none")  # (batch, tgt)
        log_likelihood = -nll.sum(1)  # (batch,) the reward of hard attention's REINFORCE
        extra = sum(m.auxiliary_loss(log_likelihood) for m in self.extra_losses)
        self.log("train/attention_loss", extra, batch_size=len(target))
        return loss + extra

    def evaluate(self, batch: dict, split: str, beam_size: int) -> Hypotheses:
        """Loss, token accuracy, decoding and sentence metrics for a val/test batch."""
        size = len(batch["src"])
        logits, _ = self(batch["src"], batch["src_mask"], batch["tgt_in"])
        loss = self.loss(logits, batch["tgt_out"])
        real = batch["tgt_out"] != PAD
        correct = (logits.argmax(-1) == batch["tgt_out"]) & real
        getattr(self, f"{split}_token_acc").update(correct.sum() / real.sum(), real.sum())
        hyps = self.translate(batch["src"], batch["src_mask"], beam_size)
        outputs = [self.info.target.decode(row) for row in hyps.tokens.tolist()]
        exact = torch.tensor([o == t for o, t in zip(outputs, batch["tgt_text"])], dtype=torch.float32)
        getattr(self, f"{split}_exact").update(exact)
        getattr(self, f"{split}_bleu").update(outputs, [[t] for t in batch["tgt_text"]])
        getattr(self, f"{split}_chrf").update(outputs, [[t] for t in batch["tgt_text"]])
        self.log(f"{split}/loss", loss, batch_size=size, sync_dist=True)
        for name in ("exact", "token_acc", "bleu", "chrf"):
            key = {"exact": "exact_match", "token_acc": "token_accuracy"}.get(name, name)
            self.log(f"{split}/{key}", getattr(self, f"{split}_{name}"), batch_size=size, prog_bar=name == "exact")
        return hyps

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        hyps = self.evaluate(batch, "val", beam_size=1)
        if batch_idx == 0 and self.plot_examples and not self.trainer.sanity_checking:
            self.plot(batch, hyps, "val/attention")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self.evaluate(batch, "test", beam_size=self.beam_size)

    def on_fit_start(self) -> None:
        for logger in self.loggers:
            logger.log_hyperparams({"sacrebleu_signature": bleu_signature()})

    def plot(self, batch: dict, hyps: Hypotheses, key: str) -> None:
        """Heatmaps of the first ``plot_examples`` examples' attention (source × output)."""
        if hyps.weights is None:
            return
        for i in range(min(self.plot_examples, len(batch["src"]))):
            length = int(hyps.lengths[i])
            source = self.info.source.pieces(batch["src"][i].tolist())
            output = self.info.target.pieces(hyps.tokens[i, :length].tolist()) + ["</s>"]
            figure = attention_heatmap(hyps.weights[i, :length].float().cpu(), source, output,
                                       title=f"{batch['src_text'][i]} → {self.info.target.join(output[:-1])}")
            log_figure(self, f"{key}_{i}", figure)


    @torch.no_grad()
    def predict_lines(
        self, lines: list[str], beam_size: Optional[int] = None, batch_size: int = 64, plot_dir: Optional[str] = None
    ) -> tuple[list[str], Problems]:
        """Translate each line; empty or over-long lines give an empty output and a message, never an exception.

        Returns one output per input line, and the problems met.
        """
        problems = Problems()
        outputs = [""] * len(lines)
        todo = []
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if not text:
                problems.skip(f"line {number}: empty input, nothing to translate")
                continue
            ids = self.info.source.encode(text)
            if len(ids) > self.info.max_src_len:
                problems.skip(f"line {number}: {len(ids)} tokens, longer than this model's "
                              f"max_src_len={self.info.max_src_len}; skipped")
                continue
            unknown = sorted(set(self.info.source.unknown(text)))
            if unknown:
                problems.warn(f"line {number}: not in the vocabulary, read as <unk>: "
                              f"{', '.join(repr(u) for u in unknown)}")
            todo.append((number - 1, text, ids))
        beam_size = beam_size or self.beam_size
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            src = pad([ids for _, _, ids in chunk]).to(self.device)
            hyps = self.translate(src, src != PAD, beam_size)
            for row, (index, text, ids) in enumerate(chunk):
                outputs[index] = self.info.target.decode(hyps.tokens[row].tolist())
                if plot_dir and hyps.weights is not None:
                    length = int(hyps.lengths[row])
                    output = self.info.target.pieces(hyps.tokens[row, :length].tolist()) + ["</s>"]
                    figure = attention_heatmap(hyps.weights[row, :length].cpu(), self.info.source.pieces(ids),
                                               output, title=f"{text} → {outputs[index]}")
                    save_figure(figure, Path(plot_dir) / f"line{index + 1:05d}.png")
        return outputs, problems


def bleu_signature() -> str:
    """The sacrebleu signature of the BLEU computed here, so scores compare across versions."""
    bleu = sacrebleu.metrics.BLEU(tokenize=BLEU_TOKENIZE)
    bleu.corpus_score(["a"], [["a"]])  # the signature needs the number of references, known after scoring
    return str(bleu.get_signature())
