"""The classification task: Embed (tokens or image patches) → Encode → pool with attention → classify."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eeap.attend.base import head_mean
from eeap.config.registry import EMBED, ENCODE, TASK, NonNegativeInt, Probability
from eeap.data.images import read_image
from eeap.data.text import PAD
from eeap.embed.base import Embedding, ImageEmbedder, TokenEmbedder
from eeap.encode.base import SequenceEncoder
from eeap.errors import DataError
from eeap.model.plotting import attention_heatmap, attention_overlay, display_image
from eeap.model.prediction import DecodeOptions, Problems, rounded
from eeap.model.task import AttendSection, Example, Task, build_predict
from eeap.predict.base import ClassifierHead
from eeap.tasks.classification.info import ClassificationInfo, collate_text

DEFAULT_ATTEND = {"type": "additive"}


class ClsToken(nn.Module):
    """A learned token put before the embedded sequence, for heads that classify from position 0 (``pool: cls``).

    # Shapes
    x (batch, len, dim), mask (batch, len) -> (batch, 1 + len, dim), (batch, 1 + len).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        token = self.token.expand(x.shape[0], -1, -1)
        return torch.cat([token, x], 1), torch.cat([mask.new_ones(x.shape[0], 1), mask], 1)


@TASK.register("classification")
class ClassificationTask(Task):
    """Classify texts or images; the attention pooling's weights show which tokens or patches decided.

    # Parameters
    info: the data's classes and input form, supplied by the framework.
    embed: the embedding (of tokens for text data, of images for image data).
    encoder: the sequence encoder over the embedded inputs.
    head: the classifier head (with its pooling attention).
    cls_token: the learned token put first for a head that reads position 0, or None.
    optim: optimizer section (see ``eeap.model.task.OptimConfig``).
    label_smoothing: cross-entropy label smoothing.
    plot_examples: validation examples whose attention is plotted each validation.
    """

    info_class = ClassificationInfo
    monitor = ("val/accuracy", "max")
    scores = ("accuracy", "f1")

    def metric_names(self) -> list[str]:
        return ["loss", *self.scores]

    def __init__(
        self,
        info: ClassificationInfo,
        embed: Embedding,
        encoder: SequenceEncoder,
        head: ClassifierHead,
        cls_token: Optional[ClsToken] = None,
        optim: Optional[dict] = None,
        label_smoothing: float = 0.0,
        plot_examples: int = 4,
    ) -> None:
        super().__init__(optim)
        self.info, self.embed, self.encoder, self.head, self.cls_token = info, embed, encoder, head, cls_token
        self.label_smoothing, self.plot_examples = label_smoothing, plot_examples

    @classmethod
    def from_config(
        cls,
        info: ClassificationInfo,
        embed: dict,
        encode: dict,
        predict: dict,
        attend: AttendSection = DEFAULT_ATTEND,
        optim: Optional[dict] = None,
        label_smoothing: Probability = 0.0,
        plot_examples: NonNegativeInt = 4,
    ) -> ClassificationTask:
        """The builder: the ``model`` section's parts, built and wired.

        ::

            tokens or image ─ embed (token embedding: vocab_size; image embedding: in_channels, image_size)
                            ─ [a learned CLS token first, if the head reads position 0]
                            ─ encode (sequence encoder; input_dim = embed.output_dim)
                            ─ predict (classifier head; input_dim = encode.output_dim, num_classes) ─ class
                                 └ attend (attention; query and keys of encode.output_dim), with attention pooling

        # Parameters
        embed: ``{type: token}`` for text, ``{type: patch}``, ``{type: cnn}`` or ``{type: image_grid}`` for images.
        encode: encoder section (``rnn``, ``transformer``, ``identity``).
        predict: ``{type: classifier, pool: attention | mean | cls}``.
        attend: the pooling attention (default additive); ``none`` with mean or cls pooling.
        optim, label_smoothing, plot_examples: as for the task.
        """
        if info.is_text:
            embedding = EMBED.build(embed, "model.embed", role=TokenEmbedder, vocab_size=len(info.tokenizer))
        else:
            embedding = EMBED.build(
                embed, "model.embed", role=ImageEmbedder, in_channels=info.channels, image_size=list(info.image_size)
            )
        encoder = ENCODE.build(encode, "model.encode", role=SequenceEncoder, input_dim=embedding.output_dim)
        head = build_predict(
            predict, attend, ClassifierHead, input_dim=encoder.output_dim, num_classes=len(info.classes)
        )
        cls_token = ClsToken(embedding.output_dim) if head.prepends_token else None
        return cls(info, embedding, encoder, head, cls_token, optim, label_smoothing, plot_examples)

    def example_inputs(self) -> dict[str, tuple[Tensor, dict[int, str]]]:
        """Token ids (batch, len), batch and length dynamic; or images (batch, C, H, W), batch dynamic."""
        if self.info.is_text:
            return {"inputs": (torch.randint(PAD + 4, len(self.info.tokenizer), (3, 6)), {0: "batch", 1: "length"})}
        return {"inputs": (torch.rand(3, self.info.channels, *self.info.image_size), {0: "batch"})}

    def exported_outputs(self) -> list[str]:
        """The logits, and the pooling's weights where the head gives them (attention pooling)."""
        inputs, _ = self.example_inputs()["inputs"]
        with torch.no_grad():
            weights = self(inputs.to(self.device))[1]
        return ["logits", "weights"] if weights is not None else ["logits"]

    def forward(self, inputs: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        """Token ids (batch, len) or images (batch, C, H, W) -> logits (batch, classes), weights (batch, len), per
        head (batch, heads, len), or None.

        With ``cls`` pooling the weights are None; with attention pooling they cover the tokens or patches."""
        x = self.embed(inputs)  # (batch, len, dim)
        mask = inputs != PAD if self.info.is_text else x.new_ones(x.shape[:2], dtype=torch.bool)  # (batch, len)
        if self.cls_token is not None:
            x, mask = self.cls_token(x, mask)  # (batch, 1 + len, dim)
        return self.head(self.encoder(x, mask), mask)

    def training_loss(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        logits, _ = self(batch["inputs"])
        loss = F.cross_entropy(logits, batch["labels"], label_smoothing=self.label_smoothing)
        return loss, {"loss": loss}

    def new_metrics(self) -> dict[str, Any]:
        """Accuracy (micro) and F1 (macro over the classes), torchmetrics'."""
        from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

        classes = len(self.info.classes)
        return {
            "accuracy": MulticlassAccuracy(classes, average="micro"),
            "f1": MulticlassF1Score(classes, average="macro"),
        }

    def evaluate(self, batch: dict, split: str, metrics: dict[str, Any]) -> tuple[Tensor, dict]:
        logits, weights = self(batch["inputs"])
        for metric in metrics.values():
            metric.update(logits, batch["labels"])
        return F.cross_entropy(logits, batch["labels"]), {"logits": logits, "weights": weights}

    def validation_examples(self, batch: dict, outputs: dict) -> list[Example]:
        weights, predictions = outputs["weights"], outputs["logits"].argmax(-1)
        count = min(self.plot_examples, len(batch["labels"]))
        return [self.example(batch, i, weights, int(predictions[i])) for i in range(count)]

    def example(self, batch: dict, i: int, weights: Optional[Tensor], predicted: int) -> Example:
        """Validation example i as the loggers show it: text or image, predicted and true class, attention."""
        if self.info.is_text:
            shown: Any = (
                batch["texts"][i] if "texts" in batch else self.info.tokenizer.decode(batch["inputs"][i].tolist())
            )
        else:
            shown = display_image(batch["inputs"][i].float().cpu())
        figure = self.figure(batch, i, head_mean(weights, 2)[i], predicted) if weights is not None else None
        truth = self.info.classes[int(batch["labels"][i])]
        return Example(shown, self.info.classes[predicted], truth, figure)

    def figure(self, batch: dict, i: int, weights: Tensor, predicted: int) -> Any:
        """Attention of example i, weights (len,): a heatmap over its tokens, or an overlay on its image. Figures
        and tables show the mean over heads where the attention has several."""
        title = f"predicted {self.info.classes[predicted]}"
        if "labels" in batch:
            title += f", true {self.info.classes[int(batch['labels'][i])]}"
        weights = weights.float().cpu()
        if self.info.is_text:
            pieces = self.info.tokenizer.pieces(batch["inputs"][i].tolist())
            return attention_heatmap(weights[None, : len(pieces)], pieces, ["pool"], title)
        return attention_overlay(batch["inputs"][i].cpu(), weights, cast(ImageEmbedder, self.embed).grid, title)

    def read_input(self, text: str, number: int, problems: Problems) -> Optional[Any]:
        """A text (its token ids, cut to ``max_len``; unknown words warned of), or an image file's path."""
        if self.info.is_text:
            unknown = sorted(set(self.info.tokenizer.unknown(text)))
            if unknown:
                problems.warn(
                    f"line {number}: not in the vocabulary, read as <unk>: {', '.join(repr(u) for u in unknown)}"
                )
            ids = self.info.tokenizer.encode(text)
            if len(ids) > self.info.max_len:
                problems.warn(f"line {number}: {len(ids)} tokens, cut to max_len={self.info.max_len}")
            return {"ids": ids[: self.info.max_len], "text": text, "label": 0}
        try:
            return torch.as_tensor(read_image(Path(text), self.info.channels, self.info.image_size, resize=False))
        except DataError as e:
            problems.skip(f"line {number}: {e}")
            return None

    def predict_batch(
        self, items: list, texts: list[str], options: DecodeOptions, figures: bool
    ) -> tuple[list[dict], list[Any]]:
        """The class and its probability, the ``n_best`` classes with theirs, on request the pooling weights
        (``attention``: the mean over heads where there are several, and each head's as ``attention_heads``)."""
        batch = collate_text(items) if self.info.is_text else {"inputs": torch.stack(items)}
        logits, weights = self(batch["inputs"].to(self.device))
        n = min(options.n_best, len(self.info.classes))
        probabilities, ranked = torch.softmax(logits.float(), -1).topk(n, -1)  # (batch, n)
        records, shown = [], []
        for row in range(len(items)):
            record: dict[str, Any] = {
                "output": self.info.classes[int(ranked[row, 0])],
                "score": round(float(probabilities[row, 0]), 6),
            }
            if n > 1:
                record["n_best"] = [
                    {"output": self.info.classes[int(c)], "score": round(float(p), 6)}
                    for c, p in zip(ranked[row], probabilities[row])
                ]
            if options.attention and weights is not None:
                record["attention"] = rounded(head_mean(weights, 2)[row].float().cpu().tolist())
                if weights.dim() == 3:
                    record["attention_heads"] = rounded(weights[row].float().cpu().tolist())
                if self.info.is_text:  # what each weight is of (an image's are its grid's cells, row by row)
                    record["source_pieces"] = self.info.tokenizer.pieces(batch["inputs"][row].tolist())
            records.append(record)
            draw = figures and weights is not None
            shown.append(self.figure(batch, row, head_mean(weights, 2)[row], int(ranked[row, 0])) if draw else None)
        return records, shown
