"""Transformer encoder (pre-norm) on EEAP's multi-head attention."""

from __future__ import annotations

from torch import Tensor, nn

from eeap.attend.multihead import MultiHeadAttention
from eeap.config.registry import ENCODE, Fraction, PositiveInt
from eeap.encode.base import SequenceEncoder


class FeedForward(nn.Sequential):
    """Position-wise feed-forward block: Linear → ReLU → Dropout → Linear."""

    def __init__(self, dim: int, ff_dim: int, dropout: float) -> None:
        super().__init__(nn.Linear(dim, ff_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ff_dim, dim))


class EncoderLayer(nn.Module):
    """x + SelfAttention(LN(x)), then x + FF(LN(x)); (batch, len, dim) -> same."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = MultiHeadAttention(dim, dim, num_heads=heads, dropout=dropout)
        self.ff = FeedForward(dim, ff_dim, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = self.norm1(x)
        x = x + self.dropout(self.attention(h, h, h, mask)[0])
        return x + self.dropout(self.ff(self.norm2(x)))


@ENCODE.register("transformer")
class TransformerEncoder(SequenceEncoder):
    """A stack of pre-norm Transformer layers; ``output_dim`` = input_dim (positions come from the embedding).

    # Parameters
    input_dim: supplied by the task.
    layers, heads, ff_dim, dropout: the usual Transformer sizes.

    # Shapes
    x (batch, len, input_dim), mask (batch, len) True = token -> (batch, len, input_dim).
    """

    def __init__(
        self,
        input_dim: int,
        layers: PositiveInt = 2,
        heads: PositiveInt = 4,
        ff_dim: PositiveInt = 256,
        dropout: Fraction = 0.1,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(input_dim, heads, ff_dim, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(input_dim)
        self.output_dim = input_dim

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x) * mask.unsqueeze(-1)
