"""Additive attention (Bahdanau et al. 2015): score(q, k) = v^T tanh(W q + U k)."""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from eeap import kernels
from eeap.attend.base import ScoreAttention
from eeap.config.registry import ATTEND, PositiveInt
from eeap.kernels.additive import additive_scores


@ATTEND.register("additive")
class AdditiveAttention(ScoreAttention):
    """score(q, k) = v^T tanh(W q + U k); U k is computed once per source.

    With EEAP's fused CPU kernels on (``eeap.kernels``), the scores come from one C++ loop with the same results.

    # Parameters
    hidden_dim: size of the tanh layer (default: query_dim).
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: Optional[PositiveInt] = None) -> None:
        super().__init__(query_dim, key_dim)
        hidden_dim = hidden_dim or query_dim
        self.query_layer = nn.Linear(query_dim, hidden_dim, bias=False)  # W
        self.key_layer = nn.Linear(key_dim, hidden_dim, bias=False)  # U
        self.energy = nn.Linear(hidden_dim, 1, bias=False)  # v

    def project_keys(self, keys: Tensor) -> Tensor:
        return self.key_layer(keys)  # (batch, src_len, hidden)

    def score(self, query: Tensor, keys: Tensor, step: Optional[int] = None) -> Tensor:
        q = self.query_layer(query)  # (batch, tgt_len, hidden)
        if kernels.applies(q, keys):
            return additive_scores(q, keys, self.energy.weight.view(-1))  # (batch, tgt_len, src_len)
        return self.energy((q.unsqueeze(2) + keys.unsqueeze(1)).tanh()).squeeze(-1)  # (batch, tgt_len, src_len)
