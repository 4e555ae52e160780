"""Location-based attention (Luong et al. 2015): a = softmax(W_a q), from the query alone."""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from eeap.attend.base import ScoreAttention
from eeap.config.registry import ATTEND, PositiveInt
from eeap.errors import DataError


@ATTEND.register("location")
class LocationAttention(ScoreAttention):
    """score(q)_s = (W_a q)_s for source positions s < max_len; the keys are not looked at.

    # Parameters
    max_len: the longest source this attention can address.
    """

    def __init__(self, query_dim: int, key_dim: int, max_len: PositiveInt = 64) -> None:
        super().__init__(query_dim, key_dim)
        self.max_len = max_len
        self.locations = nn.Linear(query_dim, max_len)  # W_a

    def score(self, query: Tensor, keys: Tensor, step: Optional[int] = None) -> Tensor:
        src_len = keys.shape[1]
        if src_len > self.max_len:
            raise DataError(f"location attention: source of length {src_len} is longer than max_len={self.max_len}")
        return self.locations(query)[..., :src_len]  # (batch, tgt_len, src_len)
