"""Image encoders: a pyramid of feature maps, finest first, for U-Net decoders and feature-grid captioners.

Every image encoder has ``out_channels`` and ``strides`` (one per feature map, finest first) and
``forward(images) -> list of (batch, out_channels[i], H / strides[i], W / strides[i])``. Inputs must have sides
divisible by ``strides[-1]`` (tasks pad them).
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Sequence

from torch import Tensor, nn

from eeap.config.registry import ENCODE, PositiveInt, Range
from eeap.encode.base import PyramidEncoder


def double_conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """(Conv 3×3 → BatchNorm → ReLU) twice: the building block of U-Nets; ``stride`` 2 makes the first convolution
    halve the input's sides."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(True),
    )


@ENCODE.register("unet_conv")
class ConvEncoder(PyramidEncoder):
    """The plain encoder of U-Net and Attention U-Net: a double convolution per level, halving the sides between.

    # Parameters
    in_channels: image channels, supplied by the task.
    channels: channels of each level, finest first; the last level is the bottleneck.
    downsample: how a level halves the sides: ``maxpool`` (2×2 max pooling before the level's convolutions, the
        papers') or ``conv`` (the level's first convolution has stride 2, as MONAI's AttentionUnet; the same
        arithmetic without the pooling pass, see bench/README.md).

    # Shapes
    images (batch, in_channels, H, W) -> [(batch, channels[i], H / 2^i, W / 2^i) for each level i].
    """

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[PositiveInt] = (16, 32, 64, 128, 256),
        downsample: Literal["maxpool", "conv"] = "maxpool",
    ) -> None:
        super().__init__()
        if len(channels) < 2:
            raise ValueError(f"channels: needs at least 2 levels, got {list(channels)}")
        strided = downsample == "conv"
        self.levels = nn.ModuleList(
            double_conv(in_channels if i == 0 else channels[i - 1], c, stride=2 if strided and i else 1)
            for i, c in enumerate(channels)
        )
        self.pool = nn.Identity() if strided else nn.MaxPool2d(2)
        self.out_channels = list(channels)
        self.strides = [2**i for i in range(len(channels))]

    def forward(self, images: Tensor) -> list[Tensor]:
        features = []
        x = images
        for i, level in enumerate(self.levels):
            x = level(x if i == 0 else self.pool(x))  # (batch, channels[i], H / 2^i, W / 2^i)
            features.append(x)
        return features


@ENCODE.register("smp")
class SmpEncoder(PyramidEncoder):
    """Any encoder of segmentation-models-pytorch by name (ResNets, EfficientNets, MobileNets, timm's ``tu-*``...).

    # Parameters
    in_channels: image channels, supplied by the task.
    name: the smp encoder's name, e.g. ``resnet18``, ``efficientnet-b0``, ``mobilenet_v2``, ``tu-convnext_atto``.
    depth: how many times the encoder halves the image (3 to 5).
    weights: pretrained weights (e.g. ``imagenet``), downloaded from the Hub on first use; null trains from scratch.
        Offline, weights that are not already in the local cache fail with a clear message.

    # Shapes
    images (batch, in_channels, H, W) -> [(batch, out_channels[i], H / 2^(i+1), W / 2^(i+1)) for i < depth].
    """

    def __init__(
        self,
        in_channels: int,
        name: str = "resnet18",
        depth: Annotated[int, Range(1, 5)] = 5,
        weights: Optional[str] = None,
    ) -> None:
        super().__init__()
        import segmentation_models_pytorch as smp

        names = smp.encoders.get_encoder_names()
        known = name in names or name.startswith("tu-") and timm_model_exists(name[3:])
        if not known:
            import difflib

            close = difflib.get_close_matches(name, names, n=3)
            raise ValueError(
                f"name: unknown smp encoder '{name}'"
                + (f"; did you mean {', '.join(close)}?" if close else "")
                + " (segmentation_models_pytorch.encoders.get_encoder_names() lists them; "
                "'tu-' + any timm model name also works)"
            )
        try:
            self.encoder = smp.encoders.get_encoder(name, in_channels=in_channels, depth=depth, weights=weights)
        except KeyError as e:  # smp's message lists the weights this encoder has
            raise ValueError(f"weights: {e.args[0]}") from None
        except (OSError, ConnectionError, RuntimeError) as e:
            raise ValueError(
                f"weights: could not load '{weights}' weights for {name} ({type(e).__name__}); "
                "they are downloaded on first use, and this machine is offline or the download failed. "
                "Set this section's weights to null to train from scratch"
            ) from None
        # smp's first feature is the input image itself (stride 1); the pyramid starts at stride 2.
        self.out_channels = list(self.encoder.out_channels[1:])
        self.strides = [2 ** (i + 1) for i in range(depth)]

    def forward(self, images: Tensor) -> list[Tensor]:
        return self.encoder(images)[1:]


def timm_model_exists(name: str) -> bool:
    """Whether timm knows a model of this name (smp reaches every timm model as ``tu-<name>``)."""
    import timm

    return timm.is_model(name)
