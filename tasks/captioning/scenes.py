"""A generated photo-like captioning set that installs offline: scenes of two shapes with a colour and a size each,
placed left of, right of, above or below one another on a textured background, every image with five differently
worded captions, written as a Karpathy split file (``dataset_scenes.json``) and PNG images, so the shipped config
reads it through the ``karpathy`` source a user's Flickr8k or COCO goes through.

What to say about each shape needs looking at that shape (its colour and size), and the relation needs both
positions: a captioner that attends can read them one at a time; one that sees only the mean feature has to hold
both objects' attributes in one vector (the with/without-attention gap the README reports)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from eeap.config.registry import DATA, NonNegativeInt, PositiveInt
from eeap.data.base import write_generated
from eeap.tasks.captioning.data import PhotoCollection, karpathy_records

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 210, 40),
    "purple": (150, 60, 190),
    "white": (245, 245, 245),
}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": 0.11, "large": 0.2}  # radius as a share of the image side
OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
VERSION = 1  # bump when what the generator draws changes: a folder of another version is made again


def describe(shape: dict, article: str = "a") -> str:
    return f"{article} {shape['size']} {shape['colour']} {shape['shape']}"


def captions(first: dict, second: dict, relation: str) -> list[str]:
    """Five differently worded captions of ``first`` being ``relation`` ``second``."""
    other = OPPOSITE[relation]
    beside = {"left of": "to the left of", "right of": "to the right of", "above": "above", "below": "below"}
    return [
        f"{describe(first)} {relation} {describe(second)}",
        f"there is {describe(first)} {beside[relation]} {describe(second)}",
        f"{describe(second)} {other} {describe(first)}",
        f"{describe(first, 'the')} is {relation} {describe(second, 'the')}",
        f"{describe(second)} with {describe(first)} {beside[relation]} it",
    ]


def draw_scene(rng: random.Random, size: int) -> tuple[np.ndarray, list[str]]:
    """One scene (size × size × 3 uint8) and its five captions."""
    from PIL import Image, ImageDraw, ImageFilter

    noise = np.random.default_rng(rng.randrange(2**32))
    tint = np.array([rng.randint(90, 160) for _ in range(3)], dtype=np.float32)
    background = tint + noise.normal(0, 18, (size, size, 3))  # a textured backdrop, not a flat one
    image = Image.fromarray(background.clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1))
    draw = ImageDraw.Draw(image)
    relation = rng.choice(list(OPPOSITE))
    shapes: list[dict[str, str]] = []
    for _ in range(2):
        colour = rng.choice([c for c in COLOURS if all(s["colour"] != c for s in shapes)])
        shapes.append({"shape": rng.choice(SHAPES), "colour": colour, "size": rng.choice(list(SIZES))})
    radius = [SIZES[s["size"]] * size for s in shapes]
    margin = [r + 1 for r in radius]
    horizontal = relation in ("left of", "right of")
    for _ in range(100):  # two places that show the relation plainly
        centres = [(rng.uniform(m, size - m), rng.uniform(m, size - m)) for m in margin]
        dx, dy = centres[1][0] - centres[0][0], centres[1][1] - centres[0][1]
        along, across = (dx, dy) if horizontal else (dy, dx)
        wanted = 1 if relation in ("left of", "above") else -1  # the second lies this way along the axis
        if along * wanted > radius[0] + radius[1] + 2 and abs(across) < 0.6 * abs(along):
            break
    for shape, (x, y), r in zip(shapes, centres, radius):
        fill = tuple(int(np.clip(c + rng.randint(-20, 20), 0, 255)) for c in COLOURS[shape["colour"]])
        if shape["shape"] == "circle":
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        elif shape["shape"] == "square":
            s = r * 0.85
            draw.rectangle((x - s, y - s, x + s, y + s), fill=fill)
        else:
            draw.polygon([(x, y - r), (x - r, y + r * 0.8), (x + r, y + r * 0.8)], fill=fill)
    return np.asarray(image), captions(shapes[0], shapes[1], relation)


def write_scenes(root: Path, sizes: dict[str, int], image_size: int, seed: int) -> None:
    """The set as a Karpathy split file and ``images/*.png`` in ``root``, written once (``write_generated``: under a
    temporary name, renamed into place; a folder already made with the same settings is kept)."""
    from PIL import Image

    def write(folder: Path) -> None:
        (folder / "images").mkdir()
        rng = random.Random(seed)
        entries: list[dict[str, Any]] = []
        seen: set[str] = set()
        for split in ("test", "val", "train"):
            made = 0
            while made < sizes[split]:
                pixels, texts = draw_scene(rng, image_size)
                if split != "train" and texts[0] in seen:  # held-out scenes are described unlike any other
                    continue
                if split == "train" and texts[0] in seen and rng.random() < 0.5:
                    continue
                seen.add(texts[0])
                name = f"{len(entries):06d}.png"
                Image.fromarray(pixels).save(folder / "images" / name)
                sentences = [
                    {"tokens": t.split(), "raw": t[0].upper() + t[1:] + ".", "sentid": 5 * len(entries) + i}
                    for i, t in enumerate(texts)
                ]
                entries.append({"filename": name, "imgid": len(entries), "split": split, "sentences": sentences})
                made += 1
        (folder / "dataset_scenes.json").write_text(json.dumps({"dataset": "scenes", "images": entries}))

    settings = {"version": VERSION, "sizes": sizes, "image_size": image_size, "seed": seed}
    write_generated(root, "scenes.json", settings, "scenes", write)


@DATA.register("scenes")
class ScenesData(PhotoCollection):
    """The generated scenes (``write_scenes``), made in ``root`` on first use and read back through the ``karpathy``
    source; swap this section for ``{type: karpathy, file: ..., images: ...}`` to train on your own photos.

    # Parameters
    root: where the set is written (``root/dataset_scenes.json``, ``root/images/``).
    train_size, val_size, test_size: images per split (five captions each).
    side: the generated images' side in pixels (``image_size`` is what the model reads them at).
    scene_seed: the generator's seed (the set stays the same when the run's seed changes).
    """

    def __init__(
        self,
        seed: int,
        root: str = "data/scenes",
        train_size: PositiveInt = 4000,
        val_size: PositiveInt = 250,
        test_size: PositiveInt = 500,
        side: PositiveInt = 96,
        scene_seed: NonNegativeInt = 0,
        image_size: Sequence[PositiveInt] = (96, 96),
        min_freq: PositiveInt = 1,
        **kwargs: Any,
    ) -> None:
        folder = Path(root)
        super().__init__(seed, image_size=image_size, min_freq=min_freq, **kwargs)
        self.images = folder / "images"
        self.root, self.side, self.scene_seed = folder, side, scene_seed
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}

    def source_files(self) -> list[Path]:
        return [self.root / "dataset_scenes.json"]

    def records(self) -> dict:
        write_scenes(self.root, self.sizes, self.side, self.scene_seed)
        return karpathy_records(self.root / "dataset_scenes.json", restval=False)
