"""Sparsemax attention (Martins & Astudillo 2016): the Euclidean projection of the scores onto the simplex, which
gives exactly zero weight to low-scoring positions."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from eeap.attend.base import DEFAULT_SCORE, ScoreAttention, WrappedAttention
from eeap.config.registry import ATTEND


def sparsemax(scores: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """sparsemax(z)_i = max(z_i − τ, 0), τ chosen so the weights sum to 1 (over the positions where mask is True).

    With z sorted in decreasing order, the support size is k = max{k : 1 + k · z_(k) > Σ_{j≤k} z_(j)} and
    τ = (Σ_{j≤k} z_(j) − 1) / k. A fully masked row gets all zeros.

    # Shapes
    scores (..., src_len), mask broadcastable to it (True = attend) -> weights (..., src_len).
    """
    z = scores.float()
    if mask is not None:
        z = z.masked_fill(~mask, -1e9)  # never in the support: far below any real score
    ordered, _ = z.sort(-1, descending=True)  # (..., src_len)
    cumulative = ordered.cumsum(-1)
    k = torch.arange(1, z.shape[-1] + 1, device=z.device, dtype=z.dtype)  # 1..src_len
    support = (1 + k * ordered > cumulative).sum(-1, keepdim=True).clamp(min=1)  # (..., 1)
    tau = (cumulative.gather(-1, support - 1) - 1) / support.to(z.dtype)  # (..., 1)
    weights = (z - tau).clamp(min=0)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)
    return weights.to(scores.dtype)


@ATTEND.register("sparsemax")
class SparsemaxAttention(WrappedAttention):
    """Any score attention's scores, normalised by sparsemax instead of softmax: sparse weights that still sum to 1.

    # Parameters
    score: the attention whose score is used, from its section (default ``{type: general}``).
    """

    def __init__(self, query_dim: int, key_dim: int, score: ScoreAttention = DEFAULT_SCORE) -> None:  # type: ignore[assignment]
        super().__init__(query_dim, key_dim, score)

    def normalize(self, scores: Tensor, mask: Optional[Tensor], query: Tensor, step: Optional[int] = None) -> Tensor:
        return sparsemax(scores, mask)  # (batch, tgt_len, src_len)
