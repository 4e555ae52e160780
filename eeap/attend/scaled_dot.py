"""Scaled dot-product attention (Vaswani et al. 2017): score(q, k) = q · k / sqrt(d)."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from eeap.attend.base import ScoreAttention, require_same_size
from eeap.config.registry import ATTEND


@ATTEND.register("scaled_dot")
class ScaledDotAttention(ScoreAttention):
    """score(q, k) = q · k / sqrt(key_dim). Needs query_dim == key_dim."""

    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__(query_dim, key_dim)
        require_same_size("scaled_dot", query_dim, key_dim)
        self.scale = 1.0 / math.sqrt(key_dim)

    def score(self, query: Tensor, keys: Tensor, step: Optional[int] = None) -> Tensor:
        return torch.bmm(query, keys.transpose(1, 2)) * self.scale  # (batch, tgt_len, src_len)
