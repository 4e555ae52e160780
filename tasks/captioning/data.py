"""Captioning data: seeded formula images rendered with matplotlib's mathtext (target: the LaTeX markup tokens), and
the user's folder of images with a captions file."""

from __future__ import annotations

import functools
import random
import re
import warnings
from pathlib import Path
from typing import Literal, Optional, Sequence, cast

import numpy as np
import torch

from eeap.config.registry import DATA, Fraction, NonNegativeInt, PositiveInt
from eeap.data.base import CachedFiles, DataModule, DecodedOnRead, folder_files, read_rows
from eeap.data.images import check_image, image_file_size, read_image
from eeap.data.text import BOS, EOS, fit_tokenizer, pad
from eeap.errors import DataError
from eeap.tasks.captioning.info import CaptioningInfo

LETTERS = list("abcnxyz")
GREEK = [r"\alpha", r"\beta", r"\pi", r"\theta"]
OPERATORS = ["+", "-", "=", r"\times"]


class CaptioningData(DataModule):
    """Base of captioning data: a source's ``make_splits`` gives {split: [(image, caption, name)]} to ``tokenized``,
    which fits the tokenizer on the training captions; this batches them.

    # Parameters
    seed: supplied from the run's seed.
    tokenizer: ``char``, ``word`` (words and punctuation), ``space`` (whitespace-separated tokens, as given) or
        ``subword`` (sentencepiece).
    vocab_size, min_freq: vocabulary limits.
    max_len: captions longer than this many tokens are left out of training (and cut in evaluation).
    batch_size, eval_batch_size, num_workers: loaders.
    """

    info_class = CaptioningInfo

    def __init__(
        self,
        seed: int,
        tokenizer: Literal["char", "word", "space", "subword"] = "word",
        vocab_size: PositiveInt = 8000,
        min_freq: PositiveInt = 1,
        max_len: PositiveInt = 64,
        batch_size: PositiveInt = 32,
        eval_batch_size: PositiveInt = 128,
        num_workers: NonNegativeInt = 0,
    ) -> None:
        super().__init__(seed, batch_size, eval_batch_size, num_workers)
        self.kind, self.vocab_size, self.min_freq, self.max_len = tokenizer, vocab_size, min_freq, max_len

    def collate(self, examples: list[dict]) -> dict:
        """images (batch, C, H, W) as ``src``; tgt_in = BOS + y, tgt_out = y + EOS (batch, tgt_len); names, texts."""
        return {
            "src": torch.stack([torch.as_tensor(e["image"]) for e in examples]),
            "tgt_in": pad([[BOS] + e["tgt"] for e in examples]),
            "tgt_out": pad([e["tgt"] + [EOS] for e in examples]),
            "src_text": [e["name"] for e in examples],
            "tgt_text": [e["tgt_text"] for e in examples],
        }

    def lengths(self, split: str) -> Optional[list[int]]:
        from eeap.data.prepared import column_lengths

        return column_lengths(self.splits[split], "tgt").tolist()

    def tokenized(
        self, parts: dict[str, list], channels: int, size: tuple[int, int]
    ) -> tuple[dict[str, list], CaptioningInfo]:
        """{split: [(image (C, H, W) or its file, caption, name)]} → the splits with captions encoded by a tokenizer fitted on
        the training captions, and the info."""
        tokenizer = fit_tokenizer(
            self.kind, [caption for _, caption, _ in parts["train"]], self.vocab_size, self.min_freq
        )
        splits = {}
        for split, examples in parts.items():
            encoded = [
                {"image": image, "tgt": tokenizer.encode(caption)[: self.max_len], "tgt_text": caption, "name": name}
                for image, caption, name in examples
            ]
            if split == "train":
                encoded = [e for e in encoded if len(tokenizer.encode(e["tgt_text"])) <= self.max_len]
            splits[split] = encoded
        longest = max(len(e["tgt"]) for examples in splits.values() for e in examples)
        return splits, CaptioningInfo(tokenizer, channels, size, longest)


def random_formula(rng: random.Random, terms: int, depth: int = 0) -> list[str]:
    """LaTeX markup tokens of a random formula: atoms (letters, digits, Greek), powers, indices, fractions, roots
    and brackets, joined by operators; inside a fraction, root or bracket only atoms, powers and indices."""
    tokens: list[str] = []
    for i in range(rng.randint(1, terms)):
        if i:
            tokens.append(rng.choice(OPERATORS))
        kind = rng.random()
        atom = rng.choice(LETTERS + GREEK + list("0123456789"))
        if kind < (0.4 if depth == 0 else 0.7):
            tokens.append(atom)
        elif kind < (0.55 if depth == 0 else 1.0):
            tokens += [atom, rng.choice("^_"), "{", rng.choice(LETTERS + list("0123456789")), "}"]
        elif kind < 0.7:
            tokens += [
                r"\frac",
                "{",
                *random_formula(rng, 2, depth + 1),
                "}",
                "{",
                *random_formula(rng, 2, depth + 1),
                "}",
            ]
        elif kind < 0.85:
            tokens += [r"\sqrt", "{", *random_formula(rng, 2, depth + 1), "}"]
        else:
            tokens += ["(", *random_formula(rng, 2, depth + 1), ")"]
    return tokens


def compact(markup: str) -> str:
    """Markup tokens joined without spaces, which mathtext needs (it reads ``a _ { 1 }`` as ``a`` and ``1``),
    keeping a space after a command that a letter follows (``\\times x``)."""
    out = ""
    for token in markup.split():
        if out and token[0].isalpha() and re.search(r"\\[A-Za-z]+$", out):
            out += " "
        out += token
    return out


def render_formula(markup: str, size: tuple[int, int], dpi: int) -> np.ndarray:
    """The formula drawn by mathtext as ink in [0, 1] on a (1, H, W) canvas: centred, shrunk to fit if too large."""
    from matplotlib.mathtext import MathTextParser
    from PIL import Image

    parsed = MathTextParser("agg").parse(f"${compact(markup)}$", dpi=dpi)
    ink = np.asarray(parsed.image, dtype=np.uint8)  # (h, w), 255 = ink
    height, width = size
    if ink.shape[0] > height or ink.shape[1] > width:
        scale = min(height / ink.shape[0], width / ink.shape[1])
        shape = (max(1, int(ink.shape[1] * scale)), max(1, int(ink.shape[0] * scale)))
        ink = np.asarray(Image.fromarray(ink).resize(shape, Image.Resampling.BILINEAR))
    canvas = np.zeros((1, height, width), dtype=np.float32)
    top, left = (height - ink.shape[0]) // 2, (width - ink.shape[1]) // 2
    canvas[0, top : top + ink.shape[0], left : left + ink.shape[1]] = ink / 255.0
    return canvas


@DATA.register("formulas")
class FormulaData(CaptioningData):
    """An im2latex-style set: random formulas rendered by matplotlib's mathtext; the caption is the markup, one token
    per LaTeX symbol (``\\frac { a + 1 } { 2 }``), read with the ``space`` tokenizer. Seeded; formulas in the validation
    and test splits never occur in training, and none is longer than ``max_len`` tokens.

    # Parameters
    train_size, val_size, test_size: formulas per split.
    image_size: [H, W] of the canvas (a larger rendering is shrunk to fit).
    max_terms: most operator-joined terms at the top level.
    dpi: rendering resolution (font size); each formula is drawn at a random dpi in [dpi − 10, dpi + 10].
    """

    def __init__(
        self,
        seed: int,
        train_size: PositiveInt = 6000,
        val_size: PositiveInt = 300,
        test_size: PositiveInt = 500,
        image_size: Sequence[PositiveInt] = (32, 128),
        max_terms: PositiveInt = 3,
        dpi: PositiveInt = 90,
        tokenizer: Literal["char", "word", "space", "subword"] = "space",
        **kwargs,
    ) -> None:
        super().__init__(seed, tokenizer=tokenizer, **kwargs)
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.size, self.max_terms, self.dpi = cast(tuple[int, int], tuple(image_size)), max_terms, dpi

    def make_splits(self) -> tuple[dict[str, list], CaptioningInfo]:
        rng = random.Random(self.seed)
        seen: set[str] = set()
        parts: dict[str, list] = {}
        for split in ("test", "val", "train"):  # held-out formulas first, so training never repeats them
            examples: list[tuple] = []
            attempts = 0
            while len(examples) < self.sizes[split]:
                attempts += 1
                if attempts > 50 * self.sizes[split] + 1000:
                    raise DataError(
                        f"data: could not draw {self.sizes[split]} distinct {split} formulas; "
                        "raise max_terms or lower the split sizes"
                    )
                tokens = random_formula(rng, self.max_terms)
                markup = " ".join(tokens)
                if markup in seen or len(tokens) > self.max_len:
                    continue
                seen.add(markup)
                image = render_formula(markup, self.size, rng.randint(self.dpi - 10, self.dpi + 10))
                examples.append((image, markup, f"{split}{len(examples)}"))
            parts[split] = examples
        return self.tokenized(parts, 1, self.size)


@DATA.register("caption_folder")
class CaptionFolderData(CachedFiles, CaptioningData):
    """The user's images and captions: ``root/images/*`` and a captions file of ``FILE<TAB>caption`` lines (or a
    ``.csv`` with file and caption columns). An image with several captions gives one example per caption.

    # Parameters
    root: the folder holding ``images/``.
    captions: the captions file (default ``root/captions.tsv``).
    channels: 1 (grayscale) or 3 (RGB).
    image_size: [H, W] every image must have (default: the first image's).
    resize: resize images of another size instead of refusing them.
    val_fraction, test_fraction: held-out shares of the images (all captions of an image stay in one split).
    on_bad_line: a captions line that is not UTF-8, lacks a caption or has an empty one: ``error`` stops with one
        line naming the file and the line; ``skip`` leaves it out, counts such lines and shows the first few.
    cache, cache_dir: see ``CachedFiles``: the tokenizer trained, captions encoded and images decoded (and resized)
        once, kept for the next run (an image's pixels once per caption); without it each image is decoded when
        the loader reads it.
    """

    def __init__(
        self,
        seed: int,
        root: str,
        captions: Optional[str] = None,
        channels: Literal[1, 3] = 3,
        image_size: Optional[list[PositiveInt]] = None,
        resize: bool = False,
        val_fraction: Fraction = 0.1,
        test_fraction: Fraction = 0.2,
        on_bad_line: Literal["error", "skip"] = "error",
        **kwargs,
    ) -> None:
        super().__init__(seed, **kwargs)
        self.on_bad_line = on_bad_line
        self.root, self.channels, self.size, self.resize = Path(root), channels, image_size, resize
        self.captions = Path(captions) if captions else self.root / "captions.tsv"
        self.fractions = (val_fraction, test_fraction)

    def data_files(self) -> list[Path]:
        return [self.captions, *folder_files(self.root / "images")] if self.captions.is_file() else []

    def make_splits(self) -> tuple[dict[str, Sequence], CaptioningInfo]:
        if not self.captions.is_file():
            raise DataError(f"data.captions: file not found: {self.captions} (lines of FILE<TAB>caption)")
        delimiter = "," if self.captions.suffix.lower() == ".csv" else "\t"
        by_image: dict[str, list[str]] = {}
        rows = read_rows(self.captions, "data.captions", 2, self.on_bad_line)
        for number, row in rows:
            if not row[1].strip():
                shown = f"FILE{'<TAB>' if delimiter == chr(9) else ','}caption"
                message = f"{self.captions} line {number}: expected {shown}, got {delimiter.join(row)!r}"
                if self.on_bad_line == "error":
                    raise DataError(f"data.captions: {message}")
                warnings.warn(f"data.captions: left out {message}", stacklevel=2)
                continue
            by_image.setdefault(row[0].strip(), []).append(row[1].strip())
        names = sorted(by_image)
        if len(names) < 3:
            raise DataError(
                f"data.captions: {len(names)} images captioned; at least 3 are needed (train, validation and test)"
            )
        missing = [n for n in names if not (self.root / "images" / n).is_file()]
        if missing:
            raise DataError(
                f"data.captions: {len(missing)} captioned images are not in {self.root / 'images'}, e.g. {missing[0]}"
            )
        folder = self.root / "images"
        size = cast(tuple[int, int], tuple(self.size) if self.size else image_file_size(folder / names[0]))
        for n in names:  # every file checked from its header before training; decoded only when read
            check_image(folder / n, size, self.resize)
        random.Random(self.seed).shuffle(names)
        n_val = max(1, round(len(names) * self.fractions[0]))
        n_test = max(1, round(len(names) * self.fractions[1]))
        groups = {"val": names[:n_val], "test": names[n_val : n_val + n_test], "train": names[n_val + n_test :]}
        parts = {
            split: [(folder / n, caption, n) for n in group for caption in by_image[n]]
            for split, group in groups.items()
        }
        splits, info = self.tokenized(parts, self.channels, size)
        load = functools.partial(read_captioned_image, channels=self.channels, size=size, resize=self.resize)
        return {name: DecodedOnRead(examples, load) for name, examples in splits.items()}, info


def read_captioned_image(example: dict, channels: int, size: tuple[int, int], resize: bool) -> dict:
    """A captioning example whose ``image`` is a file path, with the image decoded (and resized) as it is read."""
    return {**example, "image": read_image(example["image"], channels, size, resize)}
