"""General / bilinear attention (Luong et al. 2015): score(q, k) = q^T W k."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from eeap.attend.base import ScoreAttention
from eeap.config.registry import ATTEND


@ATTEND.register("general")
class GeneralAttention(ScoreAttention):
    """score(q, k) = q^T W k, W of shape (query_dim, key_dim); keys are projected once by W."""

    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__(query_dim, key_dim)
        self.weight = nn.Linear(key_dim, query_dim, bias=False)  # k -> W k

    def project_keys(self, keys: Tensor) -> Tensor:
        return self.weight(keys)  # (batch, src_len, query_dim)

    def score(self, query: Tensor, keys: Tensor, step: Optional[int] = None) -> Tensor:
        return torch.bmm(query, keys.transpose(1, 2))  # (batch, tgt_len, src_len)
