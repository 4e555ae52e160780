"""The sequence-to-sequence core that translation and captioning share: a decoder over an encoder's memory, its
teacher-forced loss (label smoothing, the doubly stochastic attention penalty, the attentions' own auxiliary losses),
greedy and beam decoding, and the metrics (exact match, token accuracy, BLEU and chrF from sacrebleu's statistics).

A task computes the memory from its own source (tokens, an image) and hands it here; what it plots and what
``predict`` reads stay the task's own."""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
import torchmetrics
from torch import Tensor, nn

from eeap import threads
from eeap.attend.base import Attention, head_mean
from eeap.metrics import CorpusBLEU, CorpusChrF, bleu_signature
from eeap.predict.base import SequenceDecoder
from eeap.predict.search import Hypotheses, beam_search
from eeap.prediction import rounded
from eeap.text import PAD, Tokenizer


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
        self.metrics = nn.ModuleDict(
            {
                split: nn.ModuleDict(
                    {
                        "exact_match": torchmetrics.MeanMetric(),
                        "token_accuracy": torchmetrics.MeanMetric(),
                        "bleu": CorpusBLEU(tokenize=bleu_tokenize),
                        "chrf": CorpusChrF(),
                    }
                )
                for split in ("val", "test")
            }
        )

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
        and the terms to log."""
        penalise = self.attention_penalty > 0
        logits, weights = self.decoder(batch["tgt_in"], memory, mask, need_weights=penalise)
        target = batch["tgt_out"]
        loss = self.loss(logits, target)
        logs = {"train/loss": loss}
        if penalise and weights is not None:
            penalty = self.doubly_stochastic(weights, mask, target)
            logs["train/attention_penalty"] = penalty
            loss = loss + penalty
        if self.auxiliary:
            nll = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=PAD, reduction="none")  # (batch, tgt)
            log_likelihood = -nll.sum(1)  # (batch,) the reward of hard attention's REINFORCE
            extra = torch.stack([m.auxiliary_loss(log_likelihood) for m in self.auxiliary]).sum()
            logs["train/attention_loss"] = extra
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
            )

    def evaluate(
        self, memory: Tensor, mask: Tensor, batch: dict, split: str, beam_size: int
    ) -> tuple[Tensor, Hypotheses, dict[str, Any]]:
        """Loss, decoded outputs, and this split's metrics updated with the batch (returned for logging)."""
        logits, _ = self.decoder(batch["tgt_in"], memory, mask)
        loss = self.loss(logits, batch["tgt_out"])
        metrics: Any = self.metrics[split]
        real = batch["tgt_out"] != PAD
        correct = (logits.argmax(-1) == batch["tgt_out"]) & real
        metrics["token_accuracy"].update(correct.sum() / real.sum(), real.sum())
        hyps = self.decode(memory, mask, beam_size)
        outputs = [self.target.decode(row) for row in hyps.tokens.tolist()]
        references = [[t] for t in batch["tgt_text"]]
        metrics["exact_match"].update(
            torch.tensor([o == t for o, t in zip(outputs, batch["tgt_text"])], dtype=torch.float32)
        )
        metrics["bleu"].update(outputs, references)
        metrics["chrf"].update(outputs, references)
        return loss, hyps, dict(metrics.items())

    def bleu_signature(self) -> str:
        """The sacrebleu signature of the BLEU computed here, so scores compare across versions."""
        return bleu_signature(self.bleu_tokenize)


def hypothesis_records(hyps: Hypotheses, target: Any, n_best: int = 1, attention: bool = False) -> list[dict]:
    """What ``eeap predict`` reports of each decoded example: the output text and its score; with ``n_best`` > 1 the
    ranked outputs with theirs; with ``attention`` the weights of each output token over the source (``attention``;
    the mean over heads where the attention has several, and each head's under ``attention_heads``), rounded to 4
    places."""
    records = []
    for row in range(hyps.tokens.shape[0]):
        record: dict[str, Any] = {
            "output": target.decode(hyps.tokens[row].tolist()),
            "score": round(float(hyps.scores[row]), 6),
        }
        if n_best > 1 and hyps.ranked_tokens is not None and hyps.ranked_scores is not None:
            record["n_best"] = [
                {"output": target.decode(tokens.tolist()), "score": round(float(score), 6)}
                for tokens, score in zip(hyps.ranked_tokens[row], hyps.ranked_scores[row])
            ]
        if attention and hyps.weights is not None:
            length = int(hyps.lengths[row])
            record["attention"] = rounded(head_mean(hyps.weights, 3)[row, :length].float().cpu().tolist())
            if hyps.weights.dim() == 4:
                record["attention_heads"] = rounded(hyps.weights[row, :, :length].float().cpu().tolist())
        records.append(record)
    return records
