"""What a captioning model knows of its data: the caption tokenizer and the image form (no data module, no Lightning)."""

from __future__ import annotations

from dataclasses import dataclass

from eeap.data.info import DataInfo
from eeap.data.text import Tokenizer


@dataclass
class CaptioningInfo(DataInfo):
    """What the model needs from the data: the caption tokenizer, the image form and the longest caption."""

    target: Tokenizer
    channels: int
    image_size: tuple[int, int]
    max_tgt_len: int

    def state(self) -> dict:
        return {
            "target": self.target.state(),
            "channels": self.channels,
            "image_size": list(self.image_size),
            "max_tgt_len": self.max_tgt_len,
        }

    @classmethod
    def from_state(cls, state: dict) -> CaptioningInfo:
        return cls(
            Tokenizer.from_state(state["target"]), state["channels"], tuple(state["image_size"]), state["max_tgt_len"]
        )
