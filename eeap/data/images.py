"""Image files as a model reads them: opened lazily, checked for size from the header, decoded to (C, H, W) floats;
every problem is one ``DataError`` line. Used by the data modules and by ``predict`` alike (no Lightning here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from eeap.errors import DataError


def open_image(path: Path) -> Any:
    """A PIL image opened lazily (its header read, its pixels not yet decoded); one line if it cannot be."""
    from PIL import Image, UnidentifiedImageError

    if "\x00" in str(path):
        raise DataError(f"{str(path)!r}: not a file path (it holds a NUL byte)")
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except (OSError, UnidentifiedImageError, ValueError):
        raise DataError(f"{path}: not a readable image") from None


def image_file_size(path: Path) -> tuple[int, int]:
    """An image file's (H, W), read from its header without decoding the pixels."""
    with open_image(path) as image:
        return image.size[1], image.size[0]


def check_image(path: Path, size: tuple[int, int], resize: bool) -> None:
    """Refuse, in one line, an image file that is missing, unreadable, or of another size than ``size`` when it may
    not be resized; reads the header only, so a folder of any size is checked before training without decoding it."""
    height, width = image_file_size(path)
    if (height, width) != tuple(size) and not resize:
        raise DataError(
            f"{path}: image is {height}×{width} (H×W), expected {size[0]}×{size[1]}; "
            f"resize the images or set data.resize=true"
        )


def read_image(
    path: Path, channels: int, size: Optional[tuple[int, int]], resize: bool, crop: bool = False
) -> np.ndarray:
    """An image file as (channels, H, W) floats in [0, 1]; a size other than ``size`` is an error unless ``resize``
    (stretched to it) or ``crop`` (scaled, keeping its aspect ratio, to cover it, then its centre cut out)."""
    if size:
        check_image(path, size, resize or crop)
    try:
        with open_image(path) as opened:
            image = opened.convert("L" if channels == 1 else "RGB")
    except OSError:  # the header was fine, the pixels are not (a truncated or damaged file)
        raise DataError(f"{path}: not a readable image (its pixel data is damaged)") from None
    if size and crop and image.size != (size[1], size[0]):
        image = centre_crop(image, size)
    if size and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]))
    array = np.asarray(image, dtype=np.float32) / 255.0
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def centre_crop(image: Any, size: tuple[int, int]) -> Any:
    """A PIL image scaled (bicubic), keeping its aspect ratio, so that it covers ``size`` (H, W), then cut to its
    centre: the photos' preprocessing of captioning and classification models."""
    from PIL import Image

    height, width = size
    scale = max(height / image.size[1], width / image.size[0])
    scaled = (max(width, round(image.size[0] * scale)), max(height, round(image.size[1] * scale)))
    image = image.resize(scaled, Image.Resampling.BICUBIC)
    left, top = (scaled[0] - width) // 2, (scaled[1] - height) // 2
    return image.crop((left, top, left + width, top + height))


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
