"""The Attention U-Net decoder (Oktay et al. 2018): skip connections filtered by attention gates."""

from __future__ import annotations

from typing import Any, Literal, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eeap.attend.base import SkipGate
from eeap.attend.spatial import (
    INTERPOLATION,
    Norm,
    SpatialDims,
    batch_norm,
    checkpointed,
    conv,
    conv_transpose,
    norm_layer,
)
from eeap.config.registry import PREDICT, PositiveInt
from eeap.encode.image import double_conv
from eeap.predict.base import SegmentationHead

Block = Literal["double", "single"]


@PREDICT.register("attention_unet")
class AttentionUNetDecoder(SegmentationHead):
    """From the coarsest feature map up: upsample ×2, gate the skip features with the coarser level as the gating
    signal, concatenate, double convolution; a 1×1 convolution gives per-pixel logits at the input's size.

    Without gates (``model.attend: none``) the skips pass ungated: a plain U-Net, the baseline.

    # Parameters
    encoder_channels, encoder_strides: the encoder's feature pyramid, supplied by the task.
    num_classes: output channels, supplied by the task (1 for binary segmentation).
    attention: one skip gate per skip level, coarse to fine, built by the task from ``model.attend``; or none.
    decoder_channels: channels of each decoder level, finest first (default: the encoder's skip channels).
    deep_supervision: also predict from every coarser decoder level (``aux`` logits, upsampled to the input).
    upsample: how the coarser level is brought to the skip's size: ``bilinear`` interpolation (the paper's), or
        ``transposed``, a learned 3×3 transposed convolution with stride 2 → BatchNorm → ReLU to the level's
        decoder channels (MONAI's AttentionUnet; needs each level at twice its coarser neighbour's resolution).
    block: the convolutions after concatenating: ``double`` (3×3 conv → BN → ReLU, twice; the paper's) or ``single``
        (MONAI's); or a list with one of these per decoder level, finest first like ``decoder_channels`` (e.g.
        ``[single, double, double]``: the paper's block where the maps are small, the cheap one at full resolution).
    gating: the gates' gating signal: the ``coarse`` level before upsampling (the paper's), or the ``upsampled`` one,
        on the skip's grid (MONAI's; with the gate's ``subsample: 1`` no resampling is left in the gate).
    norm: the decoder blocks' normalisation: ``batch`` (the paper's) or ``instance`` (each sample's own statistics,
        with a learned scale and shift: nnU-Net's, and MONAI's AttentionUnet's merge convolution; steadier than
        BatchNorm on the two-patch batches 3D training affords).
    spatial_dims: 2 for images, 3 for volumes, supplied by the task from the data (3D convolutions, trilinear
        resampling).

    # Shapes
    features [(batch, encoder_channels[i], H / s_i, W / s_i)] -> logits (batch, num_classes, H, W),
    gates [(batch, 1, H / s_i, W / s_i) for each skip level, finest first], aux [(batch, num_classes, H, W)];
    volumes add a depth D before H, divided by the strides alike.
    """

    def __init__(
        self,
        encoder_channels: list,
        encoder_strides: list,
        num_classes: int,
        attention: Sequence[SkipGate] = (),
        decoder_channels: Optional[list[PositiveInt]] = None,
        deep_supervision: bool = False,
        upsample: Literal["bilinear", "transposed"] = "bilinear",
        block: Union[Block, list[Block]] = "double",
        gating: Literal["coarse", "upsampled"] = "coarse",
        norm: Norm = "batch",
        spatial_dims: SpatialDims = 2,
    ) -> None:
        super().__init__()
        self.mode = INTERPOLATION[spatial_dims]
        self.checkpointing = False  # set by the task (model.checkpointing): each level's activations recomputed
        skips = list(encoder_channels[:-1])
        decoder_channels = list(decoder_channels or skips)
        if len(decoder_channels) != len(skips):
            raise ValueError(
                f"decoder_channels: expected {len(skips)} levels (one per skip connection of the "
                f"encoder), got {len(decoder_channels)}"
            )
        blocks = [block] * len(skips) if isinstance(block, str) else list(block)
        if len(blocks) != len(skips):
            raise ValueError(
                f"block: expected one of 'double', 'single', or a list of {len(skips)} of them (one per decoder level, "
                f"finest first), got {len(blocks)}: {list(blocks)}"
            )
        if attention and len(attention) != len(skips):
            raise ValueError(f"{len(skips)} skip levels need {len(skips)} gates, got {len(attention)}")
        self.strides = list(encoder_strides)
        if upsample == "transposed" and any(b != 2 * a for a, b in zip(self.strides, self.strides[1:])):
            raise ValueError(
                f"upsample: 'transposed' doubles the resolution from level to level, but the encoder's strides are "
                f"{self.strides}; use upsample: bilinear"
            )
        self.gates = nn.ModuleList(attention)
        self.gate_upsampled = gating == "upsampled"
        self.ups = nn.ModuleList()
        self.blocks = nn.ModuleList()
        coarser = encoder_channels[-1]
        for level in reversed(range(len(skips))):  # coarse to fine
            width = decoder_channels[level]
            if upsample == "transposed":
                self.ups.append(transposed_up(coarser, width, spatial_dims))
                coarser = width
            merge = double_conv if blocks[level] == "double" else single_conv
            self.blocks.append(merge(coarser + skips[level], width, spatial_dims=spatial_dims, norm=norm))
            coarser = width
        self.head = conv(spatial_dims)(decoder_channels[0], num_classes, 1)
        self.aux_heads = (
            nn.ModuleList(conv(spatial_dims)(c, num_classes, 1) for c in decoder_channels[1:])
            if deep_supervision
            else nn.ModuleList()
        )

    @classmethod
    def attention_slots(
        cls, settings: dict[str, Any], encoder_channels: Sequence[int] = (), spatial_dims: int = 2, **sizes: Any
    ) -> list[dict[str, Any]]:
        """A gate per skip level, coarse to fine: the skip's channels, gated by the next coarser level's, in the
        data's spatial dimensions."""
        skips = list(encoder_channels[:-1])
        decoder_channels = list(settings["decoder_channels"] or skips)
        if len(decoder_channels) != len(skips):
            return []  # the constructor says what is wrong
        coarser = [encoder_channels[-1], *decoder_channels[::-1]]  # coarser level's channels, coarse to fine
        learned = settings["gating"] == "upsampled" and settings["upsample"] == "transposed"
        return [  # a transposed convolution's output has the level's decoder channels
            {
                "in_channels": skips[level],
                "gating_channels": decoder_channels[level] if learned else coarser[i],
                "spatial_dims": spatial_dims,
            }
            for i, level in enumerate(reversed(range(len(skips))))
        ]

    def forward(
        self, features: list[Tensor], size: Optional[tuple[int, ...]] = None
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """Logits at ``size`` (default: the finest feature map's size times its stride), gate maps, aux logits."""
        size = size or tuple(s * self.strides[0] for s in features[0].shape[2:])
        x = features[-1]  # (batch, C_bottleneck, [D / s_last,] H / s_last, W / s_last)
        gates: list[Tensor] = []
        levels: list[Tensor] = []
        for i, block in enumerate(self.blocks):
            skip = features[-2 - i]  # (batch, C_skip, [d,] h, w)
            if self.gates and not self.gate_upsampled:
                skip, alpha = checkpointed(self.gates[i], skip, x, enabled=self.checkpointing)  # alpha (batch, 1, h, w)
                gates.insert(0, alpha)
            if self.ups:
                x = checkpointed(self.ups[i], x, enabled=self.checkpointing)  # (batch, decoder_channels[level], h, w)
            else:
                x = F.interpolate(x, size=skip.shape[2:], mode=self.mode, align_corners=False)
            if self.gates and self.gate_upsampled:
                skip, alpha = checkpointed(self.gates[i], skip, x, enabled=self.checkpointing)  # on the skip's grid
                gates.insert(0, alpha)
            x = checkpointed(block, torch.cat([x, skip], dim=1), enabled=self.checkpointing)  # (batch, width, h, w)
            levels.insert(0, x)
        logits = self.head(x)
        if logits.shape[2:] != size:
            logits = F.interpolate(logits, size=size, mode=self.mode, align_corners=False)
        aux = (
            [
                F.interpolate(head(level), size=size, mode=self.mode, align_corners=False)
                for head, level in zip(self.aux_heads, levels[1:])
            ]
            if self.training
            else []
        )
        return logits, gates, aux  # logits (batch, num_classes, H, W)


def single_conv(in_channels: int, out_channels: int, spatial_dims: int = 2, norm: Norm = "batch") -> nn.Sequential:
    """Conv 3×3 (3×3×3) → BatchNorm (or InstanceNorm) → ReLU."""
    return nn.Sequential(
        conv(spatial_dims)(in_channels, out_channels, 3, padding=1, bias=False),
        norm_layer(norm, spatial_dims, out_channels),
        nn.ReLU(True),
    )


def transposed_up(in_channels: int, out_channels: int, spatial_dims: int = 2) -> nn.Sequential:
    """Twice the resolution, learned: transposed conv 3×3 (3×3×3) with stride 2 → BatchNorm → ReLU."""
    return nn.Sequential(
        conv_transpose(spatial_dims)(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1, bias=False),
        batch_norm(spatial_dims)(out_channels),
        nn.ReLU(True),
    )
