"""Image patches → vectors (ViT, Dosovitskiy et al. 2021), with learned positions."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from eeap.config.registry import EMBED, Fraction, PositiveInt
from eeap.embed.base import ImageEmbedder


@EMBED.register("patch")
class PatchEmbedding(ImageEmbedder):
    """Cuts an image into non-overlapping ``patch_size`` squares and projects each to ``dim``, plus a learned position.

    # Parameters
    in_channels, image_size: supplied by the task from its data.
    patch_size: side of a square patch; must divide both image sides.
    dim: vector size.
    dropout: dropout on the output.

    # Shapes
    images (batch, in_channels, H, W) -> (batch, H/p · W/p, dim); ``grid`` = (H/p, W/p).
    """

    def __init__(
        self,
        in_channels: int,
        image_size: list,
        patch_size: PositiveInt = 4,
        dim: PositiveInt = 64,
        dropout: Fraction = 0.0,
    ) -> None:
        super().__init__()
        height, width = image_size
        if height % patch_size or width % patch_size:
            raise ValueError(f"patch_size {patch_size} does not divide the image size {height}×{width}")
        self.grid = (height // patch_size, width // patch_size)
        self.output_dim = dim
        self.project = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        self.positions = nn.Parameter(torch.randn(1, self.grid[0] * self.grid[1], dim) * 0.02)
        self.dropout = nn.Dropout(dropout)

    def forward(self, images: Tensor) -> Tensor:
        patches = self.project(images).flatten(2).transpose(1, 2)  # (batch, patches, dim)
        return self.dropout(patches + self.positions)
