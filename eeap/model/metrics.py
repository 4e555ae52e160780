"""Corpus metrics that are not in torchmetrics, or too slow there."""

from __future__ import annotations

import warnings
from typing import Any, Optional, Sequence

import sacrebleu
import torch
import torch.nn.functional as F
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
        # added on the states' device, the module's (a GPU's when it trains there)
        self.stats += torch.tensor(stats, dtype=torch.float64, device=self.stats.device).sum(0)

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


class PerVolume(torchmetrics.Metric):
    """A segmentation score per volume and foreground class, MONAI's, averaged over the volumes (as papers on CT and
    MRI report them), then over the classes.

    ``dice``: ``monai.metrics.compute_dice``; ``hd95``: the 95th-percentile symmetric Hausdorff distance
    (``monai.metrics.compute_hausdorff_distance`` with ``percentile=95``) in millimetres, from each volume's voxel
    spacing. A volume whose truth lacks a class is left out of that class's mean (its Dice is undefined); for HD95
    so is one whose prediction lacks it (the distance is infinite): ``missed`` counts those.

    # Parameters
    num_classes: classes including the background, class 0.
    score: ``dice`` or ``hd95``.

    # Shapes
    update: predicted and target class indices, both (batch, D, H, W); spacing (batch, 3) in mm.
    """

    full_state_update = False

    def __init__(self, num_classes: int, score: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes, self.score = num_classes, score
        zeros = torch.zeros(num_classes - 1, dtype=torch.float64)
        self.add_state("total", default=zeros.clone(), dist_reduce_fx="sum")
        self.add_state("count", default=zeros.clone(), dist_reduce_fx="sum")
        self.add_state("missed", default=zeros.clone(), dist_reduce_fx="sum")
        self.total: torch.Tensor
        self.count: torch.Tensor
        self.missed: torch.Tensor

    def update(self, predicted: torch.Tensor, target: torch.Tensor, spacing: Optional[torch.Tensor] = None) -> None:
        from monai.metrics import compute_dice, compute_hausdorff_distance

        pred = F.one_hot(predicted.long(), self.num_classes).movedim(-1, 1)  # (batch, classes, D, H, W)
        true = F.one_hot(target.long(), self.num_classes).movedim(-1, 1)
        present = true[:, 1:].flatten(2).any(2)  # (batch, classes - 1)
        if self.score == "dice":
            values = compute_dice(pred, true, include_background=False, ignore_empty=True).double()
        else:
            steps = spacing.double().cpu().tolist() if spacing is not None else None
            with warnings.catch_warnings():  # an empty prediction is counted in ``missed``; MONAI's own notices
                warnings.simplefilter("ignore")
                values = compute_hausdorff_distance(pred, true, percentile=95, spacing=steps).double()
            self.missed += (present & ~torch.isfinite(values.to(present.device))).sum(0).double()
        values = values.to(self.total.device)  # (batch, classes - 1)
        valid = torch.isfinite(values) & present.to(values.device)
        self.total += torch.where(valid, values, torch.zeros_like(values)).sum(0)
        self.count += valid.sum(0).double()

    def compute(self) -> torch.Tensor:
        seen = self.count > 0
        if not seen.any():
            return torch.tensor(float("nan") if self.score == "hd95" else 0.0, dtype=torch.float64)
        return (self.total[seen] / self.count[seen]).mean()
