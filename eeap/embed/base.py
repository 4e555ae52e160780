"""The roles of the embed kind: token embeddings (ids → vectors) and image embeddings (images → a grid of vectors)."""

from __future__ import annotations

import abc

from torch import Tensor, nn

from eeap.config.registry import Role


class Embedding(nn.Module, Role):
    """The embedding role: inputs → (batch, len, output_dim) vectors; ``output_dim`` is set by the constructor."""

    registry_kind = "embed"
    role_name = "embedding"
    output_dim: int

    @abc.abstractmethod
    def forward(self, inputs: Tensor) -> Tensor:
        """Inputs → (batch, len, output_dim)."""


class TokenEmbedder(Embedding):
    """Token ids (batch, len) → vectors (batch, len, output_dim); built with the data's ``vocab_size``."""

    role_name = "token embedding (token ids → vectors)"
    supplied = ("vocab_size",)


class ImageEmbedder(Embedding):
    """Images (batch, channels, H, W) → a grid of vectors (batch, h·w, output_dim), row by row; ``grid`` = (h, w).
    Built with the data's ``in_channels`` and ``image_size``."""

    role_name = "image embedding (images → a grid of vectors)"
    supplied = ("in_channels", "image_size")
    grid: tuple[int, int]
