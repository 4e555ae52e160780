"""Captioning data: seeded formula images rendered with matplotlib's mathtext (target: the LaTeX markup tokens), and
the user's folder of images with a captions file."""

from __future__ import annotations

import collections.abc
import functools
import json
import random
import re
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Sequence, cast

import numpy as np
import torch

from eeap.config.registry import DATA, Fraction, NonNegativeInt, PositiveInt, Range
from eeap.data.base import CachedFiles, DataModule, DecodedOnRead, folder_files, read_rows
from eeap.data.images import check_image, image_file_size, read_image
from eeap.data.text import BOS, EOS, fit_tokenizer, pad
from eeap.errors import DataError
from eeap.tasks.captioning.info import CaptioningInfo

LETTERS = list("abcnxyz")
GREEK = [r"\alpha", r"\beta", r"\pi", r"\theta"]
OPERATORS = ["+", "-", "=", r"\times"]


Captioned = tuple[Any, list[str], str]  # an image (or its file), all its captions, its name


class CaptioningData(DataModule):
    """Base of captioning data: a source's ``make_splits`` gives {split: [(image, captions, name)]} to ``tokenized``,
    which fits the tokenizer on the training captions; this batches them.

    Training reads one example per caption (every caption seen; the image stored once, ``PerCaption``); validation
    and test read one example per image with all its captions as references, as captioning is scored.

    # Parameters
    seed: supplied from the run's seed.
    tokenizer: ``char``, ``word`` (words and punctuation), ``space`` (whitespace-separated tokens, as given) or
        ``subword`` (sentencepiece).
    vocab_size, min_freq: vocabulary limits (a word seen fewer than ``min_freq`` times in training is ``<unk>``).
    max_len: captions longer than this many tokens are left out of training (and cut in evaluation).
    lowercase: lower-case the captions (the standard preprocessing of photo captions).
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
        lowercase: bool = False,
        batch_size: PositiveInt = 32,
        eval_batch_size: PositiveInt = 128,
        num_workers: NonNegativeInt = 0,
    ) -> None:
        super().__init__(seed, batch_size, eval_batch_size, num_workers)
        self.kind, self.vocab_size, self.min_freq, self.max_len = tokenizer, vocab_size, min_freq, max_len
        self.lowercase = lowercase

    def prepare(self) -> None:
        first = self._info is None
        super().prepare()
        if first:
            self.splits["train"] = PerCaption(self.splits["train"])

    def collate(self, examples: list[dict]) -> dict:
        """images (batch, C, H, W) as ``src``; tgt_in = BOS + y, tgt_out = y + EOS (batch, tgt_len); names (as
        ``src_text``), the caption texts, and in evaluation each image's ``references``."""
        batch = {
            "src": torch.stack([torch.as_tensor(e["image"]) for e in examples]),
            "tgt_in": pad([[BOS] + e["tgt"] for e in examples]),
            "tgt_out": pad([e["tgt"] + [EOS] for e in examples]),
            "src_text": [e["name"] for e in examples],
            "tgt_text": [e["tgt_text"] for e in examples],
        }
        if "references" in examples[0]:
            batch["references"] = [list(e["references"]) for e in examples]
        return batch

    def lengths(self, split: str) -> Optional[Sequence[int]]:
        examples = self.splits[split]
        if isinstance(examples, PerCaption):
            return examples.lengths()
        from eeap.data.prepared import column_lengths

        return column_lengths(examples, "tgt").tolist()

    def text(self, caption: str) -> str:
        """A caption as the tokenizer reads it (lower-cased where ``lowercase``)."""
        return caption.lower() if self.lowercase else caption

    def tokenized(
        self, parts: dict[str, list[Captioned]], channels: int, size: tuple[int, int], fit: str = "exact"
    ) -> tuple[dict[str, list], CaptioningInfo]:
        """{split: [(image (C, H, W) or its file, captions, name)]} → the splits, captions encoded by a tokenizer
        fitted on the training captions (training: an image with its captions of at most ``max_len`` tokens;
        evaluation: an image, its first caption as the target and all as references), and the info."""
        train_texts = [self.text(c) for _, captions, _ in parts["train"] for c in captions]
        tokenizer = fit_tokenizer(self.kind, train_texts, self.vocab_size, self.min_freq)
        splits: dict[str, list] = {}
        for split, images in parts.items():
            rows = []
            for image, captions, name in images:
                texts = [self.text(c) for c in captions]
                encoded = [tokenizer.encode(t) for t in texts]
                for number, (caption, ids) in enumerate(zip(captions, encoded), 1):
                    if not ids:
                        raise DataError(
                            f"data: caption {number} of {name} is empty once tokenized ({caption!r}); "
                            "give every caption words, or leave it out of the file"
                        )
                if not texts:
                    raise DataError(f"data: {name} has no captions; give each image at least one")
                if split == "train":
                    kept = [(t, ids) for t, ids in zip(texts, encoded) if len(ids) <= self.max_len]
                    if kept:
                        rows.append(
                            {
                                "image": image,
                                "tgts": [i for _, i in kept],
                                "tgt_texts": [t for t, _ in kept],
                                "name": name,
                            }
                        )
                else:
                    target = encoded[0][: self.max_len]
                    rows.append(
                        {"image": image, "tgt": target, "tgt_text": texts[0], "references": texts, "name": name}
                    )
            splits[split] = rows
        if not splits["train"]:
            raise DataError(f"data: no training caption has at most max_len={self.max_len} tokens; raise data.max_len")
        longest = max(
            max(len(t) for row in splits["train"] for t in row["tgts"]),
            max(len(row["tgt"]) for split in ("val", "test") for row in splits[split] if splits[split]),
        )
        return splits, CaptioningInfo(tokenizer, channels, size, longest, fit)


class PerCaption(collections.abc.Sequence):
    """A training split of images, each with its captions (``tgts``, ``tgt_texts``), read as one example per caption;
    an image's pixels are stored once, whatever its number of captions.

    # Parameters
    images: the split's rows (a list, a cached split, or a split decoded on read).
    """

    def __init__(self, images: Sequence) -> None:
        from eeap.data.prepared import column_lengths

        self.images = images
        self.starts = np.concatenate([[0], np.cumsum(column_lengths(images, "tgts"))])  # (images + 1,)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = int(index) + len(self) if int(index) < 0 else int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"caption {index} of {len(self)}")
        row = int(np.searchsorted(self.starts, index, side="right")) - 1
        image = self.images[row]
        which = index - int(self.starts[row])
        return {
            "image": image["image"],
            "tgt": image["tgts"][which],
            "tgt_text": image["tgt_texts"][which],
            "name": image["name"],
        }

    def lengths(self) -> list[int]:
        """Each caption's length in tokens, in order."""
        from eeap.data.prepared import nested_lengths

        return nested_lengths(self.images, "tgts").tolist()


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
                examples.append((image, [markup], f"{split}{len(examples)}"))
            parts[split] = examples
        return self.tokenized(parts, 1, self.size)


@DATA.register("caption_folder")
class CaptionFolderData(CachedFiles, CaptioningData):
    """The user's images and captions: ``root/images/*`` and a captions file of ``FILE<TAB>caption`` lines (or a
    ``.csv`` with file and caption columns). An image with several captions is trained on each and scored against
    all of them.

    # Parameters
    root: the folder holding ``images/``.
    captions: the captions file (default ``root/captions.tsv``).
    channels: 1 (grayscale) or 3 (RGB).
    image_size: [H, W] every image must have (default: the first image's).
    resize: resize images of another size instead of refusing them.
    val_fraction, test_fraction: held-out shares of the images (all captions of an image stay in one split).
    split_seed: the seed that draws the held-out images; unset, the run's seed. Set it to compare seeds on one test
        split.
    on_bad_line: a captions line that is not UTF-8, lacks a caption or has an empty one: ``error`` stops with one
        line naming the file and the line; ``skip`` leaves it out, counts such lines and shows the first few.
    cache, cache_dir: see ``CachedFiles``: the tokenizer trained, captions encoded and images decoded (and resized)
        once, kept for the next run (an image's pixels once, whatever its number of captions); without it each
        image is decoded when the loader reads it.
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
        split_seed: Optional[NonNegativeInt] = None,
        **kwargs,
    ) -> None:
        super().__init__(seed, **kwargs)
        self.on_bad_line = on_bad_line
        self.split_seed = seed if split_seed is None else split_seed
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
        random.Random(self.split_seed).shuffle(names)
        n_val = max(1, round(len(names) * self.fractions[0]))
        n_test = max(1, round(len(names) * self.fractions[1]))
        groups = {"val": names[:n_val], "test": names[n_val : n_val + n_test], "train": names[n_val + n_test :]}
        parts = {split: [(folder / n, by_image[n], n) for n in group] for split, group in groups.items()}
        splits, info = self.tokenized(parts, self.channels, size, "resize" if self.resize else "exact")
        load = functools.partial(read_captioned_image, channels=self.channels, size=size, resize=self.resize)
        return {name: DecodedOnRead(examples, load) for name, examples in splits.items()}, info


def read_captioned_image(example: dict, channels: int, size: tuple[int, int], resize: bool, crop: bool = False) -> dict:
    """A captioning example whose ``image`` is a file path, with the image decoded (resized or cropped) as it is read."""
    return {**example, "image": read_image(Path(example["image"]), channels, size, resize, crop)}


class PhotoCollection(CachedFiles, CaptioningData):
    """Base of the photo collections researchers hold on disk (``karpathy``, ``coco``): images of any size, read as
    ``fit`` says (``crop``: scaled keeping the aspect ratio and centre-cropped, the standard preprocessing), in
    colour, with several captions each; ``records`` reads the source's file. Every listed image is checked before
    training (a missing or unreadable one is one line).

    # Parameters
    image_size: [H, W] the images are brought to (a multiple of the encoder's stride).
    fit: ``crop`` or ``resize`` (stretched).
    shift: training augmentation: each image moved by up to this many pixels each way (edges repeated), drawn per
        example and epoch from the run's seeded generator (0: off). No flips: a caption's "left of" would lie.
    jitter: training augmentation: brightness and contrast each scaled by a factor in [1 − jitter, 1 + jitter].
    cache, cache_dir: see ``CachedFiles`` (images decoded once, at ``image_size``; augmentation after).
    """

    images: Path  # the folder the source's image paths are relative to (set by the source)

    def __init__(
        self,
        seed: int,
        image_size: Sequence[PositiveInt] = (224, 224),
        fit: Literal["crop", "resize"] = "crop",
        lowercase: bool = True,
        shift: NonNegativeInt = 0,
        jitter: Annotated[float, Range(0.0, 0.9)] = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed, lowercase=lowercase, **kwargs)
        self.shift, self.jitter = shift, jitter
        self.size, self.fit = cast(tuple[int, int], tuple(image_size)), fit
        self._records: Optional[dict[str, list[Captioned]]] = None

    def augment(self, example: dict, generator: torch.Generator) -> dict:
        """A training image moved by up to ``shift`` pixels and its brightness and contrast jittered."""
        if not (self.shift or self.jitter):
            return example
        image = torch.as_tensor(example["image"])  # (C, H, W)
        if self.shift:
            s = self.shift
            dy, dx = torch.randint(-s, s + 1, (2,), generator=generator).tolist()
            padded = torch.nn.functional.pad(image[None], (s, s, s, s), mode="replicate")[0]  # (C, H + 2s, W + 2s)
            image = padded[
                :, s - dy : s - dy + image.shape[1], s - dx : s - dx + image.shape[2]
            ]  # content moved by dy, dx
        if self.jitter:
            brightness, contrast = (1 + (torch.rand(2, generator=generator) * 2 - 1) * self.jitter).tolist()
            mean = image.mean()
            image = (((image - mean) * contrast + mean) * brightness).clamp(0, 1)
        return {**example, "image": image.numpy()}

    def records(self) -> dict[str, list[Captioned]]:
        """{split: [(image file relative to ``images``, captions, name)]} from the source's file."""
        raise NotImplementedError

    def listed(self) -> dict[str, list[Captioned]]:
        """``records``, read once."""
        if self._records is None:
            self._records = self.records()
        return self._records

    def data_files(self) -> list[Path]:
        try:
            listed = self.listed()
        except DataError:
            return []  # make_splits says what is wrong
        return [*self.source_files(), *(self.images / file for part in listed.values() for file, _, _ in part)]

    def source_files(self) -> list[Path]:
        """The source's own files (the annotations)."""
        raise NotImplementedError

    def make_splits(self) -> tuple[dict[str, Sequence], CaptioningInfo]:
        parts = self.listed()
        for split in ("train", "val", "test"):
            if not parts.get(split):
                raise DataError(f"data: the {split} split lists no images")
        missing = [file for part in parts.values() for file, _, _ in part if not (self.images / file).is_file()]
        if missing:
            raise DataError(f"data.images: {len(missing)} listed images are not in {self.images}, e.g. {missing[0]}")
        for part in parts.values():  # every header read before training; the pixels decoded when read
            for file, _, _ in part:
                check_image(self.images / file, self.size, True)
        located = {split: [(self.images / f, c, n) for f, c, n in part] for split, part in parts.items()}
        splits, info = self.tokenized(located, 3, self.size, self.fit)
        load = functools.partial(
            read_captioned_image, channels=3, size=self.size, resize=self.fit == "resize", crop=self.fit == "crop"
        )
        return {name: DecodedOnRead(examples, load) for name, examples in splits.items()}, info


def read_json(path: Path, where: str) -> Any:
    """A JSON file, or one line saying it is missing or not JSON."""
    if not path.is_file():
        raise DataError(f"{where}: file not found: {path}")
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{where}: {path} is not JSON ({e})") from None


@DATA.register("karpathy")
class KarpathyData(PhotoCollection):
    """Karpathy's split files (``dataset_coco.json``, ``dataset_flickr8k.json``, ``dataset_flickr30k.json``): images
    with a ``split`` (``train``, ``restval``, ``val``, ``test``) and their ``sentences`` (``tokens``, ``raw``); the
    image file is ``filepath/filename`` (``filename`` alone for Flickr) under ``images``. Captions are the sentences'
    ``tokens`` (already lower-cased and split, as the standard preprocessing), else their ``raw`` text.

    # Parameters
    file: the ``dataset_*.json`` file.
    images: the folder its image paths are relative to (e.g. COCO's folder holding ``train2014/`` and ``val2014/``).
    restval: where ``restval`` images go (``train``, as everyone trains on them, or ``none``).
    min_freq: the vocabulary's least word count (5, as the standard preprocessing).
    """

    def __init__(
        self,
        seed: int,
        file: str,
        images: str,
        restval: Literal["train", "none"] = "train",
        min_freq: PositiveInt = 5,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed, min_freq=min_freq, **kwargs)
        self.file, self.images, self.restval = Path(file), Path(images), restval

    def source_files(self) -> list[Path]:
        return [self.file]

    def records(self) -> dict[str, list[Captioned]]:
        return karpathy_records(self.file, self.restval == "train")


def karpathy_records(path: Path, restval: bool) -> dict[str, list[Captioned]]:
    """{split: [(image file, captions, name)]} of a Karpathy split file (``restval`` images in training if asked)."""
    data = read_json(path, "data.file")
    entries = data.get("images") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise DataError(
            f"data.file: {path} has no 'images' list; a Karpathy split file holds "
            '{"images": [{"filename": ..., "split": ..., "sentences": [{"tokens": [...], "raw": ...}]}]}'
        )
    splits = {"train": "train", "val": "val", "test": "test", **({"restval": "train"} if restval else {})}
    parts: dict[str, list[Captioned]] = {"train": [], "val": [], "test": []}
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict) or "filename" not in entry or not isinstance(entry.get("sentences"), list):
            raise DataError(f"data.file: image {number} of {path} lacks 'filename' or a 'sentences' list")
        split = splits.get(str(entry.get("split", "train")))
        if split is None:
            continue
        file = str(Path(entry.get("filepath", "")) / entry["filename"])
        captions = [" ".join(s["tokens"]) if s.get("tokens") else str(s.get("raw", "")) for s in entry["sentences"]]
        parts[split].append((file, captions, file))
    return parts


@DATA.register("coco")
class CocoData(PhotoCollection):
    """COCO's caption annotations (``captions_train2014.json``, ...): ``images`` (``id``, ``file_name``) and
    ``annotations`` (``image_id``, ``caption``); the images are held out by ``val_fraction`` and ``test_fraction``
    (all captions of an image in one split). Captions are lower-cased and split into words and punctuation.

    # Parameters
    annotations: the ``captions_*.json`` file.
    images: the folder holding its ``file_name``s (e.g. ``train2014/``).
    val_fraction, test_fraction: held-out shares of the images.
    split_seed: the seed that draws the held-out images; unset, the run's seed. Set it to compare seeds on one test
        split.
    """

    def __init__(
        self,
        seed: int,
        annotations: str,
        images: str,
        val_fraction: Fraction = 0.05,
        test_fraction: Fraction = 0.05,
        split_seed: Optional[NonNegativeInt] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed, **kwargs)
        self.images = Path(images)
        self.split_seed = seed if split_seed is None else split_seed
        self.annotations, self.fractions = Path(annotations), (val_fraction, test_fraction)

    def source_files(self) -> list[Path]:
        return [self.annotations]

    def records(self) -> dict[str, list[Captioned]]:
        data = read_json(self.annotations, "data.annotations")
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise DataError(
                f"data.annotations: {self.annotations} has no 'images' list; a COCO captions file holds "
                '{"images": [{"id": ..., "file_name": ...}], "annotations": [{"image_id": ..., "caption": ...}]}'
            )
        files = {image["id"]: image["file_name"] for image in data["images"] if "id" in image and "file_name" in image}
        captions: dict[Any, list[str]] = {}
        for note in data.get("annotations", []):
            if note.get("image_id") not in files:
                raise DataError(
                    f"data.annotations: a caption of image_id {note.get('image_id')!r} names no image of {self.annotations}"
                )
            captions.setdefault(note["image_id"], []).append(str(note.get("caption", "")))
        ids = sorted(i for i in files if i in captions)
        if len(ids) < 3:
            raise DataError(f"data.annotations: {len(ids)} images have captions; at least 3 are needed")
        random.Random(self.split_seed).shuffle(ids)
        n_val = max(1, round(len(ids) * self.fractions[0]))
        n_test = max(1, round(len(ids) * self.fractions[1]))
        groups = {"val": ids[:n_val], "test": ids[n_val : n_val + n_test], "train": ids[n_val + n_test :]}
        return {split: [(files[i], captions[i], files[i]) for i in group] for split, group in groups.items()}
