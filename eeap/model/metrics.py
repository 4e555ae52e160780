"""Corpus metrics that are not in torchmetrics, or too slow there."""

from __future__ import annotations

from typing import Any, Sequence

import sacrebleu
import torch
import torchmetrics


class SacrebleuCorpus(torchmetrics.Metric):
    """A sacrebleu corpus metric kept as its sufficient statistics, summed over batches and processes; compute gives
    exactly sacrebleu's corpus score, as a fraction in [0, 1].

    Each update keeps only the per-sentence statistics sacrebleu would sum (n-gram matches and counts), so states add
    up across batches and DDP ranks; compute turns the totals into the corpus score.

    # Parameters
    metric: a ``sacrebleu.metrics`` object; size: how many statistics it keeps per sentence.
    """

    full_state_update = False
    stats: torch.Tensor

    def __init__(self, metric: Any, size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metric = metric
        self.add_state("stats", default=torch.zeros(size, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> None:
        """hypotheses: one string per sentence; references: per sentence, its reference strings."""
        streams = [list(stream) for stream in zip(*references)]  # sacrebleu wants one list per reference
        stats = self.metric._extract_corpus_statistics(list(hypotheses), streams)  # per sentence, a list of ints
        self.stats += torch.tensor(stats, dtype=torch.float64).sum(0)

    def compute(self) -> torch.Tensor:
        score = self.metric._compute_score_from_stats([int(x) for x in self.stats.tolist()])
        return torch.tensor(min(score.score / 100, 1.0), dtype=torch.float64)  # a perfect BLEU reads 100.00000000000004


class CorpusChrF(SacrebleuCorpus):
    """Corpus chrF as sacrebleu computes it. torchmetrics' CHRFScore gives the same number but takes over a second per
    thousand short sentences, more than the model's own validation.

    # Parameters
    char_order, word_order, beta: as ``sacrebleu.metrics.CHRF`` (defaults: chrF, not chrF++).
    """

    def __init__(self, char_order: int = 6, word_order: int = 0, beta: int = 2, **kwargs: Any) -> None:
        chrf = sacrebleu.metrics.CHRF(char_order=char_order, word_order=word_order, beta=beta)
        # hypothesis count, reference count and matches per n-gram order
        super().__init__(chrf, 3 * (char_order + word_order), **kwargs)


class CorpusBLEU(SacrebleuCorpus):
    """Corpus BLEU as sacrebleu computes it, its default smoothing included. torchmetrics' SacreBLEUScore takes ~8× as
    long and does not smooth: where some n-gram order has n-grams but no match it gave 0, while the logged sacrebleu
    signature said ``smooth:exp``.

    # Parameters
    tokenize: sacrebleu's tokenizer name; smooth_method: as ``sacrebleu.metrics.BLEU``.
    """

    def __init__(self, tokenize: str = "13a", smooth_method: str = "exp", **kwargs: Any) -> None:
        bleu = sacrebleu.metrics.BLEU(tokenize=tokenize, smooth_method=smooth_method)
        # hypothesis and reference length, then matches and totals per n-gram order
        super().__init__(bleu, 2 + 2 * bleu.max_ngram_order, **kwargs)


def bleu_signature(tokenize: str = "13a") -> str:
    """The sacrebleu signature of ``CorpusBLEU(tokenize)``'s score, so scores compare across versions."""
    bleu = sacrebleu.metrics.BLEU(tokenize=tokenize)
    bleu.corpus_score(["a"], [["a"]])  # the signature needs the number of references, known after scoring
    return str(bleu.get_signature())


class ForegroundIoU(torchmetrics.Metric):
    """IoU per foreground class, pooled over every pixel of the split, then averaged over the classes.

    Aggregated like the Dice we report (torchmetrics' DiceScore with ``aggregation_level="global"``), so for one
    class IoU = Dice / (2 − Dice). torchmetrics' MeanIoU instead averages per image, which weighs a small shape
    missed in one image as much as a whole image; beside a pooled Dice that read as a contradiction.
    A class absent from both predictions and targets of the whole split is left out of the mean.

    # Parameters
    num_classes: classes including the background, class 0.

    # Shapes
    update: predicted and target class indices, both (batch, H, W).
    """

    full_state_update = False
    stats: torch.Tensor

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.add_state("intersection", default=torch.zeros(num_classes - 1, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("union", default=torch.zeros(num_classes - 1, dtype=torch.float64), dist_reduce_fx="sum")
        self.intersection: torch.Tensor
        self.union: torch.Tensor

    def update(self, predicted: torch.Tensor, target: torch.Tensor) -> None:
        classes = torch.arange(1, self.num_classes, device=target.device).view(-1, 1, 1, 1)  # (C-1, 1, 1, 1)
        pred, true = predicted.unsqueeze(0) == classes, target.unsqueeze(0) == classes  # (C-1, batch, H, W)
        self.intersection += (pred & true).flatten(1).sum(1).double()
        self.union += (pred | true).flatten(1).sum(1).double()

    def compute(self) -> torch.Tensor:
        present = self.union > 0
        if not present.any():
            return torch.tensor(0.0, dtype=torch.float64)
        return (self.intersection[present] / self.union[present]).mean()
