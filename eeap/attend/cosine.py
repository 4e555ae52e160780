"""Content-based attention by cosine similarity (Graves et al. 2014, Neural Turing Machines)."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eeap.attend.base import ScoreAttention, require_same_size
from eeap.config.registry import ATTEND, PositiveFloat


@ATTEND.register("cosine")
class CosineAttention(ScoreAttention):
    """score(q, k) = β · cos(q, k). Needs query_dim == key_dim.

    # Parameters
    sharpness: β, the key strength (NTM); cosines lie in [-1, 1], so β > 1 makes the softmax peakier.
    learn_sharpness: make β a trained parameter.
    """

    def __init__(
        self, query_dim: int, key_dim: int, sharpness: PositiveFloat = 1.0, learn_sharpness: bool = False
    ) -> None:
        super().__init__(query_dim, key_dim)
        require_same_size("cosine", query_dim, key_dim)
        self.sharpness = nn.Parameter(torch.tensor(float(sharpness)), requires_grad=learn_sharpness)

    def project_keys(self, keys: Tensor) -> Tensor:
        return F.normalize(keys, dim=-1, eps=1e-8)  # (batch, src_len, key_dim), unit length

    def score(self, query: Tensor, keys: Tensor, step: Optional[int] = None) -> Tensor:
        query = F.normalize(query, dim=-1, eps=1e-8)  # (batch, tgt_len, query_dim)
        return self.sharpness * torch.bmm(query, keys.transpose(1, 2))  # (batch, tgt_len, src_len)
