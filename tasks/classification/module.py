"""The classification task: Embed (tokens or image patches) → Encode → pool with attention → classify."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
import torchmetrics
from torch import Tensor

from eeap.errors import DataError
from eeap.inference import Problems
from eeap.loggers import log_figure
from eeap.plotting import attention_heatmap, save_figure, attention_overlay
from eeap.registry import EMBED, ENCODE, PREDICT, TASK, NonNegativeInt, Probability
from eeap.task import Task, attend_section
from eeap.text import PAD
from tasks.classification.data import ClassificationInfo, collate_text, read_image


@TASK.register("classification")
class ClassificationTask(Task):
    """Classify texts or images; the attention pooling's weights show which tokens or patches decided.

    # Parameters
    info: the data's classes and input form, supplied by the framework.
    embed: ``{type: token}`` for text, ``{type: patch}`` or ``{type: cnn}`` for images.
    encode: encoder section (``rnn``, ``transformer``).
    predict: ``{type: classifier, pool: attention | mean | cls}``.
    attend: the pooling attention (default additive); ``none`` or null with mean / cls pooling.
    optim: optimizer section (see ``eeap.task.OptimConfig``).
    label_smoothing: cross-entropy label smoothing.
    plot_examples: validation examples whose attention is plotted each validation.
    """

    monitor = ("val/accuracy", "max")

    def __init__(
        self,
        info: ClassificationInfo,
        embed: dict,
        encode: dict,
        predict: dict,
        attend: Union[dict, str, None] = None,
        optim: Optional[dict] = None,
        label_smoothing: Probability = 0.0,
        plot_examples: NonNegativeInt = 4,
    ) -> None:
        super().__init__(optim)
        attend = attend_section(attend)
        self.info = info
        self.embed = EMBED.build(embed, "model.embed", **info.embed_inputs())
        self.encoder = ENCODE.build(encode, "model.encode", input_dim=self.embed.output_dim)
        self.head = PREDICT.build(predict, "model.predict", input_dim=self.encoder.output_dim,
                                  embed_dim=self.embed.output_dim,
                                  num_classes=len(info.classes), attend=attend)
        self.label_smoothing, self.plot_examples = label_smoothing, plot_examples
        classes = len(info.classes)
        for split in ("val", "test"):
            setattr(self, f"{split}_accuracy", torchmetrics.classification.MulticlassAccuracy(classes, average="micro"))
            setattr(self, f"{split}_f1", torchmetrics.classification.MulticlassF1Score(classes, average="macro"))

    def forward(self, inputs: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        """Token ids (batch, len) or images (batch, C, H, W) -> logits (batch, classes), weights (batch, len) or None.

        With ``cls`` pooling the weights are None; with attention pooling they cover the tokens or patches."""
        x = self.embed(inputs)  # (batch, len, dim)
        mask = inputs != PAD if self.info.is_text else x.new_ones(x.shape[:2], dtype=torch.bool)  # (batch, len)
        x, mask = self.head.prepare(x, mask)
        return self.head(self.encoder(x, mask), mask)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        logits, _ = self(batch["inputs"])
        loss = F.cross_entropy(logits, batch["labels"], label_smoothing=self.label_smoothing)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["labels"]))
        return loss

    def evaluate(self, batch: dict, split: str) -> Optional[Tensor]:
        logits, weights = self(batch["inputs"])
        size = len(batch["labels"])
        self.log(f"{split}/loss", F.cross_entropy(logits, batch["labels"]), batch_size=size, sync_dist=True)
        for name in ("accuracy", "f1"):
            metric = getattr(self, f"{split}_{name}")
            metric.update(logits, batch["labels"])
            self.log(f"{split}/{name}", metric, batch_size=size, prog_bar=name == "accuracy")
        return weights

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        weights = self.evaluate(batch, "val")
        if batch_idx == 0 and weights is not None and self.plot_examples and not self.trainer.sanity_checking:
            predictions = self(batch["inputs"])[0].argmax(-1)
            for i in range(min(self.plot_examples, len(batch["labels"]))):
                log_figure(self, f"val/attention_{i}", self.figure(batch, i, weights[i], int(predictions[i])))

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self.evaluate(batch, "test")

    def figure(self, batch: dict, i: int, weights: Tensor, predicted: int) -> plt.Figure:
        """Attention of example i: a heatmap over its tokens, or an overlay on its image."""
        title = f"predicted {self.info.classes[predicted]}"
        if "labels" in batch:
            title += f", true {self.info.classes[int(batch['labels'][i])]}"
        weights = weights.float().cpu()
        if self.info.is_text:
            pieces = self.info.tokenizer.pieces(batch["inputs"][i].tolist())
            return attention_heatmap(weights[None, : len(pieces)], pieces, ["pool"], title)
        return attention_overlay(batch["inputs"][i].cpu(), weights, self.embed.grid, title)

    @torch.no_grad()
    def predict_lines(self, lines: list[str], beam_size: Optional[int] = None, batch_size: int = 64,
                      plot_dir: Optional[str] = None) -> tuple[list[str], Problems]:
        """Classify each line: a text, or the path of an image file. Bad lines give an empty output and a message."""
        problems = Problems()
        outputs = [""] * len(lines)
        todo = []
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if not text:
                problems.skip(f"line {number}: empty input")
                continue
            if self.info.is_text:
                unknown = sorted(set(self.info.tokenizer.unknown(text)))
                if unknown:
                    problems.warn(f"line {number}: not in the vocabulary, read as <unk>: "
                                  f"{', '.join(repr(u) for u in unknown)}")
                ids = self.info.tokenizer.encode(text)
                if len(ids) > self.info.max_len:
                    problems.warn(f"line {number}: {len(ids)} tokens, cut to max_len={self.info.max_len}")
                todo.append((number - 1, ((ids[: self.info.max_len], text), 0)))
                continue
            try:
                image = read_image(Path(text), self.info.channels, self.info.image_size, resize=False)
            except DataError as e:
                problems.skip(f"line {number}: {e}")
                continue
            todo.append((number - 1, (torch.as_tensor(image), 0)))
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            if self.info.is_text:
                batch = collate_text([example for _, example in chunk])
            else:
                batch = {"inputs": torch.stack([image for _, (image, _) in chunk])}
            logits, weights = self(batch["inputs"].to(self.device))
            predictions = logits.argmax(-1).tolist()
            for row, (index, _) in enumerate(chunk):
                outputs[index] = self.info.classes[predictions[row]]
                if plot_dir and weights is not None:
                    figure = self.figure(batch, row, weights[row], predictions[row])
                    save_figure(figure, Path(plot_dir) / f"line{index + 1:05d}.png")
        return outputs, problems
