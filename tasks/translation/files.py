"""Reading parallel data a user points to: TSV/CSV, two aligned text files, or gettext ``.po`` files."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Union

from eeap.data import demo_import, read_text
from eeap.errors import DataError

Pairs = list[tuple[str, str]]


def read_pairs(spec: Union[str, dict], where: str) -> Pairs:
    """Pairs from ``file.tsv`` / ``file.csv`` (source, target columns), ``file.po`` (msgid → msgstr, translated
    and not fuzzy), or ``{source: a.txt, target: b.txt}`` (aligned lines)."""
    if isinstance(spec, dict):
        if set(spec) != {"source", "target"}:
            raise DataError(f"{where}: give a file path, or {{source: PATH, target: PATH}}; got keys {sorted(spec)}")
        source = read_lines(spec["source"], f"{where}.source")
        target = read_lines(spec["target"], f"{where}.target")
        if len(source) != len(target):
            raise DataError(f"{where}: {spec['source']} has {len(source)} lines but {spec['target']} has {len(target)}")
        return list(zip(source, target))
    path = existing(spec, where)
    suffix = path.suffix.lower()
    if suffix == ".po":
        return read_po(path, where)
    if suffix not in (".tsv", ".csv", ".txt"):
        raise DataError(f"{where}: {path} has an unknown format; use .tsv, .csv, .po or {{source: .., target: ..}}")
    delimiter = "," if suffix == ".csv" else "\t"
    pairs = []
    with io.StringIO(read_text(path, where), newline="") as f:
        for number, row in enumerate(csv.reader(f, delimiter=delimiter), 1):
            if not row:
                continue
            if len(row) != 2:
                raise DataError(f"{where}: {path} line {number} has {len(row)} columns, expected 2 (source, target)")
            pairs.append((row[0], row[1]))
    return pairs


def existing(path: str, where: str) -> Path:
    """The path, checked to be a file."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{where}: file not found: {path}")
    return p


def read_lines(path: str, where: str) -> list[str]:
    return read_text(existing(path, where), where).splitlines()


def read_po(path: Path, where: str) -> Pairs:
    polib = demo_import("polib", f"{where}: reading .po files")

    try:
        catalog = polib.pofile(str(path))
    except (OSError, ValueError) as e:
        raise DataError(f"{where}: {path} is not a readable .po file ({e})") from None
    return [(entry.msgid, entry.msgstr) for entry in catalog.translated_entries() if not entry.obsolete]
