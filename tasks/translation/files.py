"""Reading parallel data a user points to: TSV/CSV, two aligned text files, or gettext ``.po`` files."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterator, Union

from eeap.data.base import BadLines, demo_import, read_rows
from eeap.errors import DataError

Pairs = list[tuple[str, str]]


def read_pairs(spec: Union[str, dict], where: str, on_bad_line: str = "error") -> Pairs:
    """Pairs from ``file.tsv`` / ``file.csv`` (source, target columns), ``file.po`` (msgid → msgstr, translated
    and not fuzzy), or ``{source: a.txt, target: b.txt}`` (aligned lines). Lines that are not UTF-8 or do not have
    two columns stop with one line naming the file and the line, or, with ``on_bad_line="skip"``, are left out
    and reported."""
    if not isinstance(spec, dict) and existing(spec, where).suffix.lower() == ".po":
        return read_po(Path(spec), where)
    return [(source, target) for _, source, target in stream_pairs(spec, where, on_bad_line)]


def stream_pairs(spec: Union[str, dict], where: str, on_bad_line: str = "error") -> Iterator[tuple[int, str, str]]:
    """(line number, source, target) of a TSV/CSV file or two aligned text files, read as they stream past (memory
    independent of the files' size); what ``read_pairs`` reads, less ``.po`` files (read whole)."""
    if isinstance(spec, dict):
        yield from aligned_pairs(spec, where, on_bad_line)
        return
    path = existing(spec, where)
    if path.suffix.lower() not in (".tsv", ".csv", ".txt"):
        raise DataError(f"{where}: {path} has an unknown format; use .tsv, .csv, .po or {{source: .., target: ..}}")
    for number, row in read_rows(path, where, 2, on_bad_line, exact=True):
        yield number, row[0], row[1]


def aligned_pairs(spec: dict, where: str, on_bad_line: str = "error") -> Iterator[tuple[int, str, str]]:
    """(line number, source, target) of two aligned text files (line n of one translates line n of the other), read
    as they stream past. A line ends at a newline (a carriage return before it is dropped; no other character breaks
    a line, so the files stay aligned). A line that is not UTF-8 in either file is a bad line of that file (with
    ``skip`` its pair is left out); files of different line counts stop with one line, read to their ends first."""
    if set(spec) != {"source", "target"}:
        raise DataError(f"{where}: give a file path, or {{source: PATH, target: PATH}}; got keys {sorted(spec)}")
    paths = {side: existing(spec[side], f"{where}.{side}") for side in ("source", "target")}
    bad = {side: BadLines(path, f"{where}.{side}", on_bad_line) for side, path in paths.items()}
    counts = {"source": 0, "target": 0}
    try:
        with open(paths["source"], "rb") as source, open(paths["target"], "rb") as target:
            for number, raws in enumerate(itertools.zip_longest(source, target), 1):
                counts["source"] += raws[0] is not None
                counts["target"] += raws[1] is not None
                if None in raws:
                    continue  # one file is longer: counted to its end, then refused below
                texts = []
                for side, raw in zip(("source", "target"), raws):
                    try:
                        texts.append(raw.decode("utf-8").rstrip("\r\n"))
                    except UnicodeDecodeError as e:
                        bad[side](number, f"is not UTF-8 text (bytes {raw[e.start : e.end]!r}); save it as UTF-8")
                if len(texts) == 2:
                    yield number, texts[0], texts[1]
        if counts["source"] != counts["target"]:
            raise DataError(
                f"{where}: {spec['source']} has {counts['source']} lines but {spec['target']} has {counts['target']}"
            )
    finally:
        for lines in bad.values():
            lines.report()


def existing(path: str, where: str) -> Path:
    """The path, checked to be a file."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{where}: file not found: {path}")
    return p


def read_po(path: Path, where: str) -> Pairs:
    polib = demo_import("polib", f"{where}: reading .po files")

    try:
        catalog = polib.pofile(str(path))
    except (OSError, ValueError) as e:
        raise DataError(f"{where}: {path} is not a readable .po file ({e})") from None
    return [(entry.msgid, entry.msgstr) for entry in catalog.translated_entries() if not entry.obsolete]
