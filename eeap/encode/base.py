"""The roles of the encode kind: sequence encoders (vectors → contextual vectors) and image pyramid encoders."""

from __future__ import annotations

import abc

from torch import Tensor, nn

from eeap.config.registry import Role


class SequenceEncoder(nn.Module, Role):
    """The sequence encoder role: ``forward(x, mask)`` with x (batch, len, input_dim), mask (batch, len) True = real
    → (batch, len, output_dim), zero where masked. Built with ``input_dim``; sets ``output_dim``."""

    registry_kind = "encode"
    role_name = "sequence encoder"
    supplied = ("input_dim",)
    output_dim: int

    @abc.abstractmethod
    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """(batch, len, input_dim) → (batch, len, output_dim)."""


class PyramidEncoder(nn.Module, Role):
    """The image pyramid encoder role: images (batch, in_channels, H, W) → a list of feature maps, finest first,
    map i of shape (batch, out_channels[i], H / strides[i], W / strides[i]). Built with ``in_channels``, and
    ``spatial_dims`` (2 for images, 3 for volumes: (batch, in_channels, D, H, W)) where the encoder takes it; an
    encoder that does not is 2D only. Inputs must have sides divisible by ``size_divisibility`` (the coarsest
    stride)."""

    registry_kind = "encode"
    role_name = "image pyramid encoder"
    supplied = ("in_channels", "spatial_dims")
    out_channels: list[int]
    strides: list[int]

    @property
    def size_divisibility(self) -> int:
        """Image sides must be multiples of this (the coarsest stride)."""
        return self.strides[-1]

    @abc.abstractmethod
    def forward(self, images: Tensor) -> list[Tensor]:
        """(batch, in_channels, H, W) → feature maps, finest first."""
