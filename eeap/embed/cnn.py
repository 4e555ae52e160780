"""A small CNN whose last feature map becomes a grid of vectors (the "CNN feature grid" of Show, Attend and Tell)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from eeap.config.registry import EMBED, PositiveInt
from eeap.embed.base import ImageEmbedder


@EMBED.register("cnn")
class ConvGrid(ImageEmbedder):
    """Conv 3×3 → BatchNorm → ReLU blocks, each but the last followed by 2×2 max pooling; the final map's positions
    become vectors, plus a learned position.

    # Parameters
    in_channels, image_size: supplied by the task from its data.
    channels: output channels of each block; ``output_dim`` = the last.

    # Shapes
    images (batch, in_channels, H, W) -> (batch, H' · W', channels[-1]); ``grid`` = (H', W').
    """

    def __init__(self, in_channels: int, image_size: list, channels: Sequence[PositiveInt] = (32, 64)) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        height, width = image_size
        poolings = len(channels) - 1
        if min(height, width) < 2**poolings:
            fits = max(1, min(height, width).bit_length())  # blocks whose poolings leave at least one position
            raise ValueError(
                f"images of {height}×{width} are too small for {len(channels)} blocks: their {poolings} 2×2 poolings "
                f"need sides of at least {2**poolings}; use at most {fits} channels entries for these images"
            )
        for i, out in enumerate(channels):
            blocks += [
                nn.Conv2d(in_channels if i == 0 else channels[i - 1], out, 3, padding=1),
                nn.BatchNorm2d(out),
                nn.ReLU(),
            ]
            if i + 1 < len(channels):
                blocks.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
        self.features = nn.Sequential(*blocks)
        self.grid = (height, width)
        self.output_dim = channels[-1]
        self.positions = nn.Parameter(torch.randn(1, height * width, self.output_dim) * 0.02)

    def forward(self, images: Tensor) -> Tensor:
        return self.features(images).flatten(2).transpose(1, 2) + self.positions  # (batch, H'·W', channels)
