"""The identity encoder: the embedding is the memory (e.g. a CNN's feature grid, already contextual)."""

from __future__ import annotations

from torch import Tensor

from eeap.config.registry import ENCODE
from eeap.encode.base import SequenceEncoder


@ENCODE.register("identity")
class Identity(SequenceEncoder):
    """Passes the embedded sequence through unchanged.

    # Parameters
    input_dim: supplied by the task; ``output_dim`` equals it.

    # Shapes
    x (batch, len, input_dim), mask (batch, len) -> x.
    """

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.output_dim = input_dim

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return x
