"""The segmentation task: an image encoder's feature pyramid → Attention U-Net decoder → per-pixel classes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Sequence, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from eeap.config.loader import validate
from eeap.config.registry import (
    ENCODE,
    PREDICT,
    TASK,
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    accepted_parameters,
)
from eeap.data.images import read_image
from eeap.encode.base import PyramidEncoder
from eeap.errors import ConfigError, DataError
from eeap.model.plotting import display_image, gate_figure, volume_centre, volume_figure, volume_slice
from eeap.model.prediction import DecodeOptions, Problems
from eeap.model.task import AttendSection, Example, Task, build_predict
from eeap.predict.base import SegmentationHead
from eeap.tasks.segmentation.info import SegmentationInfo

DEFAULT_GATE = {"type": "attention_gate"}


@dataclass
class WindowConfig:
    """``model.inference``: how a model trained on patches covers a whole volume at validation, test and predict
    (MONAI's ``sliding_window_inference``): windows of the training patch's size, ``overlap`` (a fraction of the
    window) apart, blended with ``gaussian`` weights (centre voxels count most) or ``constant`` ones, ``batch_size``
    windows at a time."""

    overlap: Fraction = 0.5
    mode: Literal["gaussian", "constant"] = "gaussian"
    batch_size: PositiveInt = 4


@TASK.register("segmentation")
class SegmentationTask(Task):
    """Per-pixel classification with Attention U-Net; the gates' coefficient maps show where each skip looked.

    Binary data (background + one class) gets one output channel (sigmoid); more classes get one channel each
    (softmax). Images of any size are padded to a multiple of the encoder's coarsest stride, and the prediction
    cropped back.

    # Parameters
    info: the data's classes and image form, supplied by the framework.
    encoder: the image pyramid encoder.
    decoder: the segmentation head (with its skip gates).
    optim: optimizer section (see ``eeap.model.task.OptimConfig``).
    dice_weight, ce_weight: the loss is dice_weight · Dice loss + ce_weight · cross-entropy (smp's losses).
    aux_weight: weight of each deep-supervision output's loss (with ``predict.deep_supervision``).
    plot_examples: validation images whose gate maps are plotted each validation.
    channels_last: keep weights and images in channels-last memory layout (faster convolutions on GPUs;
        ``channels_last_3d`` for volumes).
    inference: for volumes, the sliding window (``WindowConfig``).
    checkpointing: gradient checkpointing per level: each encoder level's and decoder level's activations are
        recomputed in the backward pass instead of kept, for 3D steps that would not fit a GPU's memory (same
        outputs and gradients, one more forward pass); with ``trainer.precision: bf16-mixed`` the other half of it.

    Volumes (3D data: ``decathlon``, ``volume_folder``, ``ct_volumes``) train on patches and are evaluated whole with a
    sliding window; their scores are per volume, averaged over volumes: Dice and the 95th-percentile Hausdorff
    distance in mm (``hd95``, MONAI's).
    """

    info_class = SegmentationInfo
    monitor = ("val/dice", "max")
    scores: tuple[str, ...] = ("dice", "iou")

    def metric_names(self) -> list[str]:
        return ["loss", *self.scores]

    def __init__(
        self,
        info: SegmentationInfo,
        encoder: PyramidEncoder,
        decoder: SegmentationHead,
        optim: Optional[dict] = None,
        dice_weight: float = 1.0,
        ce_weight: float = 1.0,
        aux_weight: float = 0.4,
        plot_examples: int = 2,
        channels_last: bool = False,
        inference: Optional[dict] = None,
        checkpointing: bool = False,
    ) -> None:
        super().__init__(optim)
        import segmentation_models_pytorch as smp

        self.volumes = info.spatial_dims == 3
        window = validate(dict(inference or {}), WindowConfig, "model.inference") if self.volumes else None
        self.window = window or WindowConfig()
        if self.volumes:
            self.scores = ("dice", "hd95")
        self.info, self.encoder, self.decoder = info, encoder, decoder
        mode = "binary" if info.binary else "multiclass"
        self.dice_loss = smp.losses.DiceLoss(mode)
        self.ce_loss = smp.losses.SoftBCEWithLogitsLoss() if info.binary else torch.nn.CrossEntropyLoss()
        self.dice_weight, self.ce_weight, self.aux_weight = dice_weight, ce_weight, aux_weight
        self.plot_examples = plot_examples
        for part in (encoder, decoder) if checkpointing else ():
            if not hasattr(part, "checkpointing"):
                raise ConfigError(
                    f"model.checkpointing: '{getattr(part, 'registered_name', type(part).__name__)}' has no "
                    "per-level checkpointing (unet_conv and attention_unet have)"
                )
            setattr(part, "checkpointing", True)  # noqa: B010  (an attribute, not a submodule)
        self.channels_last = channels_last
        self.memory_format = torch.channels_last_3d if self.volumes else torch.channels_last
        if channels_last:
            self.to(memory_format=self.memory_format)

    @classmethod
    def from_config(
        cls,
        info: SegmentationInfo,
        encode: dict,
        predict: dict,
        attend: AttendSection = DEFAULT_GATE,
        optim: Optional[dict] = None,
        dice_weight: NonNegativeFloat = 1.0,
        ce_weight: NonNegativeFloat = 1.0,
        aux_weight: NonNegativeFloat = 0.4,
        plot_examples: NonNegativeInt = 2,
        channels_last: bool = False,
        inference: Optional[dict] = None,
        checkpointing: bool = False,
        spatial_dims: Optional[Literal[2, 3]] = None,
    ) -> SegmentationTask:
        """The builder: the ``model`` section's parts, built and wired. There is no separate embedding: the image
        encoder reads the pixels.

        ::

            image ─ encode (image pyramid encoder; in_channels from the data) ─ feature maps, finest first
                  ─ predict (segmentation head; encoder_channels, encoder_strides, num_classes) ─ per-pixel logits
                       └ attend (U-Net skip gate; in_channels, gating_channels), one per skip level

        # Parameters
        encode: the image encoder (``unet_conv``, the paper's; or ``smp`` with any segmentation-models-pytorch
            encoder).
        predict: the decoder (``attention_unet``).
        attend: the skip connections' gate (default ``{type: attention_gate}``); ``none`` for a plain U-Net.
        optim, dice_weight, ce_weight, aux_weight, plot_examples, channels_last, inference, checkpointing: as for
            the task.
        spatial_dims: 2 (images) or 3 (volumes), checked against the data's; by default taken from the data and
            handed to every part.
        """
        dims = info.spatial_dims
        if spatial_dims is not None and spatial_dims != dims:
            have = "3D volumes" if dims == 3 else "2D images"
            raise ConfigError(
                f"model.spatial_dims: {spatial_dims}, but the data are {have}; a {spatial_dims}D model needs "
                + ("a volume source (decathlon, volume_folder, ct_volumes)" if spatial_dims == 3 else "an image source")
            )
        if inference is not None and dims == 2:
            raise ConfigError("model.inference: the sliding window is for volumes (3D data); these data are 2D images")
        wired = {}
        for section, registry, where in ((encode, ENCODE, "model.encode"), (predict, PREDICT, "model.predict")):
            name = str(section.get("type")) if isinstance(section, dict) else ""
            takes = bool(name) and "spatial_dims" in accepted_parameters(registry.get(name, f"{where}.type"))
            if dims == 3 and not takes:
                raise ConfigError(
                    f"{where}: '{name}' works on 2D images only; volumes need a part that takes spatial_dims "
                    f"(model.encode: unet_conv, model.predict: attention_unet)"
                )
            wired[where] = {"spatial_dims": dims} if takes else {}
        encoder = ENCODE.build(
            encode, "model.encode", role=PyramidEncoder, in_channels=info.channels, **wired["model.encode"]
        )
        decoder = build_predict(
            predict,
            attend,
            SegmentationHead,
            encoder_channels=encoder.out_channels,
            encoder_strides=encoder.strides,
            num_classes=1 if info.binary else len(info.classes),
            **wired["model.predict"],
        )
        return cls(
            info,
            encoder,
            decoder,
            optim,
            dice_weight,
            ce_weight,
            aux_weight,
            plot_examples,
            channels_last,
            inference,
            checkpointing,
        )

    def example_inputs(self) -> dict[str, tuple[Tensor, dict[int, str]]]:
        """Images (batch, C, H, W) at the data's image size (volumes: (batch, C, X, Y, Z), a patch), batch dynamic."""
        return {"images": (torch.rand(2, self.info.channels, *self.info.image_size), {0: "batch"})}

    def exported_outputs(self) -> list[str]:
        return ["logits"]

    def forward(self, images: Tensor) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """Images (batch, C, H, W) -> logits (batch, outputs, H, W), gate maps [(batch, 1, h, w)], aux logits;
        volumes (batch, C, X, Y, Z) alike, with three spatial axes."""
        sides = tuple(images.shape[2:])
        stride = self.encoder.size_divisibility
        pads = [-side % stride for side in sides]
        if any(pads):  # F.pad takes the last axis first
            images = F.pad(images, [n for pad in reversed(pads) for n in (0, pad)], mode="replicate")
        if self.channels_last:
            images = images.contiguous(memory_format=self.memory_format)
        logits, gates, aux = self.decoder(self.encoder(images), images.shape[2:])
        if any(pads):  # crop back to the input: (batch, outputs, *sides)
            box = (..., *(slice(0, side) for side in sides))
            logits = logits[box]
            gates = [crop_like(g, images, sides) for g in gates]
            aux = [a[box] for a in aux]
        return logits, gates, aux

    def infer(self, images: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Logits and gate maps of whole images; a volume larger than the training patch is covered by a sliding
        window (MONAI's ``sliding_window_inference``, ``model.inference``), its windows' outputs blended."""
        if not self.volumes:
            logits, gates, _ = self(images)
            return logits, gates
        from eeap.data.volumes import require

        require("monai", "the sliding window over whole volumes")
        from monai.inferers import sliding_window_inference

        def windows(patch: Tensor) -> tuple[Tensor, ...]:
            logits, gates, _ = self(patch)
            return (logits, *gates)  # gate maps at their levels' resolutions; MONAI scales each window's place

        outputs = sliding_window_inference(
            images,
            list(self.info.image_size),
            self.window.batch_size,
            windows,
            overlap=self.window.overlap,
            mode=self.window.mode,
        )
        logits, *gates = outputs if isinstance(outputs, tuple) else (outputs,)
        return cast(Tensor, logits), list(gates)  # logits (batch, outputs, X, Y, Z)

    def loss(self, logits: Tensor, masks: Tensor) -> Tensor:
        """Dice + cross-entropy of logits (batch, outputs, H, W) against masks (batch, H, W)."""
        target = masks.unsqueeze(1).float() if self.info.binary else masks  # binary: (batch, 1, H, W)
        return self.dice_weight * self.dice_loss(logits, target) + self.ce_weight * self.ce_loss(logits, target)

    def classes_of(self, logits: Tensor) -> Tensor:
        """Per-pixel class indices (batch, H, W) from logits (batch, outputs, H, W)."""
        return (logits[:, 0] > 0).long() if self.info.binary else logits.argmax(1)

    def training_loss(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        logits, _, aux = self(batch["images"])
        loss = self.loss(logits, batch["masks"])
        for extra in aux:
            loss = loss + self.aux_weight * self.loss(extra, batch["masks"])
        return loss, {"loss": loss}

    def new_metrics(self) -> dict[str, Any]:
        """Images: Dice (torchmetrics') and IoU over the foreground classes, each pooled over the whole split.
        Volumes: Dice and HD95 (mm) per volume and class (MONAI's), averaged over volumes, then classes."""
        from torchmetrics.segmentation import DiceScore

        from eeap.model.metrics import ForegroundIoU, PerVolume

        classes = len(self.info.classes)
        if self.volumes:
            return {"dice": PerVolume(classes, "dice"), "hd95": PerVolume(classes, "hd95")}
        return {
            "dice": DiceScore(
                classes, include_background=False, average="macro", aggregation_level="global", input_format="index"
            ),
            "iou": ForegroundIoU(classes),
        }

    def evaluate(self, batch: dict, split: str, metrics: dict[str, Any]) -> tuple[Tensor, dict]:
        logits, gates = self.infer(batch["images"])
        predicted = self.classes_of(logits)
        for metric in metrics.values():
            if self.volumes:
                metric.update(predicted, batch["masks"], batch["spacing"])
            else:
                metric.update(predicted, batch["masks"])
        return self.loss(logits, batch["masks"]), {"predicted": predicted, "gates": gates}

    def validation_examples(self, batch: dict, outputs: dict) -> list[Example]:
        predicted, gates = outputs["predicted"], outputs["gates"]
        return [self.example(batch, i, predicted, gates) for i in range(min(self.plot_examples, len(predicted)))]

    def example(self, batch: dict, i: int, predicted: Tensor, gates: list[Tensor]) -> Example:
        """Validation example i as the loggers show it: image, predicted and true masks, the gates over the image."""
        figure = self.figure(batch["images"][i], predicted[i], [g[i] for g in gates], batch["masks"][i])
        image, output, truth = (
            batch["images"][i].float().cpu(),
            predicted[i].cpu().numpy(),
            batch["masks"][i].cpu().numpy(),
        )
        if self.volumes:  # the axial slice through the target's centre: (Y, X) planes
            z = volume_centre([("true", truth)], truth.shape)[2]
            image, output, truth = (volume_slice(np.asarray(a), 2, z) for a in (image, output, truth))
        return Example(display_image(image), output, truth, figure, classes=len(self.info.classes))

    def figure(
        self,
        image: Tensor,
        predicted: Tensor,
        gates: list[Tensor],
        mask: Optional[Tensor] = None,
        centre: Optional[Sequence[int]] = None,
    ) -> Any:
        """The image, each gate's coefficients laid over it (finest first), the prediction and the true mask; for a
        volume, each of them in axial, coronal and sagittal slices through ``centre`` (a voxel; by default the
        target's centre)."""
        masks = [("predicted", predicted)] + ([("true mask", mask)] if mask is not None else [])
        if self.volumes:
            return volume_figure(
                image.float().cpu(),
                [g[0].float().cpu() for g in gates],
                [(name, m.cpu()) for name, m in masks],
                len(self.info.classes),
                centre,
            )
        return gate_figure(
            image.float().cpu(),
            [g[0].float().cpu() for g in gates],
            [(name, m.cpu()) for name, m in masks],
            len(self.info.classes),
        )

    batchable = False  # images of any size, one at a time
    writes_files = True  # a mask PNG per image

    def check_options(self, options: DecodeOptions) -> None:
        if options.n_best > 1 or options.attention:
            raise DataError(
                "--n-best and --attention: a segmentation model gives one mask per image, and its gates are maps "
                "(see them with --plot-attention)"
            )
        if options.maps and not self.volumes:
            raise DataError("--maps: writes probability and gate volumes of a 3D model; this model segments 2D images")

    def read_input(self, text: str, number: int, problems: Problems) -> Optional[Any]:
        """The image at the line's path, of any size; for a volume model, the NIfTI scan read as training read its
        volumes (orientation, spacing, intensity: ``info.volume``)."""
        try:
            if self.volumes:
                return self.read_scan(Path(text))
            return torch.as_tensor(read_image(Path(text), self.info.channels, None, resize=False))
        except DataError as e:
            problems.skip(f"line {number}: {e}")
            return None

    def read_scan(self, path: Path) -> Any:
        """A scan as the model reads it (``eeap.data.volumes.Volume``), its channels checked."""
        from eeap.data.volumes import VolumeReading, read_volume

        volume = read_volume(path, VolumeReading.from_state(self.info.volume or {}))
        if volume.image.shape[0] != self.info.channels:
            raise DataError(
                f"{path}: {volume.image.shape[0]} channels; the model reads volumes of {self.info.channels} "
                "(a 4D file holds its channels last)"
            )
        return volume

    def predict_batch(
        self, items: list, texts: list[str], options: DecodeOptions, figures: bool
    ) -> tuple[list[dict], list[Any]]:
        """Each image's mask (class indices, (H, W)) and, when asked for, the figure of its gate maps. A volume's
        labels are put back on the scan's own grid and orientation (``eeap.data.volumes.restore``)."""
        records, shown = [], []
        for item in items:
            if self.volumes:
                from eeap.data.volumes import restore

                image = torch.from_numpy(item.image)  # (C, X, Y, Z) as the model reads it
                logits, gates = self.infer(image[None].to(self.device))
                predicted = self.classes_of(logits)[0].cpu()  # (X, Y, Z)
                orientation = (self.info.volume or {}).get("orientation")
                record = {"mask": restore(predicted.numpy(), item, orientation), "volume": item}
                record["read"] = (image, predicted, [g[0].cpu() for g in gates])  # as the model read it: figures
                if options.maps:  # probabilities (outputs, X, Y, Z) and each gate's map, on the scan's grid
                    chances = logits.sigmoid() if self.info.binary else logits.softmax(1)
                    record["probability"] = restore(chances[0].float().cpu().numpy(), item, orientation)
                    record["gates"] = [
                        restore(
                            F.interpolate(g.float(), size=image.shape[1:], mode="trilinear")[0].cpu().numpy(),
                            item,
                            orientation,
                        )
                        for g in gates
                    ]
                records.append(record)
            else:
                image = item
                logits, gates = self.infer(image[None].to(self.device))
                predicted = self.classes_of(logits)[0].cpu()  # (H, W)
                records.append({"mask": predicted})
            shown.append(self.figure(image, predicted, [g[0] for g in gates]) if figures else None)
        return records, shown

    def write_output(self, record: dict, out_dir: Path, number: int, text: str) -> dict:
        """The mask as a PNG (class indices; 0/255 for binary) named for the line and the image; a volume's labels
        as NIfTI with the scan's affine and header. The file's path reported."""
        if self.volumes:
            from eeap.data.volumes import write_like

            name = Path(text).name.removesuffix(".gz").removesuffix(".nii")
            target = out_dir / f"{number:05d}_{name}.nii.gz"
            write_like(record["mask"], record["volume"], target)
            written = {"output": str(target)}
            if "probability" in record:
                maps = {"probability": record["probability"]}
                maps |= {f"gate{i + 1}": gate for i, gate in enumerate(record["gates"])}
                for key, array in maps.items():
                    path = out_dir / f"{number:05d}_{name}_{key}.nii.gz"
                    write_like(array[..., 0] if array.shape[-1] == 1 else array, record["volume"], path)
                    written[key] = str(path)
            return written
        from PIL import Image

        scale = 255 if self.info.binary else 1
        target = out_dir / f"{number:05d}_{Path(text).stem}.png"
        Image.fromarray((record["mask"].numpy() * scale).astype(np.uint8)).save(target)
        return {"output": str(target)}


def crop_like(gate: Tensor, padded: Tensor, sides: tuple[int, ...]) -> Tensor:
    """The part of a gate map (batch, 1, *coarser sides) over a padded image (batch, C, *padded sides) that covers
    the unpadded ``sides``."""
    kept = [-(-side * g // p) for side, g, p in zip(sides, gate.shape[2:], padded.shape[2:])]  # ceil(side / stride)
    box: Any = (..., *(slice(0, k) for k in kept))
    return gate[box]
