"""Prepare once, reuse: a data module's expensive work (tokenizer training, encoding) cached on disk.

A data module that reads files (``DataModule.data_files``) and whose examples are flat records (``cacheable``)
keeps what ``make_splits`` made in a folder keyed by the files' identity (path, size, modification time) and
every setting that changes the result (the data section as built, less batch sizes and workers): the info
(``info.pt``, the vocabularies) and each split as a Hugging Face ``datasets`` Arrow table, read back memory-mapped,
so a second run's memory does not grow with the corpus. The next run, every DDP rank and ``eeap prepare CONFIG``
(ahead of a multi-node job) reuse it; a changed file or setting is another key, so another folder.

A module that can (``write_prepared``: the parallel translation data's TSV/CSV train file) prepares straight into
the folder as its files stream past, so the first run's memory does not grow with the corpus either; others make
their splits in memory (``make_splits``) and the cache writes them.

Ranks that start together take a file lock: one prepares, the others wait and read what it wrote. A folder is
written under a temporary name and renamed into place when complete, so a killed preparation leaves no half cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Optional

FORMAT = 1  # bump when what a cache holds changes
NOT_SETTINGS = ("batch_size", "eval_batch_size", "num_workers", "cache", "cache_dir", "type")


def cache_root(configured: Optional[str]) -> Path:
    """``data.cache_dir``, else ``$EEAP_CACHE``, else ``~/.cache/eeap/prepared``."""
    if configured:
        return Path(configured).expanduser()
    if os.environ.get("EEAP_CACHE"):
        return Path(os.environ["EEAP_CACHE"]).expanduser()
    return Path.home() / ".cache" / "eeap" / "prepared"


def file_identity(path: Path) -> list:
    """What tells a file's contents apart without reading them: its absolute path, size and modification time."""
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def cache_key(kind: str, settings: dict, files: list[Path], seed: int) -> str:
    from eeap import __version__

    identity = {
        "format": FORMAT,
        "eeap": __version__,
        "type": kind,
        "seed": seed,
        "settings": {k: v for k, v in sorted(settings.items()) if k not in NOT_SETTINGS},
        "files": [file_identity(p) for p in files],
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:20]


def column_lengths(split: Any, column: str) -> list[int]:
    """The length of each example's ``column`` (a list): read from the Arrow column of a cached split at once."""
    if hasattr(split, "data") and hasattr(split.data, "column"):
        import pyarrow.compute as pc

        return pc.list_value_length(split.data.column(column)).to_pylist()
    return [len(example[column]) for example in split]


def load_or_prepare(module: Any, settings: dict, root: Path) -> tuple[dict, Any, bool]:
    """``(splits, info, prepared_here)``: the module's splits and info from its cache folder, preparing them there
    first if no complete folder exists (one process at a time)."""
    from filelock import FileLock

    from eeap.paths import writable_folder

    writable_folder(root, "data.cache_dir")
    key = cache_key(module.registered_name, settings, module.data_files(), module.seed)
    folder = root / f"{module.registered_name}-{key}"
    with FileLock(str(folder) + ".lock"):
        if not (folder / "manifest.json").is_file():
            if stream(folder, module, settings):  # prepared into the folder as the files stream past
                return (*read(folder, module), True)
            splits, info = module.make_splits()
            write(folder, module, splits, info, settings)
            return splits, info, True
    return (*read(folder, module), False)


def stream(folder: Path, module: Any, settings: dict) -> bool:
    """A module that can prepare straight into a folder (``write_prepared``, streaming its files) does so under a
    temporary name, then the folder is completed and renamed into place; False if it cannot."""
    if not hasattr(module, "write_prepared"):
        return False
    temporary = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    try:
        if not module.write_prepared(temporary):
            return False
        counts = {name: len(split) for name, split in read(temporary, module)[0].items()}
        finish(temporary, folder, module, settings, counts)
        return True
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def finish(temporary: Path, folder: Path, module: Any, settings: dict, counts: dict) -> None:
    """Write the manifest last and rename the complete folder into place."""
    manifest = {
        "type": module.registered_name,
        "settings": settings,
        "files": [file_identity(p) for p in module.data_files()],
        "examples": counts,
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    (temporary / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)  # an incomplete folder of an older format
    os.rename(temporary, folder)


def write(folder: Path, module: Any, splits: dict, info: Any, settings: dict) -> None:
    """Write a complete cache folder: under a temporary name, renamed into place at the end."""
    import datasets
    import torch

    temporary = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    torch.save(info.state(), temporary / "info.pt")
    datasets.disable_progress_bars()
    for name, examples in splits.items():
        datasets.Dataset.from_list(list(examples)).save_to_disk(str(temporary / name))
    finish(temporary, folder, module, settings, {name: len(examples) for name, examples in splits.items()})


def read(folder: Path, module: Any) -> tuple[dict, Any]:
    """The splits (memory-mapped Arrow tables) and the info of a complete cache folder."""
    import datasets
    import torch

    from eeap.errors import DataError

    datasets.disable_progress_bars()
    try:
        info = module.info_class.from_state(torch.load(folder / "info.pt", weights_only=True))
        splits = {name: datasets.load_from_disk(str(folder / name)) for name in ("train", "val", "test")}
    except Exception as e:  # noqa: BLE001  (a damaged cache: one line saying how to rebuild it)
        raise DataError(
            f"data.cache_dir: {folder} is damaged ({type(e).__name__}); delete it to prepare again"
        ) from None
    return splits, info
