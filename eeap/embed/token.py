"""Token embedding (words, characters or subwords → vectors), with optional positions."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

from eeap.config.registry import EMBED, Fraction, PositiveInt
from eeap.data.text import PAD
from eeap.embed.base import TokenEmbedder
from eeap.errors import DataError


def sinusoidal_positions(max_len: int, dim: int) -> Tensor:
    """The fixed sine/cosine position table of Vaswani et al. 2017; (max_len, dim)."""
    position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)  # (max_len, 1)
    rate = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))  # (ceil(dim/2),)
    table = torch.zeros(max_len, dim)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate[: dim // 2])
    return table


@EMBED.register("token")
class TokenEmbedding(TokenEmbedder):
    """Token ids → vectors, plus sinusoidal or learned positions; ``output_dim`` = ``dim``.

    # Parameters
    vocab_size: supplied by the task from its vocabulary.
    dim: vector size.
    positions: ``none``, ``sinusoidal`` or ``learned``.
    max_len: longest sequence positions are made for.
    dropout: dropout on the output.
    scale: multiply token vectors by sqrt(dim), with weights drawn from N(0, 1/dim) (the Transformer's habit).

    # Shapes
    tokens (batch, len) -> (batch, len, dim)
    """

    def __init__(
        self,
        vocab_size: int,
        dim: PositiveInt = 64,
        positions: Literal["none", "sinusoidal", "learned"] = "none",
        max_len: PositiveInt = 512,
        dropout: Fraction = 0.0,
        scale: bool = False,
    ) -> None:
        super().__init__()
        self.output_dim = dim
        self.tokens = nn.Embedding(vocab_size, dim, padding_idx=PAD)
        self.positions, self.max_len = positions, max_len
        self.scale = math.sqrt(dim) if scale else 1.0
        if scale:  # vectors of norm ~1 after scaling, as the Transformer's shared input/output embedding wants
            nn.init.normal_(self.tokens.weight, std=dim**-0.5)
            with torch.no_grad():
                self.tokens.weight[PAD].zero_()
        if positions == "learned":
            self.position_table = nn.Embedding(max_len, dim)
        elif positions == "sinusoidal":
            self.register_buffer("position_table", sinusoidal_positions(max_len, dim), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: Tensor, offset: int = 0) -> Tensor:
        """``offset``: position of the first token (decoding one step at a time)."""
        x = self.tokens(tokens) * self.scale  # (batch, len, dim)
        if self.positions != "none":
            end = offset + tokens.shape[1]
            if end > self.max_len:
                raise DataError(f"sequence of length {end} is longer than the embedding's max_len={self.max_len}")
            index = torch.arange(offset, end, device=tokens.device)
            table: Any = self.position_table  # an Embedding (learned) or a buffer (sinusoidal)
            table = table(index) if self.positions == "learned" else table[index]
            x = x + table  # (batch, len, dim)
        return self.dropout(x)
