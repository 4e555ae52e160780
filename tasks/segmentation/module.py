"""The segmentation task: an image encoder's feature pyramid → Attention U-Net decoder → per-pixel classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from eeap.config.registry import ENCODE, TASK, NonNegativeFloat, NonNegativeInt
from eeap.data.images import read_image
from eeap.encode.base import PyramidEncoder
from eeap.errors import DataError
from eeap.model.plotting import display_image, gate_figure
from eeap.model.prediction import DecodeOptions, Problems
from eeap.model.task import AttendSection, Example, Task, build_predict
from eeap.predict.base import SegmentationHead
from eeap.tasks.segmentation.info import SegmentationInfo

DEFAULT_GATE = {"type": "attention_gate"}


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
    channels_last: keep weights and images in channels-last memory layout (faster convolutions on GPUs).
    """

    info_class = SegmentationInfo
    monitor = ("val/dice", "max")
    scores = ("dice", "iou")

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
    ) -> None:
        super().__init__(optim)
        import segmentation_models_pytorch as smp

        self.info, self.encoder, self.decoder = info, encoder, decoder
        mode = "binary" if info.binary else "multiclass"
        self.dice_loss = smp.losses.DiceLoss(mode)
        self.ce_loss = smp.losses.SoftBCEWithLogitsLoss() if info.binary else torch.nn.CrossEntropyLoss()
        self.dice_weight, self.ce_weight, self.aux_weight = dice_weight, ce_weight, aux_weight
        self.plot_examples = plot_examples
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)

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
        optim, dice_weight, ce_weight, aux_weight, plot_examples, channels_last: as for the task.
        """
        encoder = ENCODE.build(encode, "model.encode", role=PyramidEncoder, in_channels=info.channels)
        decoder = build_predict(
            predict,
            attend,
            SegmentationHead,
            encoder_channels=encoder.out_channels,
            encoder_strides=encoder.strides,
            num_classes=1 if info.binary else len(info.classes),
        )
        return cls(info, encoder, decoder, optim, dice_weight, ce_weight, aux_weight, plot_examples, channels_last)

    def example_inputs(self) -> dict[str, tuple[Tensor, dict[int, str]]]:
        """Images (batch, C, H, W) at the data's image size, batch dynamic."""
        return {"images": (torch.rand(2, self.info.channels, *self.info.image_size), {0: "batch"})}

    def exported_outputs(self) -> list[str]:
        return ["logits"]

    def forward(self, images: Tensor) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """Images (batch, C, H, W) -> logits (batch, outputs, H, W), gate maps [(batch, 1, h, w)], aux logits."""
        height, width = images.shape[-2:]
        stride = self.encoder.size_divisibility
        pad_h, pad_w = -height % stride, -width % stride
        if pad_h or pad_w:
            images = F.pad(images, (0, pad_w, 0, pad_h), mode="replicate")
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        logits, gates, aux = self.decoder(self.encoder(images), images.shape[-2:])
        if pad_h or pad_w:  # crop back to the input: (batch, outputs, H, W)
            logits = logits[..., :height, :width]
            gates = [crop_like(g, images, height, width) for g in gates]
            aux = [a[..., :height, :width] for a in aux]
        return logits, gates, aux

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
        """Dice (torchmetrics') and IoU over the foreground classes, each pooled over the whole split."""
        from torchmetrics.segmentation import DiceScore

        from eeap.model.metrics import ForegroundIoU

        classes = len(self.info.classes)
        return {
            "dice": DiceScore(
                classes, include_background=False, average="macro", aggregation_level="global", input_format="index"
            ),
            "iou": ForegroundIoU(classes),
        }

    def evaluate(self, batch: dict, split: str, metrics: dict[str, Any]) -> tuple[Tensor, dict]:
        logits, gates, _ = self(batch["images"])
        predicted = self.classes_of(logits)
        for metric in metrics.values():
            metric.update(predicted, batch["masks"])
        return self.loss(logits, batch["masks"]), {"predicted": predicted, "gates": gates}

    def validation_examples(self, batch: dict, outputs: dict) -> list[Example]:
        predicted, gates = outputs["predicted"], outputs["gates"]
        return [self.example(batch, i, predicted, gates) for i in range(min(self.plot_examples, len(predicted)))]

    def example(self, batch: dict, i: int, predicted: Tensor, gates: list[Tensor]) -> Example:
        """Validation example i as the loggers show it: image, predicted and true masks, the gates over the image."""
        figure = self.figure(batch["images"][i], predicted[i], [g[i] for g in gates], batch["masks"][i])
        return Example(
            display_image(batch["images"][i].float().cpu()),
            predicted[i].cpu().numpy(),
            batch["masks"][i].cpu().numpy(),
            figure,
            classes=len(self.info.classes),
        )

    def figure(self, image: Tensor, predicted: Tensor, gates: list[Tensor], mask: Optional[Tensor] = None) -> Any:
        """The image, each gate's coefficients laid over it (finest first), the prediction and the true mask."""
        masks = [("predicted", predicted)] + ([("true mask", mask)] if mask is not None else [])
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

    def read_input(self, text: str, number: int, problems: Problems) -> Optional[Any]:
        """The image at the line's path, of any size."""
        try:
            return torch.as_tensor(read_image(Path(text), self.info.channels, None, resize=False))
        except DataError as e:
            problems.skip(f"line {number}: {e}")
            return None

    def predict_batch(
        self, items: list, texts: list[str], options: DecodeOptions, figures: bool
    ) -> tuple[list[dict], list[Any]]:
        """Each image's mask (class indices, (H, W)) and, when asked for, the figure of its gate maps."""
        records, shown = [], []
        for image in items:
            logits, gates, _ = self(image[None].to(self.device))
            predicted = self.classes_of(logits)[0].cpu()  # (H, W)
            records.append({"mask": predicted})
            shown.append(self.figure(image, predicted, [g[0] for g in gates]) if figures else None)
        return records, shown

    def write_output(self, record: dict, out_dir: Path, number: int, text: str) -> dict:
        """The mask as a PNG (class indices; 0/255 for binary) named for the line and the image; its path reported."""
        from PIL import Image

        scale = 255 if self.info.binary else 1
        target = out_dir / f"{number:05d}_{Path(text).stem}.png"
        Image.fromarray((record["mask"].numpy() * scale).astype(np.uint8)).save(target)
        return {"output": str(target)}


def crop_like(gate: Tensor, padded: Tensor, height: int, width: int) -> Tensor:
    """The part of a gate map (batch, 1, h, w) over a padded image that covers the unpadded height × width."""
    rows = -(-height * gate.shape[-2] // padded.shape[-2])  # ceil(height / stride)
    cols = -(-width * gate.shape[-1] // padded.shape[-1])
    return gate[..., :rows, :cols]
