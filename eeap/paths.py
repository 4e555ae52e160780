"""Checks of where a command will write, made before it works, so it never fails at the end with its work lost."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from eeap.errors import ConfigError, DataError


def writable_folder(folder: Path, key: str, shown: Path | None = None) -> Path:
    """Refuse a folder that cannot be made or written in: a file in its place or above it, or no permission. The
    folder itself is made later, by whoever writes in it. ``key`` names the setting, e.g. ``run_dir``; ``shown`` is
    the path the user gave, when it is a file in this folder."""
    folder = Path(folder)
    shown = shown or folder
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing == folder == shown and not folder.is_dir():
        raise ConfigError(f"{key} {shown}: a file is in the way; give a folder")
    if not existing.is_dir():
        raise ConfigError(f"{key} {shown}: {existing} is a file, not a folder; give another {key}")
    try:  # a real try: os.access says yes to root even on a read-only file system
        os.rmdir(tempfile.mkdtemp(prefix=".eeap-probe-", dir=existing))
    except OSError as e:
        raise ConfigError(f"{key} {shown}: cannot write in {existing} ({e.strerror}); give another {key}") from None
    return folder


def writable_file(path: Path, key: str) -> Path:
    """Refuse a file path that cannot be written: a folder in its place, a file in place of a folder above it, no
    permission. Its folder is made when the file is written (``write_atomically``)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{key} {path}: is a folder; give a file path")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{key} {path}: cannot write it (permission denied); give another {key}")
    writable_folder(path.parent, key, shown=path)
    return path


def write_atomically(path: Path, text: str) -> None:
    """Write text to a file through a temporary file beside it and a rename: a failure midway (a full disk, a
    signal) leaves the previous file as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def decode_text(data: bytes, name: str, where: str, first_line: int = 1) -> str:
    """UTF-8 bytes as text; other bytes stop with one line naming their source (``name``), line and bytes.
    ``first_line``: the number of the first line in ``data`` (for text read in parts)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = first_line + data[: e.start].count(b"\n")
        raise DataError(
            f"{where}: {name} line {line} is not UTF-8 text (bytes {data[e.start : e.end]!r}); save it as UTF-8"
        ) from None
