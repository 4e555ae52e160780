"""Reading parallel data a user points to: TSV/CSV, two aligned text files, or gettext ``.po`` files."""

from __future__ import annotations

from pathlib import Path
from typing import Union

from eeap.data import demo_import, read_rows, read_text
from eeap.errors import DataError

Pairs = list[tuple[str, str]]


def read_pairs(spec: Union[str, dict], where: str, on_bad_line: str = "error") -> Pairs:
    """Pairs from ``file.tsv`` / ``file.csv`` (source, target columns), ``file.po`` (msgid → msgstr, translated
    and not fuzzy), or ``{source: a.txt, target: b.txt}`` (aligned lines). Lines that are not UTF-8 or do not have
    two columns stop with one line naming the file and the line, or, with ``on_bad_line="skip"``, are left out
    and reported."""
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
    return [(row[0], row[1]) for _, row in read_rows(path, where, 2, on_bad_line, exact=True)]


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
