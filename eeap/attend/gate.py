"""The attention gate of Attention U-Net (Oktay et al. 2018) for skip connections."""

from __future__ import annotations

from typing import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from eeap.attend.base import SkipGate
from eeap.config.registry import ATTEND, NonNegativeInt, PositiveInt


@ATTEND.register("attention_gate")
class AttentionGate(SkipGate):
    """α = σ(ψ(ReLU(θ(x) + φ(g)))), resampled to x; output (W(α · x), α).

    θ: strided convolution (kernel = stride = ``subsample``) on the skip features x; φ: 1×1 convolution on the
    gating signal g, resampled to θ(x)'s grid; ψ: 1×1 convolution to one channel; W: 1×1 convolution + batch norm
    (the paper's), or none (``project: false``, as MONAI's AttentionUnet: the output is α · x).

    # Parameters
    in_channels: channels of x (the skip connection), supplied by the model.
    gating_channels: channels of g (the coarser decoder level), supplied by the model.
    inter_channels: channels of θ and φ (default in_channels // 2).
    subsample: θ's stride.
    project: apply W to the gated features (the paper's); false saves a full-resolution 1×1 convolution and batch
        norm per skip, about a tenth of a small U-Net's training step on a CPU (bench/README.md).

    # Shapes
    x (batch, in_channels, H, W); g (batch, gating_channels, H', W') -> out (batch, in_channels, H, W),
    α (batch, 1, H, W).
    """

    def __init__(
        self,
        in_channels: int,
        gating_channels: int,
        inter_channels: NonNegativeInt = 0,
        subsample: PositiveInt = 2,
        project: bool = True,
    ) -> None:
        super().__init__()
        inter = inter_channels or max(in_channels // 2, 1)
        self.theta = nn.Conv2d(in_channels, inter, kernel_size=subsample, stride=subsample, bias=False)
        self.phi = nn.Conv2d(gating_channels, inter, kernel_size=1)
        self.psi = nn.Conv2d(inter, 1, kernel_size=1)
        self.out = (
            nn.Sequential(nn.Conv2d(in_channels, in_channels, kernel_size=1), nn.BatchNorm2d(in_channels))
            if project
            else nn.Identity()
        )

    def forward(self, x: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        theta = self.theta(x)  # (batch, inter, H/s, W/s)
        phi = resample(self.phi(g), theta.shape[-2:])  # (batch, inter, H/s, W/s)
        alpha = self.psi(F.relu(theta + phi)).sigmoid()  # (batch, 1, H/s, W/s)
        alpha = resample(alpha, x.shape[-2:])  # (batch, 1, H, W)
        return self.out(alpha * x), alpha


def resample(x: Tensor, size: Sequence[int]) -> Tensor:
    """x (batch, C, h, w) bilinearly resampled to ``size``; x itself when it already has that size (interpolating
    to the same grid gives the same values, at the cost of a pass and its backward)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
