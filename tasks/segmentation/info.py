"""What a segmentation model knows of its data: the classes and the image form (no data module, no Lightning)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from eeap.data.info import DataInfo


@dataclass
class SegmentationInfo(DataInfo):
    """What the model needs from the data: class names (background first), the images' channels and size, and for
    volumes how they are read (``eeap.data.volumes.VolumeReading.state()``), so predict reads scans alike.

    ``image_size``: (H, W) of 2D images; for volumes the training patch (X, Y, Z), which is also the sliding window
    the model covers whole volumes with."""

    classes: list[str]
    channels: int = 3
    image_size: tuple[int, ...] = (0, 0)
    volume: Optional[dict] = None

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    @property
    def spatial_dims(self) -> int:
        """2 for images, 3 for volumes."""
        return 3 if self.volume is not None else 2

    def state(self) -> dict:
        return {
            "classes": self.classes,
            "channels": self.channels,
            "image_size": list(self.image_size),
            "volume": self.volume,
        }

    @classmethod
    def from_state(cls, state: dict) -> SegmentationInfo:
        return cls(state["classes"], state["channels"], tuple(state["image_size"]), state.get("volume"))
