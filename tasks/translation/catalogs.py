"""A real parallel corpus that installs offline: the gettext catalogs that Python packages ship.

A package's ``locale/<lang>/LC_MESSAGES/*.po`` files pair the English strings of its user interface (``msgid``) with
human translations (``msgstr``). Each ``locale`` folder is one catalog (an app: Django's admin, its auth, Wagtail's
images, ...). Splits are made of whole catalogs, so a held-out app's strings are new to the model; strings that
occur in more than one app ("Save", "Delete %(name)s") are then kept out of the held-out splits by their
*near-duplicate key* (case, punctuation, markup and placeholders ignored), so no string, and no near-duplicate, is in
two splits.
"""

from __future__ import annotations

import importlib.util
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from eeap.data.base import demo_import
from eeap.errors import DataError

Pairs = list[tuple[str, str]]

# printf-style (%(name)s, %s, %d, %.2f) and format-style ({name}, {0}) placeholders
PLACEHOLDER = re.compile(r"%\([^)]*\)[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]|%[-#0 +]*\d*(?:\.\d+)?[sdifrx]|\{[^{}]*\}")
MARKUP = re.compile(r"<[^<>]*>|&[a-z]+;|&#\d+;")
EXTRAS = "pip install 'eeap[po-corpus]' installs django, wagtail, django-allauth (allauth) and sphinx"


def near_key(text: str) -> str:
    """What is left of a string when case, punctuation, markup and placeholders are ignored: ``"Delete %(name)s."``
    and ``"delete {name}"`` share the key ``"delete #"``."""
    text = PLACEHOLDER.sub(" # ", MARKUP.sub(" ", text.lower()))
    return " ".join(re.findall(r"\w+|#", text))


def clean(text: str) -> str:
    """One line: runs of whitespace (line breaks in long strings included) become one space."""
    return " ".join(text.split())


@dataclass(frozen=True)
class Catalog:
    """One ``locale`` folder's catalogs in one language: every ``.po`` file under ``<locale>/<lang>/LC_MESSAGES``."""

    name: str  # e.g. django/contrib/admin
    files: tuple[Path, ...]

    def pairs(self) -> Pairs:
        """(msgid, msgstr) of every translated entry (not fuzzy, not obsolete) on one line each; a plural entry gives
        its singular and its plural form. Entries whose source has no letter outside its placeholders (``%(size)s``,
        ``—``) are left out."""
        polib = demo_import("polib", "data 'gettext'")
        pairs = []
        for path in self.files:
            try:
                catalog = polib.pofile(str(path))
            except (OSError, ValueError) as e:
                raise DataError(f"data: {path} is not a readable .po file ({e})") from None
            for entry in catalog.translated_entries():
                if entry.obsolete:
                    continue
                if entry.msgid_plural:
                    forms = entry.msgstr_plural
                    found = [(entry.msgid, forms.get(0, "")), (entry.msgid_plural, forms.get(1, forms.get(0, "")))]
                else:
                    found = [(entry.msgid, entry.msgstr)]
                for source, target in found:
                    source, target = clean(source), clean(target)
                    if source and target and any(c.isalpha() for c in PLACEHOLDER.sub("", source)):
                        pairs.append((source, target))
        return pairs


def package_locales(package: str) -> tuple[Path, list[Path]]:
    """An installed package's folder and its ``locale`` folders (its own and its sub-packages')."""
    try:
        spec = importlib.util.find_spec(package)  # finds it without importing it
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"data.packages: '{package}' is not an installed Python package ({EXTRAS})")
    root = Path(list(spec.submodule_search_locations)[0])
    return root, sorted(p for p in root.rglob("locale") if p.is_dir())


def find_catalogs(packages: Sequence[str], locale_dirs: Sequence[str], language: str) -> list[Catalog]:
    """The catalogs in ``language`` of every ``locale`` folder of the packages, and of the folders given."""
    folders: list[tuple[str, Path]] = []
    for package in packages:
        root, locales = package_locales(package)
        named = [(str(Path(package) / p.parent.relative_to(root)).rstrip("/."), p) for p in locales]
        if not any(next((p / language / "LC_MESSAGES").glob("*.po"), None) for _, p in named):
            have = sorted({q.name for _, p in named for q in p.iterdir() if (q / "LC_MESSAGES").is_dir()})
            raise DataError(
                f"data.language: package '{package}' has no '{language}' catalogs; it has: {', '.join(have) or 'none'}"
            )
        folders += named
    for folder in locale_dirs:
        path = Path(folder)
        if not path.is_dir():
            raise DataError(f"data.locale_dirs: not a folder: {folder}")
        if not (path / language / "LC_MESSAGES").is_dir():
            raise DataError(f"data.locale_dirs: no {language}/LC_MESSAGES folder in {folder}")
        folders.append((str(path), path))
    catalogs = []
    for name, path in folders:
        files = tuple(sorted((path / language / "LC_MESSAGES").glob("*.po")))
        if files:
            catalogs.append(Catalog(name, files))
    if not catalogs:
        raise DataError(f"data: no catalogs; name installed packages in data.packages ({EXTRAS}) or data.locale_dirs")
    return catalogs


@dataclass
class CatalogSplit:
    """Pairs per split, the catalogs behind each, and what was left out."""

    splits: dict[str, Pairs]
    catalogs: dict[str, list[str]]
    duplicates: dict[str, int]  # held-out pairs left out because their key is in an earlier split (or repeats)

    def summary(self) -> str:
        parts = [f"{name} {len(self.splits[name])} pairs ({len(self.catalogs[name])} catalogs)" for name in self.splits]
        dropped = ", ".join(f"{n} {name}" for name, n in self.duplicates.items() if n)
        return "; ".join(parts) + (f"; near-duplicates left out: {dropped}" if dropped else "")


def split_catalogs(
    catalogs: Sequence[tuple[str, Pairs]], val_fraction: float, test_fraction: float, seed: int
) -> CatalogSplit:
    """Whole catalogs to each split: in a seeded order, a catalog goes to test while test holds fewer than its share
    of the pairs, then to val likewise, else to train; a catalog that would take a held-out split past 1.5 times
    its share trains instead (so one big app does not become the test set). Then each held-out split keeps one pair
    per near-duplicate key, and none whose key is in train (or, for test, in val); train keeps each distinct pair
    once."""
    total = sum(len(pairs) for _, pairs in catalogs)
    order = sorted(catalogs, key=lambda c: c[0])
    random.Random(seed).shuffle(order)
    share = {"test": test_fraction * total, "val": val_fraction * total}
    taken: dict[str, list[tuple[str, Pairs]]] = {"train": [], "val": [], "test": []}
    for name, pairs in order:
        for split in ("test", "val"):
            size = sum(len(p) for _, p in taken[split])
            if size < share[split] and size + len(pairs) <= 1.5 * share[split]:
                taken[split].append((name, pairs))
                break
        else:
            taken["train"].append((name, pairs))
    splits: dict[str, Pairs] = {}
    seen: set[str] = set()
    duplicates = {"train": 0, "val": 0, "test": 0}
    for split in ("train", "val", "test"):
        kept: Pairs = []
        if split == "train":
            kept = list(dict.fromkeys(pair for _, pairs in taken[split] for pair in pairs))
            duplicates[split] = sum(len(p) for _, p in taken[split]) - len(kept)
            seen |= {near_key(s) for s, _ in kept}
        else:
            keys = set()
            for _, pairs in taken[split]:
                for source, target in pairs:
                    key = near_key(source)
                    if key in seen or key in keys:
                        duplicates[split] += 1
                    else:
                        keys.add(key)
                        kept.append((source, target))
            seen |= keys
        splits[split] = kept
    return CatalogSplit(splits, {k: [name for name, _ in v] for k, v in taken.items()}, duplicates)
