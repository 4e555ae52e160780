"""What a segmentation model knows of its data: the classes and the image form (no data module, no Lightning)."""

from __future__ import annotations

from dataclasses import dataclass

from eeap.data.info import DataInfo


@dataclass
class SegmentationInfo(DataInfo):
    """What the model needs from the data: class names (background first) and the images' channels and size."""

    classes: list[str]
    channels: int = 3
    image_size: tuple[int, int] = (0, 0)

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    def state(self) -> dict:
        return {"classes": self.classes, "channels": self.channels, "image_size": list(self.image_size)}

    @classmethod
    def from_state(cls, state: dict) -> SegmentationInfo:
        return cls(state["classes"], state["channels"], tuple(state["image_size"]))
