"""Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs"): a kernel feature map instead of the softmax,
so the context can be computed without a (tgt_len × src_len) matrix."""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eeap.attend.base import Attention
from eeap.config.registry import ATTEND


def feature_map(x: Tensor) -> Tensor:
    """φ(x) = elu(x) + 1: positive features, so every similarity φ(q)·φ(k) is positive."""
    return F.elu(x) + 1


@ATTEND.register("linear")
class LinearAttention(Attention):
    """weights_ij = φ(q_i)·φ(W k_j) / Σ_j' φ(q_i)·φ(W k_j'), context_i = Σ_j weights_ij v_j, with φ(x) = elu(x) + 1.

    The reference path builds the weights; without weights asked for (``need_weights=False``), the context is
    φ(q_i) · (Σ_j φ(W k_j) v_jᵀ) / (φ(q_i) · Σ_j φ(W k_j)): time and memory linear in the source and target lengths.
    Padding is left out of both sums; a query with nothing to attend to gets zeros.

    # Parameters
    query_dim, key_dim: supplied by the task; W projects keys to the query's size.
    """

    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__(query_dim, key_dim)
        self.key_layer = nn.Linear(key_dim, query_dim, bias=False)  # W

    def project_keys(self, keys: Tensor) -> Tensor:
        return feature_map(self.key_layer(keys))  # φ(W k): (batch, src_len, query_dim)

    def score(self, query: Tensor, keys: Any, step: Optional[int] = None) -> Tensor:
        return torch.bmm(feature_map(query), keys.transpose(1, 2))  # φ(q)·φ(Wk) > 0: (batch, tgt_len, src_len)

    def normalize(self, scores: Tensor, mask: Optional[Tensor], query: Tensor, step: Optional[int] = None) -> Tensor:
        if mask is not None:
            scores = scores * mask  # (batch, tgt_len, src_len), padding gets 0
        total = scores.sum(-1, keepdim=True)  # (batch, tgt_len, 1), 0 only where nothing is attended to
        return scores / torch.where(total > 0, total, torch.ones_like(total))

    def attend_projected(
        self,
        query: Tensor,
        keys: Any,
        values: Tensor,
        mask: Optional[Tensor] = None,
        step: Optional[int] = None,
        need_weights: Optional[bool] = None,
    ) -> tuple[Tensor, Optional[Tensor]]:
        if need_weights is not False or (mask is not None and mask.dim() == 3):
            return super().attend_projected(query, keys, values, mask, step, need_weights)  # the reference path
        single = query.dim() == 2
        phi_q = feature_map(query.unsqueeze(1) if single else query)  # (batch, tgt_len, query_dim)
        if mask is not None:
            keys = keys * mask.unsqueeze(-1)  # padding out of both sums: (batch, src_len, query_dim)
        summary = torch.bmm(keys.transpose(1, 2), values)  # Σ_j φ(Wk_j) v_jᵀ: (batch, query_dim, value_dim)
        total = keys.sum(1, keepdim=True)  # Σ_j φ(Wk_j): (batch, 1, query_dim)
        norm = (phi_q * total).sum(-1, keepdim=True)  # (batch, tgt_len, 1)
        norm = torch.where(norm > 0, norm, torch.ones_like(norm))  # nothing attended to: a zero context
        context = torch.bmm(phi_q, summary) / norm  # (batch, tgt_len, value_dim)
        return (context.squeeze(1) if single else context), None
