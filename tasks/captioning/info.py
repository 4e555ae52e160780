"""What a captioning model knows of its data: the caption tokenizer and the image form (no data module, no Lightning)."""

from __future__ import annotations

from dataclasses import dataclass

from eeap.data.info import DataInfo
from eeap.data.text import Tokenizer


@dataclass
class CaptioningInfo(DataInfo):
    """What the model needs from the data: the caption tokenizer, the image form and the longest caption; ``fit``:
    how an image of another size is brought to ``image_size`` (``exact``: refused; ``resize``: stretched; ``crop``:
    scaled keeping its aspect ratio, then centre-cropped), so ``predict`` reads images as training did."""

    target: Tokenizer
    channels: int
    image_size: tuple[int, int]
    max_tgt_len: int
    fit: str = "exact"

    def state(self) -> dict:
        return {
            "target": self.target.state(),
            "channels": self.channels,
            "image_size": list(self.image_size),
            "max_tgt_len": self.max_tgt_len,
            "fit": self.fit,
        }

    @classmethod
    def from_state(cls, state: dict) -> CaptioningInfo:
        return cls(
            Tokenizer.from_state(state["target"]),
            state["channels"],
            tuple(state["image_size"]),
            state["max_tgt_len"],
            state.get("fit", "exact"),  # checkpoints from before ``fit``: images of the model's size only
        )
