"""Classification data: scikit-learn's digits, the user's image folders and text files, and language
identification over the translations in gettext ``.po`` files."""

from __future__ import annotations

import functools
import random
import warnings
from pathlib import Path
from typing import Literal, Optional, Sequence, cast

import numpy as np
import torch

from eeap.config.registry import DATA, Fraction, NonNegativeInt, PositiveInt
from eeap.data.base import CachedFiles, DataModule, DecodedOnRead, demo_import, folder_files, read_rows
from eeap.data.images import check_image, image_file_size, read_image
from eeap.data.text import PAD, fit_tokenizer
from eeap.errors import DataError
from eeap.tasks.classification.info import ClassificationInfo, collate_text


def split(items: list, labels: list[int], val_fraction: float, test_fraction: float, seed: int) -> dict[str, list]:
    """A seeded split stratified by label: {'train': [(item, label)], 'val': ..., 'test': ...}."""
    rng = random.Random(seed)
    parts: dict[str, list] = {"train": [], "val": [], "test": []}
    for label in sorted(set(labels)):
        members = [item for item, y in zip(items, labels) if y == label]
        rng.shuffle(members)
        n_val, n_test = round(len(members) * val_fraction), round(len(members) * test_fraction)
        parts["val"] += [(m, label) for m in members[:n_val]]
        parts["test"] += [(m, label) for m in members[n_val : n_val + n_test]]
        parts["train"] += [(m, label) for m in members[n_val + n_test :]]
    for examples in parts.values():
        rng.shuffle(examples)
    return parts


def collate_images(examples: list) -> dict:
    return {
        "inputs": torch.stack([torch.as_tensor(x) for x, _ in examples]),
        "labels": torch.tensor([y for _, y in examples]),
    }


class ClassificationData(DataModule):
    """Base of classification data: a source's ``make_splits`` gives its images (``image_splits``) or texts
    (``text_splits``) with their labels; this splits them by class and batches them.

    # Parameters
    seed: supplied from the run's seed.
    batch_size, eval_batch_size: examples per training / evaluation batch.
    val_fraction, test_fraction: held-out shares (stratified by class).
    num_workers: DataLoader worker processes.
    split_seed: the seed that draws the held-out splits; unset, the run's seed. Set it to compare seeds on one test
        split.
    """

    info_class = ClassificationInfo

    def __init__(
        self,
        seed: int,
        batch_size: PositiveInt = 64,
        eval_batch_size: PositiveInt = 256,
        val_fraction: Fraction = 0.1,
        test_fraction: Fraction = 0.2,
        num_workers: NonNegativeInt = 0,
        split_seed: Optional[NonNegativeInt] = None,
    ) -> None:
        super().__init__(seed, batch_size, eval_batch_size, num_workers)
        self.fractions = (val_fraction, test_fraction)
        self.split_seed = seed if split_seed is None else split_seed

    def collate(self, examples: list) -> dict:
        return collate_text(examples) if self.info().is_text else collate_images(examples)

    def image_splits(
        self, images: np.ndarray, labels: list[int], classes: list[str]
    ) -> tuple[dict[str, list], ClassificationInfo]:
        """Images (n, channels, H, W) in [0, 1] and their labels, split by class; the info."""
        info = ClassificationInfo(classes, channels=images.shape[1], image_size=tuple(images.shape[2:]))
        return split(list(images.astype(np.float32)), labels, *self.fractions, self.split_seed), info


@DATA.register("digits")
class DigitsData(ClassificationData):
    """scikit-learn's bundled handwritten digits: 1,797 grayscale 8×8 images of 0-9 (no download)."""

    def make_splits(self) -> tuple[dict[str, list], ClassificationInfo]:
        digits = demo_import("sklearn.datasets", "data 'digits'").load_digits()
        images = (digits.images / 16.0)[:, None]  # (n, 1, 8, 8) in [0, 1]
        return self.image_splits(images, digits.target.tolist(), [str(i) for i in range(10)])


@DATA.register("image_folder")
class ImageFolderData(CachedFiles, ClassificationData):
    """The user's images, one folder per class: ``root/<class>/*.png`` (also jpg, bmp, gif).

    # Parameters
    root: the folder holding one sub-folder per class.
    channels: 1 (grayscale) or 3 (RGB).
    image_size: [H, W] every image must have (default: the first image's).
    resize: resize images of another size instead of refusing them.
    cache, cache_dir: see ``CachedFiles``: the images decoded (and resized) once, their pixels kept for the next run
        (H × W × channels bytes an image); without it each image is decoded when the loader reads it.
    """

    def __init__(
        self,
        seed: int,
        root: str,
        channels: Literal[1, 3] = 1,
        image_size: Optional[list] = None,
        resize: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(seed, **kwargs)
        self.root, self.channels, self.size, self.resize = Path(root), channels, image_size, resize

    def data_files(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [f for c in sorted(p for p in self.root.iterdir() if p.is_dir()) for f in folder_files(c)]

    def make_splits(self) -> tuple[dict[str, Sequence], ClassificationInfo]:
        if not self.root.is_dir():
            raise DataError(f"data.root: folder not found: {self.root}")
        classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        files = [(f, i) for i, c in enumerate(classes) for f in folder_files(self.root / c)]
        if len(classes) < 2 or not files:
            raise DataError(f"data.root: {self.root} needs a sub-folder of images per class (at least 2 classes)")
        size = cast(tuple[int, int], tuple(self.size) if self.size else image_file_size(files[0][0]))
        for f, _ in files:  # every file checked from its header before training; decoded only when read
            check_image(f, size, self.resize)
        parts = split([f for f, _ in files], [y for _, y in files], *self.fractions, self.split_seed)
        load = functools.partial(read_labelled_image, channels=self.channels, size=size, resize=self.resize)
        info = ClassificationInfo(classes, channels=self.channels, image_size=size)
        return {name: DecodedOnRead(examples, load) for name, examples in parts.items()}, info


def read_labelled_image(
    item: tuple[Path, int], channels: int, size: tuple[int, int], resize: bool
) -> tuple[np.ndarray, int]:
    """An (image (C, H, W), label) example from its file, decoded (and resized) as it is read."""
    path, label = item
    return read_image(path, channels, size, resize), label


class TextData(ClassificationData):
    """Texts tokenized by a tokenizer fitted on the train split (``text_splits``).

    # Parameters
    tokenizer: ``char``, ``word`` or ``subword``.
    vocab_size, min_freq: vocabulary limits.
    max_len: texts are cut to this many pieces.
    """

    def __init__(
        self,
        seed: int,
        tokenizer: Literal["char", "word", "space", "subword"] = "char",
        vocab_size: PositiveInt = 8000,
        min_freq: PositiveInt = 1,
        max_len: PositiveInt = 128,
        **kwargs,
    ) -> None:
        super().__init__(seed, **kwargs)
        self.kind, self.vocab_size, self.min_freq, self.max_len = tokenizer, vocab_size, min_freq, max_len

    def text_splits(
        self, texts: list[str], labels: list[int], classes: list[str]
    ) -> tuple[dict[str, list], ClassificationInfo]:
        """Texts and their labels, split by class and tokenized by a tokenizer fitted on the train split; the info.
        Each example is a flat record, ``{"ids": [...], "text": ..., "label": ...}`` (what a prepared-data cache
        holds)."""
        kept = [(t.strip(), y) for t, y in zip(texts, labels) if t.strip()]
        if len(kept) < len(texts):
            warnings.warn(f"data: left out {len(texts) - len(kept)} empty texts", stacklevel=2)
        parts = split([t for t, _ in kept], [y for _, y in kept], *self.fractions, self.split_seed)
        tokenizer = fit_tokenizer(self.kind, [t for t, _ in parts["train"]], self.vocab_size, self.min_freq)
        splits = {
            name: [{"ids": tokenizer.encode(t)[: self.max_len] or [PAD], "text": t, "label": y} for t, y in examples]
            for name, examples in parts.items()
        }
        return splits, ClassificationInfo(classes, tokenizer, max_len=self.max_len)


@DATA.register("text_file")
class TextFileData(CachedFiles, TextData):
    """The user's labelled texts: a ``.csv`` or ``.tsv`` file with a text column and a label column.

    # Parameters
    path: the file (``.csv``: comma-separated; any other name: tab-separated).
    text_column, label_column: column positions (0-based).
    header: the first row holds column names.
    on_bad_line: a line that is not UTF-8 or lacks a column: ``error`` stops with one line naming the file and the
        line; ``skip`` leaves it out, counts such lines and shows the first few.
    cache, cache_dir: see ``CachedFiles`` (the tokenizer trained and the texts encoded, kept for the next run).
    """

    def __init__(
        self,
        seed: int,
        path: str,
        text_column: NonNegativeInt = 0,
        label_column: NonNegativeInt = 1,
        header: bool = False,
        on_bad_line: Literal["error", "skip"] = "error",
        **kwargs,
    ) -> None:
        super().__init__(seed, **kwargs)
        self.path, self.columns, self.header = Path(path), (text_column, label_column), header
        self.on_bad_line = on_bad_line

    def data_files(self) -> list[Path]:
        return [self.path] if self.path.is_file() else []

    def make_splits(self) -> tuple[dict[str, list], ClassificationInfo]:
        if not self.path.is_file():
            raise DataError(f"data.path: file not found: {self.path}")
        delimiter = "\t" if self.path.suffix.lower() != ".csv" else ","
        needed = max(self.columns) + 1  # text_column and label_column must exist
        rows = [row for _, row in read_rows(self.path, "data.path", needed, self.on_bad_line, self.header)]
        if not rows:
            raise DataError(f"data.path: {self.path} holds no rows; give a file of text{delimiter!r}label lines")
        classes = sorted({r[self.columns[1]] for r in rows})
        index = {c: i for i, c in enumerate(classes)}
        return self.text_splits([r[self.columns[0]] for r in rows], [index[r[self.columns[1]]] for r in rows], classes)


def django_locales() -> list[str]:
    """Django's folders of translations (its own and its contrib apps'), if Django is installed."""
    try:
        import django
    except ImportError:
        return []
    return sorted(str(p) for p in Path(django.__file__).parent.glob("**/locale") if p.is_dir())


@DATA.register("po_language")
class PoLanguageData(TextData):
    """Language identification over human translations: the ``msgstr`` texts of ``<locale>/<lang>/LC_MESSAGES/*.po``,
    labelled by language (default: Django's own translations, of Django and its contrib apps).

    # Parameters
    locale_dirs: folders with one sub-folder per language (default: every ``locale`` folder of Django).
    languages: which sub-folders to use.
    min_chars: shorter texts (placeholders, single words) are left out.
    """

    def __init__(
        self,
        seed: int,
        locale_dirs: Optional[list[str]] = None,
        languages: Sequence[str] = ("de", "en_GB", "es", "fr", "it", "nl", "pl", "pt", "sv"),
        min_chars: NonNegativeInt = 12,
        **kwargs,
    ) -> None:
        super().__init__(seed, **kwargs)
        self.locale_dirs, self.languages, self.min_chars = locale_dirs, list(languages), min_chars

    def make_splits(self) -> tuple[dict[str, list], ClassificationInfo]:
        polib = demo_import("polib", "data 'po_language'")
        folders = self.locale_dirs or django_locales()
        if not folders:
            raise DataError(
                "data.locale_dirs: not set, and Django (whose translations are the default) is not "
                "installed; pip install 'eeap[demos]', or list folders of <lang>/LC_MESSAGES/*.po"
            )
        texts, labels = [], []
        for label, language in enumerate(self.languages):
            files = sorted(f for folder in folders for f in (Path(folder) / language / "LC_MESSAGES").glob("*.po"))
            if not files:
                raise DataError(f"data.languages: no {language}/LC_MESSAGES/*.po in {', '.join(folders)}")
            for file in files:
                for entry in polib.pofile(str(file)).translated_entries():
                    strings = [entry.msgstr] if entry.msgstr else list(entry.msgstr_plural.values())
                    texts += [s for s in strings if len(s) >= self.min_chars]
                    labels += [label for s in strings if len(s) >= self.min_chars]
        return self.text_splits(texts, labels, self.languages)
