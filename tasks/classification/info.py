"""What a classification model knows of its data (the classes, a tokenizer or an image form), and how a batch of texts
is collated, for training and for ``predict`` alike (no data module, no Lightning)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, cast

import torch

from eeap.data.info import DataInfo
from eeap.data.text import PAD, Tokenizer


@dataclass
class ClassificationInfo(DataInfo):
    """What the model needs from the data: the class names and the input's form (a tokenizer, or an image size)."""

    classes: list[str]
    tokenizer: Optional[Tokenizer] = None
    channels: int = 1
    image_size: tuple[int, int] = (0, 0)
    max_len: int = 0

    @property
    def is_text(self) -> bool:
        return self.tokenizer is not None

    def embed_inputs(self) -> dict:
        """What an embedding of these inputs is built with."""
        if self.is_text:
            return {"vocab_size": len(cast(Tokenizer, self.tokenizer))}
        return {"in_channels": self.channels, "image_size": list(self.image_size)}

    def state(self) -> dict:
        return {
            "classes": self.classes,
            "tokenizer": self.tokenizer.state() if self.tokenizer else None,
            "channels": self.channels,
            "image_size": list(self.image_size),
            "max_len": self.max_len,
        }

    @classmethod
    def from_state(cls, state: dict) -> ClassificationInfo:
        tokenizer = Tokenizer.from_state(state["tokenizer"]) if state["tokenizer"] else None
        return cls(state["classes"], tokenizer, state["channels"], tuple(state["image_size"]), state["max_len"])


def collate_text(examples: list) -> dict:
    """Text examples (``{"ids", "text", "label"}``) → inputs (batch, longest) padded with PAD, labels, texts."""
    longest = max(len(e["ids"]) for e in examples)
    inputs = torch.full((len(examples), longest), PAD, dtype=torch.long)
    for i, example in enumerate(examples):
        inputs[i, : len(example["ids"])] = torch.tensor(example["ids"])
    return {
        "inputs": inputs,
        "labels": torch.tensor([e["label"] for e in examples]),
        "texts": [e["text"] for e in examples],
    }
