"""Dot-product attention (Luong et al. 2015): score(q, k) = q · k."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from eeap.attend.base import ScoreAttention, require_same_size
from eeap.config.registry import ATTEND


@ATTEND.register("dot")
class DotAttention(ScoreAttention):
    """score(q, k) = q · k. Needs query_dim == key_dim."""

    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__(query_dim, key_dim)
        require_same_size("dot", query_dim, key_dim)

    def score(self, query: Tensor, keys: Tensor, step: Optional[int] = None) -> Tensor:
        return torch.bmm(query, keys.transpose(1, 2))  # (batch, tgt_len, src_len)
