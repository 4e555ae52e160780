"""Segmentation data: seeded synthetic shapes with per-pixel masks (scikit-image drawing), and the user's folder of
``images/`` and ``masks/``."""

from __future__ import annotations

import abc
import functools
import random
from pathlib import Path
from typing import Any, Literal, Optional, Sequence, cast

import numpy as np
import torch

from eeap.config.registry import DATA, Fraction, NonNegativeFloat, NonNegativeInt, PositiveInt
from eeap.data.base import CachedFiles, DataModule, DecodedOnRead, demo_import, folder_files
from eeap.data.images import check_image, image_file_size, read_image
from eeap.errors import DataError
from eeap.tasks.segmentation.info import SegmentationInfo

SHAPES = ("circle", "rectangle", "triangle", "ellipse")


def collate(examples: list) -> dict:
    """Images (batch, C, H, W) floats and masks (batch, H, W) class indices."""
    images = torch.stack([torch.as_tensor(image) for image, _ in examples])  # (batch, C, H, W)
    masks = torch.stack([torch.as_tensor(mask) for _, mask in examples])  # (batch, H, W)
    return {"images": images, "masks": masks}


def flip(example: tuple, generator: torch.Generator) -> tuple:
    """An (image (C, H, W), mask (H, W)) pair flipped horizontally and vertically with probability 1/2 each, image
    and mask alike."""
    image, mask = torch.as_tensor(example[0]), torch.as_tensor(example[1])
    horizontal, vertical = (torch.rand(2, generator=generator) < 0.5).tolist()
    dims = [d for d, on in ((-1, horizontal), (-2, vertical)) if on]
    return (image.flip(dims), mask.flip(dims)) if dims else (image, mask)


class SegmentationData(DataModule):
    """Base of segmentation data: a source's ``make_splits`` gives (image, mask) examples; this batches them.

    # Parameters
    seed: supplied from the run's seed.
    batch_size, eval_batch_size: images per training / evaluation batch.
    flip: random horizontal and vertical flips of training images (and their masks).
    num_workers: DataLoader worker processes.
    """

    info_class = SegmentationInfo

    def __init__(
        self,
        seed: int,
        batch_size: PositiveInt = 16,
        eval_batch_size: PositiveInt = 64,
        flip: bool = True,
        num_workers: NonNegativeInt = 0,
    ) -> None:
        super().__init__(seed, batch_size, eval_batch_size, num_workers)
        self.flip = flip

    def collate(self, examples: list) -> dict:
        return collate(examples)

    def augment(self, example: Any, generator: torch.Generator) -> Any:
        return flip(example, generator) if self.flip else example


def draw_shape(
    kind: str, size: int, rng: np.random.Generator, scale: tuple[float, float] = (1 / 8, 1 / 3)
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel rows and columns of one random shape of ``kind`` inside a size × size image; its radius (or half-side)
    is drawn between ``scale`` × size."""
    draw = demo_import("skimage.draw", "data 'shapes'")

    low, high = (max(int(size * f + 1e-9), least) for f, least in zip(scale, (2, 3)))  # radius / half-side range
    r, c = rng.integers(high // 2, size - high // 2, size=2)
    if kind == "circle":
        return draw.disk((r, c), rng.integers(low, high), shape=(size, size))
    if kind == "rectangle":
        h, w = rng.integers(low, high, size=2)
        rows, cols = draw.rectangle((r - h, c - w), (r + h, c + w), shape=(size, size))  # (2h+1, 2w+1) grids
        return rows.ravel(), cols.ravel()
    if kind == "ellipse":
        a, b = rng.integers(low, high, size=2)
        return draw.ellipse(r, c, a, max(b // 2, 2), shape=(size, size), rotation=rng.uniform(0, np.pi))
    radius, turn = rng.integers(low + 2, high + 2), rng.uniform(0, 2 * np.pi)
    angles = turn + np.array([0.0, 2.0, 4.0]) * np.pi / 3  # an equilateral triangle, rotated
    return draw.polygon(r + radius * np.sin(angles), c + radius * np.cos(angles), shape=(size, size))


def make_shapes(
    count: int, size: int, shapes: list[str], binary: bool, max_shapes: int, noise: float, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` RGB images (3, size, size) in [0, 1] with 1 to ``max_shapes`` shapes each on a shaded background,
    and their masks (size, size): 0 background, else 1 + the shape's index in ``shapes`` (1 for every shape if
    ``binary``). A later shape covers an earlier one, in the mask too."""
    rng = np.random.default_rng(seed)
    examples = []
    for _ in range(count):
        ramp = np.linspace(0, 1, size, dtype=np.float32)
        start, slope = rng.uniform(0.0, 0.6, 3), rng.uniform(-0.2, 0.2, 3)
        image = (start[:, None, None] + slope[:, None, None] * ramp[None, :, None]).repeat(size, 2)  # (3, size, size)
        mask = np.zeros((size, size), dtype=np.int64)
        for _ in range(rng.integers(1, max_shapes + 1)):
            label = int(rng.integers(len(shapes)))
            rows, cols = draw_shape(shapes[label], size, rng)
            background = image[:, rows, cols].mean(axis=1)
            colour = rng.uniform(0, 1, 3)
            while np.abs(colour - background).max() < 0.3:  # keep every shape visible against what it covers
                colour = rng.uniform(0, 1, 3)
            image[:, rows, cols] = colour[:, None]
            mask[rows, cols] = 1 if binary else label + 1
        image = np.clip(image + rng.normal(0, noise, image.shape), 0, 1).astype(np.float32)
        examples.append((image, mask))
    return examples


def textured_background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A cluttered RGB background (3, size, size) in [0, 1]: smooth random blobs (Gaussian-filtered noise) over a
    base colour, crossed by stripes of random direction, frequency and phase."""
    filters = demo_import("skimage.filters", "data 'cluttered_shapes'")

    blobs = filters.gaussian(rng.normal(size=(size, size, 3)), sigma=size / 16, channel_axis=-1)  # (size, size, 3)
    blobs = (blobs - blobs.mean()) / (blobs.std() + 1e-8)
    rows, cols = np.mgrid[:size, :size] / size
    angle, frequency, phase = rng.uniform(0, np.pi), rng.uniform(3, 8), rng.uniform(0, 2 * np.pi)
    stripes = np.sin(2 * np.pi * frequency * (rows * np.sin(angle) + cols * np.cos(angle)) + phase)  # (size, size)
    base, blob_amount, stripe_amount = rng.uniform(0.3, 0.7, 3), rng.uniform(0.05, 0.15), rng.uniform(0.05, 0.15, 3)
    image = base[:, None, None] + blob_amount * blobs.transpose(2, 0, 1) + stripe_amount[:, None, None] * stripes
    return np.clip(image, 0, 1).astype(np.float32)


def make_cluttered(
    count: int,
    size: int,
    targets: list[str],
    distractors: list[str],
    max_targets: int,
    max_distractors: int,
    scale: tuple[float, float],
    noise: float,
    seed: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` images (3, size, size) of 1 to ``max_targets`` small target shapes among 0 to ``max_distractors``
    distractor shapes of other kinds, on textured backgrounds, and their masks (size, size): 0 background (and
    distractors), else 1 + the target's index in ``targets``. Shapes are drawn in random order and may overlap;
    a later shape covers an earlier one, in the mask too. Colours come from one distribution for both, so only a
    shape's form tells a target from a distractor."""
    rng = np.random.default_rng(seed)
    examples = []
    for _ in range(count):
        image = textured_background(size, rng)
        mask = np.zeros((size, size), dtype=np.int64)
        kinds = [(t, 1 + targets.index(t)) for t in rng.choice(targets, rng.integers(1, max_targets + 1))]
        kinds += [(d, 0) for d in rng.choice(distractors, rng.integers(0, max_distractors + 1))] if distractors else []
        for i in rng.permutation(len(kinds)):
            kind, label = kinds[i]
            rows, cols = draw_shape(str(kind), size, rng, scale)
            covered = image[:, rows, cols].mean(axis=1)
            colour = rng.uniform(0, 1, 3)
            while np.abs(colour - covered).max() < 0.3:  # visible against what it covers
                colour = rng.uniform(0, 1, 3)
            image[:, rows, cols] = colour[:, None]
            mask[rows, cols] = label
        image = np.clip(image + rng.normal(0, noise, image.shape), 0, 1).astype(np.float32)
        examples.append((image, mask))
    return examples


class GeneratedData(SegmentationData):
    """Base of the generated sets: each split drawn by ``draw(count, seed)`` with its own seed (the run's seed × 1000
    + the split's index), square RGB images of ``image_size``; subclasses name their ``classes()``."""

    def __init__(
        self, seed: int, train_size: int, val_size: int, test_size: int, image_size: int, **kwargs: Any
    ) -> None:
        super().__init__(seed, **kwargs)
        if image_size < 16:
            raise DataError(f"data.image_size: at least 16 pixels, got {image_size}")
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.image_size = image_size

    @abc.abstractmethod
    def draw(self, count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """``count`` (image (3, size, size), mask (size, size)) examples drawn from ``seed``."""

    @abc.abstractmethod
    def classes(self) -> list[str]:
        """Class names, background first."""

    def make_splits(self) -> tuple[dict[str, list], SegmentationInfo]:
        splits = {
            split: self.draw(count, seed=self.seed * 1000 + offset)
            for offset, (split, count) in enumerate(self.sizes.items())
        }
        return splits, SegmentationInfo(self.classes(), 3, (self.image_size, self.image_size))


@DATA.register("shapes")
class ShapesData(GeneratedData):
    """Seeded synthetic shapes with exact per-pixel masks, drawn with scikit-image.

    # Parameters
    train_size, val_size, test_size: images per split (each split drawn with its own seed).
    image_size: side of the square images.
    shapes: which shapes to draw (circle, rectangle, triangle, ellipse); each is a class.
    binary: one foreground class for every shape.
    max_shapes: at most this many shapes per image (at least one).
    noise: standard deviation of the Gaussian pixel noise.
    """

    def __init__(
        self,
        seed: int,
        train_size: PositiveInt = 800,
        val_size: PositiveInt = 100,
        test_size: PositiveInt = 200,
        image_size: PositiveInt = 64,
        shapes: Sequence[str] = ("circle", "rectangle", "triangle"),
        binary: bool = False,
        max_shapes: PositiveInt = 3,
        noise: NonNegativeFloat = 0.05,
        **kwargs,
    ) -> None:
        super().__init__(seed, train_size, val_size, test_size, image_size, **kwargs)
        unknown = [s for s in shapes if s not in SHAPES]
        if unknown or not shapes:
            raise DataError(f"data.shapes: unknown shape {unknown or '(none given)'}; allowed: {', '.join(SHAPES)}")
        self.shapes, self.binary, self.max_shapes, self.noise = list(shapes), binary, max_shapes, noise

    def draw(self, count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        return make_shapes(count, self.image_size, self.shapes, self.binary, self.max_shapes, self.noise, seed)

    def classes(self) -> list[str]:
        return ["background"] + (["shape"] if self.binary else self.shapes)


@DATA.register("cluttered_shapes")
class ClutteredShapesData(GeneratedData):
    """A harder synthetic set, where a model must look at a shape's form in context: small target shapes among
    distractor shapes of other kinds, overlapping, in the same colours, on textured and striped backgrounds.

    # Parameters
    train_size, val_size, test_size: images per split (each split drawn with its own seed).
    image_size: side of the square images.
    targets: the shapes to segment, each a class (one target kind: binary masks).
    distractors: shapes drawn but not segmented (must differ from the targets).
    max_targets: 1 to this many targets per image.
    max_distractors: 0 to this many distractors per image.
    scale: [smallest, largest] radius or half-side of a shape, as a fraction of the image side.
    noise: standard deviation of the Gaussian pixel noise.
    """

    def __init__(
        self,
        seed: int,
        train_size: PositiveInt = 800,
        val_size: PositiveInt = 100,
        test_size: PositiveInt = 200,
        image_size: PositiveInt = 64,
        targets: Sequence[str] = ("circle",),
        distractors: Sequence[str] = ("rectangle", "triangle", "ellipse"),
        max_targets: PositiveInt = 3,
        max_distractors: NonNegativeInt = 6,
        scale: tuple[Fraction, Fraction] = (0.06, 0.14),
        noise: NonNegativeFloat = 0.08,
        **kwargs,
    ) -> None:
        super().__init__(seed, train_size, val_size, test_size, image_size, **kwargs)
        for key, kinds in (("targets", targets), ("distractors", distractors)):
            unknown = [s for s in kinds if s not in SHAPES]
            if unknown:
                raise DataError(f"data.{key}: unknown shape {unknown}; allowed: {', '.join(SHAPES)}")
        if not targets:
            raise DataError(f"data.targets: at least one shape to segment; allowed: {', '.join(SHAPES)}")
        both = sorted(set(targets) & set(distractors))
        if both:
            raise DataError(f"data.distractors: {both} also in data.targets; a shape kind is one or the other")
        if not 0 < scale[0] <= scale[1]:
            raise DataError(f"data.scale: [smallest, largest] with 0 < smallest ≤ largest, got {list(scale)}")
        self.targets, self.distractors = list(targets), list(distractors)
        self.max_targets, self.max_distractors = max_targets, max_distractors
        self.scale, self.noise = (float(scale[0]), float(scale[1])), noise

    def draw(self, count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        counts = (self.max_targets, self.max_distractors)
        return make_cluttered(
            count, self.image_size, self.targets, self.distractors, *counts, self.scale, self.noise, seed
        )

    def classes(self) -> list[str]:
        return ["background", *self.targets]


def read_mask(path: Path, size: tuple[int, int], resize: bool) -> np.ndarray:
    """A mask image as (H, W) integers: class indices, or 0/255 for binary masks (read as 0/1)."""
    from PIL import Image, UnidentifiedImageError

    try:
        mask: Image.Image = Image.open(path)
        mask = mask.convert("L") if mask.mode not in ("L", "P", "I", "I;16") else mask
    except (OSError, UnidentifiedImageError):
        raise DataError(f"{path}: not a readable mask image") from None
    if mask.size != (size[1], size[0]):
        if not resize:
            raise DataError(
                f"{path}: mask is {mask.size[1]}×{mask.size[0]} (H×W), its image {size[0]}×{size[1]}; "
                "a mask must match its image"
            )
        mask = mask.resize((size[1], size[0]), Image.Resampling.NEAREST)
    values = np.asarray(mask, dtype=np.int64)
    return np.where(values == 255, 1, values) if set(np.unique(values)) <= {0, 255} else values


@DATA.register("segmentation_folder")
class SegmentationFolderData(CachedFiles, SegmentationData):
    """The user's images and masks: ``root/images/NAME.png`` and ``root/masks/NAME.png`` (any image suffix).

    A mask holds a class index per pixel (0 = background); a mask of only 0 and 255 is binary (255 = foreground).

    # Parameters
    root: the folder holding ``images/`` and ``masks/``.
    classes: class names, background first (default: ``class_0`` … up to the largest index in the masks,
        or background / foreground for binary masks).
    channels: 1 (grayscale) or 3 (RGB).
    image_size: [H, W] every image must have (default: the first image's).
    resize: resize images (and masks) of another size instead of refusing them.
    val_fraction, test_fraction: held-out shares of the images.
    split_seed: the seed that draws the held-out images; unset, the run's seed. Set it to compare seeds on one test
        split.
    cache, cache_dir: see ``CachedFiles``: images and masks decoded (and resized) once, kept for the next run (the
        first run also skips reading every header and scanning every mask again); without it each image and mask is
        decoded when the loader reads it.
    """

    def __init__(
        self,
        seed: int,
        root: str,
        classes: Optional[list[str]] = None,
        channels: Literal[1, 3] = 3,
        image_size: Optional[list[PositiveInt]] = None,
        resize: bool = False,
        val_fraction: Fraction = 0.1,
        test_fraction: Fraction = 0.2,
        split_seed: Optional[NonNegativeInt] = None,
        **kwargs,
    ) -> None:
        super().__init__(seed, **kwargs)
        self.root, self.classes, self.channels = Path(root), classes, channels
        self.split_seed = seed if split_seed is None else split_seed
        self.size, self.resize, self.fractions = image_size, resize, (val_fraction, test_fraction)

    def data_files(self) -> list[Path]:
        return folder_files(self.root / "images") + folder_files(self.root / "masks")

    def make_splits(self) -> tuple[dict[str, Sequence], SegmentationInfo]:
        images_dir, masks_dir = self.root / "images", self.root / "masks"
        for folder in (images_dir, masks_dir):
            if not folder.is_dir():
                raise DataError(
                    f"data.root: folder not found: {folder} (expected {self.root}/images and "
                    f"{self.root}/masks with matching file names)"
                )
        images = folder_files(images_dir)
        masks = {f.stem: f for f in folder_files(masks_dir)}
        if len(images) < 3:
            raise DataError(
                f"data.root: {images_dir} holds {len(images)} images; at least 3 are needed "
                "(train, validation and test)"
            )
        missing = [f.name for f in images if f.stem not in masks]
        if missing:
            raise DataError(f"data.root: no mask in {masks_dir} for {len(missing)} images, e.g. {missing[0]}")
        size = cast(tuple[int, int], tuple(self.size) if self.size else image_file_size(images[0]))
        pairs = [(f, masks[f.stem]) for f in images]
        largest = 0
        for image, mask in pairs:  # every file checked before training; only the masks' largest class is kept
            check_image(image, size, self.resize)
            largest = max(largest, int(read_mask(mask, size, self.resize).max()))
        classes = (
            list(self.classes)
            if self.classes
            else (["background", "foreground"] if largest <= 1 else [f"class_{i}" for i in range(largest + 1)])
        )
        if len(classes) < 2:
            raise DataError(f"data.classes: at least 2 classes (background first), got {classes}")
        if largest >= len(classes):
            raise DataError(
                f"data.classes: a mask holds class index {largest}, but only {len(classes)} classes "
                f"are named: {classes}"
            )
        random.Random(self.split_seed).shuffle(pairs)
        n_val = max(1, round(len(pairs) * self.fractions[0]))
        n_test = max(1, round(len(pairs) * self.fractions[1]))
        examples = DecodedOnRead(
            pairs, functools.partial(read_pair, channels=self.channels, size=size, resize=self.resize)
        )
        splits: dict[str, Sequence] = {
            "val": examples[:n_val],
            "test": examples[n_val : n_val + n_test],
            "train": examples[n_val + n_test :],
        }
        return splits, SegmentationInfo(classes, self.channels, size)


def read_pair(
    files: tuple[Path, Path], channels: int, size: tuple[int, int], resize: bool
) -> tuple[np.ndarray, np.ndarray]:
    """An (image (C, H, W), mask (H, W)) example from its two files, decoded (and resized) as it is read."""
    image, mask = files
    return read_image(image, channels, size, resize), read_mask(mask, size, resize)
