"""Image encoders: a pyramid of feature maps, finest first, for U-Net decoders and feature-grid captioners.

Every image encoder has ``out_channels`` and ``strides`` (one per feature map, finest first) and
``forward(images) -> list of (batch, out_channels[i], H / strides[i], W / strides[i])``. Inputs must have sides
divisible by ``strides[-1]`` (tasks pad them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Sequence, cast

import torch
from torch import Tensor, nn

from eeap.attend.spatial import Norm, SpatialDims, checkpointed, conv, max_pool, norm_layer
from eeap.config.registry import ENCODE, PositiveInt, Range
from eeap.encode.base import PyramidEncoder


def double_conv(
    in_channels: int, out_channels: int, stride: int = 1, spatial_dims: int = 2, norm: Norm = "batch"
) -> nn.Sequential:
    """(Conv 3×3 → BatchNorm → ReLU) twice (3×3×3 in 3D): the building block of U-Nets; ``stride`` 2 makes the first
    convolution halve the input's sides; ``norm: instance`` normalises each sample alone."""
    Conv = conv(spatial_dims)
    return nn.Sequential(
        Conv(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        norm_layer(norm, spatial_dims, out_channels),
        nn.ReLU(True),
        Conv(out_channels, out_channels, 3, padding=1, bias=False),
        norm_layer(norm, spatial_dims, out_channels),
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
    spatial_dims: 2 for images, 3 for volumes, supplied by the task from the data (3D convolutions and pooling).

    # Shapes
    images (batch, in_channels, H, W) -> [(batch, channels[i], H / 2^i, W / 2^i) for each level i]; volumes
    (batch, in_channels, D, H, W) likewise, with D halved too.
    """

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[PositiveInt] = (16, 32, 64, 128, 256),
        downsample: Literal["maxpool", "conv"] = "maxpool",
        spatial_dims: SpatialDims = 2,
    ) -> None:
        super().__init__()
        if len(channels) < 2:
            raise ValueError(f"channels: needs at least 2 levels, got {list(channels)}")
        strided = downsample == "conv"
        self.levels = nn.ModuleList(
            double_conv(in_channels if i == 0 else channels[i - 1], c, 2 if strided and i else 1, spatial_dims)
            for i, c in enumerate(channels)
        )
        self.pool = nn.Identity() if strided else max_pool(spatial_dims)(2)
        self.out_channels = list(channels)
        self.strides = [2**i for i in range(len(channels))]
        self.checkpointing = False  # set by the task (model.checkpointing): each level's activations recomputed

    def forward(self, images: Tensor) -> list[Tensor]:
        features = []
        x = images
        for i, level in enumerate(self.levels):
            x = self.pool(x) if i else x
            x = checkpointed(level, x, enabled=self.checkpointing)  # (batch, channels[i], [D / 2^i,] H / 2^i, W / 2^i)
            features.append(x)
        return features


WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")


@ENCODE.register("smp")
class SmpEncoder(PyramidEncoder):
    """Any encoder of segmentation-models-pytorch by name (ResNets, EfficientNets, MobileNets, timm's ``tu-*``...).

    # Parameters
    in_channels: image channels, supplied by the task.
    name: the smp encoder's name, e.g. ``resnet18``, ``efficientnet-b0``, ``mobilenet_v2``, ``tu-convnext_atto``.
    depth: how many times the encoder halves the image (3 to 5).
    weights: pretrained weights: a local file (``.safetensors``, ``.pth``, ``.pt``, ``.bin``: the backbone's
        state dict as torchvision, timm or smp save it; a classifier head in it is ignored), or a name such as
        ``imagenet`` (smp downloads those on first use from the Hub, or reads its local cache; offline and not
        cached, one line says so); null trains from scratch.
    normalize: subtract the backbone's pretraining mean and divide by its std (ImageNet's unless timm names
        others) inside the model, so images in [0, 1] go in at training and predict alike.

    # Shapes
    images (batch, in_channels, H, W) -> [(batch, out_channels[i], H / 2^(i+1), W / 2^(i+1)) for i < depth].
    """

    def __init__(
        self,
        in_channels: int,
        name: str = "resnet18",
        depth: Annotated[int, Range(1, 5)] = 5,
        weights: Optional[str] = None,
        normalize: bool = False,
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
        self.encoder: nn.Module
        is_file = weights is not None and (
            weights.endswith(WEIGHT_SUFFIXES) or "/" in weights or Path(weights).is_file()
        )
        if is_file:
            self.encoder = encoder_from_file(name, in_channels, depth, Path(str(weights)))
        else:
            try:
                self.encoder = smp.encoders.get_encoder(name, in_channels=in_channels, depth=depth, weights=weights)
            except KeyError as e:  # smp's message lists the weights this encoder has
                raise ValueError(f"weights: {e.args[0]}") from None
            except (OSError, ConnectionError, RuntimeError) as e:
                raise ValueError(
                    f"weights: could not load '{weights}' weights for {name} ({type(e).__name__}); "
                    "they are downloaded on first use, and this machine is offline or the download failed. "
                    "Give a local weights file (weights: path/to/file.safetensors) or null to train from scratch"
                ) from None
        # smp's first feature is the input image itself (stride 1); the pyramid starts at stride 2.
        self.out_channels = list(cast(Any, self.encoder).out_channels[1:])
        self.strides = [2 ** (i + 1) for i in range(depth)]
        mean, std = pretraining_statistics(name) if normalize else ((0.0,) * 3, (1.0,) * 3)
        if in_channels != 3:  # grayscale (or more channels): the mean of the colour statistics
            mean, std = (sum(mean) / 3,) * in_channels, (sum(std) / 3,) * in_channels
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.normalize = normalize

    mean: Tensor  # (1, in_channels, 1, 1)
    std: Tensor

    def forward(self, images: Tensor) -> list[Tensor]:
        if self.normalize:
            images = (images - self.mean) / self.std  # (batch, in_channels, H, W)
        return self.encoder(images)[1:]


def pretraining_statistics(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean and std a backbone was pretrained with: timm's for a ``tu-`` model, else ImageNet's."""
    if name.startswith("tu-"):
        import timm

        config = timm.get_pretrained_cfg(name[3:])
        if config is not None and getattr(config, "mean", None):
            return tuple(config.mean), tuple(config.std)
    return (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def read_state_dict(path: Path) -> dict:
    """A weights file's tensors: safetensors, or a torch pickle read with ``weights_only`` (a state dict, or one
    under ``state_dict`` / ``model``, its ``module.`` prefixes dropped)."""
    if not path.is_file():
        raise ValueError(f"weights: file not found: {path} (give a local .safetensors or .pth file, or null)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (any unreadable file: one line)
        raise ValueError(f"weights: {path} is not a readable weights file ({type(e).__name__})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"weights: {path} holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


HEADS = ("fc.", "classifier.", "head.", "_fc.", "last_linear.", "head_drop.", "conv_head.", "bn2.", "global_pool.")


def encoder_from_file(name: str, in_channels: int, depth: int, path: Path) -> nn.Module:
    """An smp encoder with its backbone's weights from a local file. Every weight the encoder has must be in the
    file with its shape (a file of another backbone, or one missing keys, is one line); the file's classifier head
    is ignored. For another number of input channels than 3, the first convolution's weights are adapted as timm
    adapts pretrained ones."""
    import segmentation_models_pytorch as smp

    encoder = smp.encoders.get_encoder(name, in_channels=in_channels, depth=depth, weights=None)
    target = encoder.model if name.startswith("tu-") else encoder  # timm's features_only model under smp's wrapper
    state = read_state_dict(path)
    own = target.state_dict()
    if name.startswith("tu-"):  # timm's feature wrapper names nested modules with "_" (stages.0 -> stages_0)
        renamed = {k: state[k.replace("_", ".", 1)] for k in own if k not in state and k.replace("_", ".", 1) in state}
        state = {**state, **renamed}
    missing = [k for k in own if k not in state]
    if missing:
        shown = "another backbone's weights?" if len(missing) == len(own) else f"e.g. {missing[0]}"
        raise ValueError(f"weights: {path} lacks {len(missing)} of the {len(own)} weights {name} has ({shown})")
    if in_channels != 3:  # the first convolution's RGB weights made in_channels' (summed for grayscale), as timm does
        from timm.models import adapt_input_conv

        for k, weight in own.items():
            if weight.dim() == 4 and weight.shape[1] == in_channels and state[k].shape[1] == 3:
                if weight.shape[0] == state[k].shape[0] and weight.shape[2:] == state[k].shape[2:]:
                    state[k] = adapt_input_conv(in_channels, state[k])
    wrong = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong:
        k = wrong[0]
        raise ValueError(
            f"weights: {path} does not fit {name}: {k} is {tuple(state[k].shape)} there, {tuple(own[k].shape)} here "
            f"({len(wrong)} such weights; another variant of the backbone?)"
        )
    extra = [k for k in state if k not in own and not k.startswith(HEADS)]
    if extra and not name.startswith("tu-"):
        raise ValueError(f"weights: {path} has {len(extra)} weights {name} lacks, e.g. {extra[0]}: another backbone's?")
    target.load_state_dict({k: state[k] for k in own})
    return encoder


def timm_model_exists(name: str) -> bool:
    """Whether timm knows a model of this name (smp reaches every timm model as ``tu-<name>``)."""
    import timm

    return timm.is_model(name)
