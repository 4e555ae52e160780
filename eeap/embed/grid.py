"""Any image encoder's coarsest feature map as a grid of vectors (Show, Attend and Tell's annotation vectors)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from eeap.config.registry import EMBED, NonNegativeInt
from eeap.embed.base import ImageEmbedder
from eeap.encode.base import PyramidEncoder

DEFAULT_ENCODER = {"type": "smp", "name": "resnet18", "depth": 5, "weights": None}


@EMBED.register("image_grid")
class ImageGrid(ImageEmbedder):
    """An image pyramid encoder's last feature map as (batch, h·w, dim) vectors, projected to ``dim`` if set, plus
    learned positions.

    # Parameters
    in_channels, image_size: supplied by the task from its data; the sides must be multiples of the encoder's
        coarsest stride.
    encoder: the image encoder, built from its section (default ``{type: smp, name: resnet18, depth: 5, weights:
        null}``; ``{type: unet_conv}``, or ``smp`` with any segmentation-models-pytorch or timm ``tu-*`` encoder).
    dim: project the features to this size (0 keeps the encoder's channels).

    # Shapes
    images (batch, in_channels, H, W) -> (batch, H/s · W/s, output_dim); ``grid`` = (H/s, W/s).
    """

    def __init__(
        self,
        in_channels: int,
        image_size: list,
        encoder: PyramidEncoder = DEFAULT_ENCODER,  # type: ignore[assignment]
        dim: NonNegativeInt = 0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        stride = encoder.size_divisibility
        if image_size[0] % stride or image_size[1] % stride:
            raise ValueError(
                f"images of {image_size[0]}×{image_size[1]} do not divide by the encoder's stride {stride}; "
                f"choose image sides that are multiples of {stride}"
            )
        self.grid = (image_size[0] // stride, image_size[1] // stride)
        channels = encoder.out_channels[-1]
        self.project = nn.Linear(channels, dim) if dim else nn.Identity()
        self.output_dim = dim or channels
        self.positions = nn.Parameter(torch.randn(1, self.grid[0] * self.grid[1], self.output_dim) * 0.02)

    frozen = False  # set by the task while the encoder is frozen: no gradient through it, batch norms as in inference

    def train(self, mode: bool = True) -> ImageGrid:
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    def forward(self, images: Tensor) -> Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            features = self.encoder(images)[-1]  # (batch, C, H/s, W/s)
        return self.project(features.flatten(2).transpose(1, 2)) + self.positions  # (batch, h·w, output_dim)
