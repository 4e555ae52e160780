"""Local attention (Luong et al. 2015): attend within a window [p_t - D, p_t + D] around an aligned position."""

from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import Tensor, nn

from eeap.attend.base import DEFAULT_SCORE, ScoreAttention, WrappedAttention, masked_softmax
from eeap.config.registry import ATTEND, NonNegativeInt, PositiveInt


@ATTEND.register("local")
class LocalAttention(WrappedAttention):
    """Local attention around p_t, with any score-based attention inside the window.

    ``monotonic`` (local-m): p_t = t, the decoder step. ``predictive`` (local-p):
    p_t = S · sigmoid(v_p^T tanh(W_p h_t)) with S the source length, and the window's weights are multiplied by
    exp(-(s - p_t)² / (2σ²)), σ = D / 2, as in the paper (no renormalisation after).

    # Parameters
    mode: ``monotonic`` or ``predictive``.
    window: D, the half-width of the window.
    score: the attention whose score is used inside the window, from its section (default ``{type: general}``).
    hidden_dim: size of W_p (predictive), default query_dim.

    Its notes: ``centre`` (batch, tgt_len), p_t, and ``first`` / ``last`` (batch, tgt_len), the window's first and
    last source positions inside the source.
    """

    notes = ("centre", "first", "last")

    def __init__(
        self,
        query_dim: int,
        key_dim: int,
        mode: Literal["monotonic", "predictive"] = "predictive",
        window: NonNegativeInt = 5,
        score: ScoreAttention = DEFAULT_SCORE,  # type: ignore[assignment]
        hidden_dim: Optional[PositiveInt] = None,
    ) -> None:
        super().__init__(query_dim, key_dim, score)
        self.mode, self.window = mode, window
        self.uses_step = mode == "monotonic"  # p_t = t
        self.normalized = mode == "monotonic"  # local-p multiplies the weights by a Gaussian, as in the paper
        if mode == "predictive":
            hidden_dim = hidden_dim or query_dim
            self.position = nn.Sequential(
                nn.Linear(query_dim, hidden_dim, bias=False), nn.Tanh(), nn.Linear(hidden_dim, 1, bias=False)
            )  # v_p^T tanh(W_p h_t)

    def centres(self, query: Tensor, lengths: Tensor, step: Optional[int]) -> Tensor:
        """p_t for each query; query (batch, tgt_len, query_dim), lengths (batch,) -> (batch, tgt_len)."""
        if self.mode == "monotonic":
            first = 0 if step is None else step
            positions = torch.arange(first, first + query.shape[1], device=query.device, dtype=query.dtype)
            return positions.expand(query.shape[0], -1)
        return lengths.to(query.dtype).unsqueeze(1) * torch.sigmoid(self.position(query).squeeze(-1))

    def normalize(self, scores: Tensor, mask: Optional[Tensor], query: Tensor, step: Optional[int] = None) -> Tensor:
        batch, tgt_len, src_len = scores.shape
        if mask is None:
            mask = torch.ones(batch, 1, src_len, dtype=torch.bool, device=scores.device)
        lengths = mask.any(1).sum(-1)  # (batch,) source lengths
        p = self.centres(query, lengths, step).unsqueeze(-1)  # (batch, tgt_len, 1)
        s = torch.arange(src_len, device=scores.device, dtype=scores.dtype)  # (src_len,)
        inside = (s >= torch.floor(p) - self.window) & (s <= torch.floor(p) + self.window)  # (batch, tgt, src)
        if self.noted is not None:
            end = (lengths - 1).view(-1, 1).to(p.dtype)  # (batch, 1) the last source position
            first = (torch.floor(p) - self.window).squeeze(-1).clamp(min=0)  # (batch, tgt_len)
            last = torch.minimum((torch.floor(p) + self.window).squeeze(-1), end)  # (batch, tgt_len)
            self.note(centre=p.squeeze(-1), first=first.long(), last=last.long())
        weights = masked_softmax(scores, mask & inside)  # (batch, tgt_len, src_len)
        if self.mode == "predictive":
            sigma = self.window / 2
            weights = weights * torch.exp(-((s - p) ** 2) / (2 * sigma**2))
        return weights
