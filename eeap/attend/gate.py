"""The attention gate of Attention U-Net (Oktay et al. 2018) for skip connections."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from eeap.attend.base import SkipGate
from eeap.attend.spatial import SpatialDims, batch_norm, conv, resample
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
    spatial_dims: 2 for images, 3 for volumes (the paper's CT setting), supplied by the model from the data; in 3D
        every convolution is 3D and the resampling trilinear.

    # Shapes
    x (batch, in_channels, H, W); g (batch, gating_channels, H', W') -> out (batch, in_channels, H, W),
    α (batch, 1, H, W); volumes add a depth D before H.
    """

    def __init__(
        self,
        in_channels: int,
        gating_channels: int,
        inter_channels: NonNegativeInt = 0,
        subsample: PositiveInt = 2,
        project: bool = True,
        spatial_dims: SpatialDims = 2,
    ) -> None:
        super().__init__()
        inter = inter_channels or max(in_channels // 2, 1)
        Conv, Norm = conv(spatial_dims), batch_norm(spatial_dims)
        self.theta = Conv(in_channels, inter, kernel_size=subsample, stride=subsample, bias=False)
        self.phi = Conv(gating_channels, inter, kernel_size=1)
        self.psi = Conv(inter, 1, kernel_size=1)
        self.out = (
            nn.Sequential(Conv(in_channels, in_channels, kernel_size=1), Norm(in_channels))
            if project
            else nn.Identity()
        )

    def forward(self, x: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        theta = self.theta(x)  # (batch, inter, [D/s,] H/s, W/s)
        phi = resample(self.phi(g), theta.shape[2:])  # (batch, inter, [D/s,] H/s, W/s)
        alpha = self.psi(F.relu(theta + phi)).sigmoid()  # (batch, 1, [D/s,] H/s, W/s)
        alpha = resample(alpha, x.shape[2:])  # (batch, 1, [D,] H, W)
        return self.out(alpha * x), alpha
