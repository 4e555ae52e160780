"""Prepare once, reuse: a data module's expensive work (tokenizer training, encoding, image decoding) cached on disk.

A data module that reads files (``DataModule.data_files``, ``eeap.data.base.CachedFiles``) keeps what ``make_splits``
made in a folder keyed by the files' identity (path, size, modification time) and every setting that changes the
result (the data section as built, less batch sizes and workers): the info (``info.pt``, the vocabularies) and each
split as an Arrow IPC file (``<split>.arrow``, record batches of ``ROWS_PER_BATCH`` rows or about ``BATCH_BYTES``;
examples that hold arrays, such as images, as records of ``to_record``). A split is read back as ``ArrowRows``: a row is read from its record batch with a plain file
read when the loader asks for it, not through a memory map, so a run's memory does not grow with the corpus (a memory
map's pages count in the process's resident memory as they are touched: a whole epoch maps the whole file). The next
run, every DDP rank and ``eeap prepare CONFIG`` (ahead of a multi-node job) reuse it; a changed file or setting is
another key, so another folder.

A module that can (``write_prepared``: the parallel translation data's TSV/CSV train file) prepares straight into
the folder as its files stream past, sorting each split on disk (``SortedRows``), so the first run's memory does not
grow with the corpus either; others make their splits in memory (``make_splits``, an image folder's as file names)
and the cache writes them, decoding each example once, and the run reads them back from the cache.

Ranks that start together take a file lock: one prepares, the others wait and read what it wrote. A folder is
written under a temporary name and renamed into place when complete, so a killed preparation leaves no half cache.
"""

from __future__ import annotations

import collections.abc
import hashlib
import itertools
import json
import os
import shutil
import time
import typing
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Union, overload

import numpy as np

FORMAT = 3  # bump when what a cache holds changes (3: examples of arrays as records, batches sized to their rows)
ROWS_PER_BATCH = 64  # rows per record batch at most: reading a random row reads its batch
BATCH_BYTES = 65_536  # and about this many bytes (an image's pixels are tens of KB: a few rows a batch)
KEPT_BYTES = 16 << 20  # a split file at most this big keeps the record batches it reads: it ends up held whole
NOT_SETTINGS = ("batch_size", "eval_batch_size", "num_workers", "cache", "cache_dir", "type")


class DecodedOnRead(collections.abc.Sequence):
    """A split of examples whose files are decoded when an example is read — by the loader, in its worker processes
    if any — and never held: ``load(item)`` makes the example from a stored item (file paths, labels, captions).
    A folder of any size takes the memory of its file names; ``items`` are the stored items, for what needs no
    pixels (lengths, names).

    # Parameters
    items: the stored items, one per example.
    load: a picklable function (a module-level function or a ``functools.partial`` of one) making an example.
    """

    def __init__(self, items: list, load: Callable[[Any], Any]) -> None:
        self.items, self.load = items, load

    def __len__(self) -> int:
        return len(self.items)

    @typing.overload
    def __getitem__(self, index: int) -> Any: ...

    @typing.overload
    def __getitem__(self, index: slice) -> DecodedOnRead: ...

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return DecodedOnRead(self.items[index], self.load)
        return self.load(self.items[index])


def stored(examples: Sequence) -> Sequence:
    """A split's examples as stored: a ``DecodedOnRead`` split's undecoded items, any other split itself."""
    return examples.items if isinstance(examples, DecodedOnRead) else examples


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
    from eeap.version import __version__

    identity = {
        "format": FORMAT,
        "eeap": __version__,
        "type": kind,
        "seed": seed,
        "settings": {k: v for k, v in sorted(settings.items()) if k not in NOT_SETTINGS},
        "files": [file_identity(p) for p in files],
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:20]


def column_lengths(split: Any, column: str) -> np.ndarray:
    """The length of each example's ``column`` (a list), as one int32 array: from a cached split, that column alone
    is read (``ArrowRows.column_lengths``); from a split decoded on read, its stored items (no file decoded)."""
    if isinstance(split, ArrowRows):
        return split.column_lengths(column)
    return np.fromiter((len(example[column]) for example in stored(split)), dtype=np.int32, count=len(split))


def nested_lengths(split: Any, column: str) -> np.ndarray:
    """The length of every inner list of each example's ``column`` (a list of lists), in order, as one int32 array:
    from a cached split that column alone is read (``ArrowRows.column_lengths(nested=True)``)."""
    if isinstance(split, ArrowRows):
        return split.column_lengths(column, nested=True)
    return np.fromiter((len(inner) for example in stored(split) for inner in example[column]), dtype=np.int32)


def to_record(example: Any) -> dict:
    """A flat record (an Arrow row) of an example that is a tuple or a dict of numpy arrays, numbers, strings and
    lists: each array becomes its bytes, shape and dtype; float pixels that are whole 255ths (what ``read_image``
    makes) and integers from 0 to 255 (a mask's classes) are kept as one byte each, and read back as the same
    values (``from_record``)."""
    fields = example.items() if isinstance(example, dict) else ((str(i), v) for i, v in enumerate(example))
    record: dict[str, Any] = {}
    for key, value in fields:
        if not isinstance(value, np.ndarray):
            record[key] = value
            continue
        data, as_bytes = value, False
        if value.dtype == np.float32:
            pixels = np.rint(value * 255).clip(0, 255).astype(np.uint8)  # (same shape)
            if np.array_equal(pixels.astype(np.float32) / 255.0, value):
                data, as_bytes = pixels, True
        elif value.dtype.kind in "iu" and (not value.size or 0 <= value.min() <= value.max() <= 255):
            data, as_bytes = value.astype(np.uint8), True  # class indices of a mask
        record[key] = np.ascontiguousarray(data).tobytes()
        record[f"{key}.shape"] = list(value.shape)
        record[f"{key}.dtype"] = value.dtype.str
        record[f"{key}.bytes"] = as_bytes
    return record


def from_record(record: dict, kind: str) -> Any:
    """The example ``to_record`` made ``record`` of: a ``tuple`` or a ``dict`` (``kind``)."""
    example = {}
    for key, value in record.items():
        if key.endswith((".shape", ".dtype", ".bytes")):
            continue
        if f"{key}.dtype" in record:
            dtype = np.dtype(record[f"{key}.dtype"])
            if record[f"{key}.bytes"]:
                stored = np.frombuffer(value, dtype=np.uint8)
                value = stored.astype(np.float32) / 255.0 if dtype.kind == "f" else stored.astype(dtype)
            else:
                value = np.frombuffer(value, dtype=dtype).copy()
            value = value.reshape(record[f"{key}.shape"])
        example[key] = value
    return tuple(example.values()) if kind == "tuple" else example


def record_kind(example: Any) -> Optional[str]:
    """``tuple`` or ``dict`` where an example must pass through ``to_record`` to be stored; None where it is a flat
    record already (a dict of numbers, strings and lists)."""
    if isinstance(example, tuple):
        return "tuple"
    if isinstance(example, dict) and any(isinstance(v, np.ndarray) for v in example.values()):
        return "dict"
    return None


class ArrowRows(Sequence):
    """One prepared split: an Arrow IPC file whose rows are read when asked for, each from its record batch with a
    plain file read (``pyarrow.OSFile``), not a memory map. A process holds the batches it is reading, whatever the
    file's size; the file's pages stay in the kernel's page cache, shared by every process (and rank) on the machine.
    Worker processes (and pickling) reopen the file. A split whose file is at most ``KEPT_BYTES`` keeps the record
    batches it reads, so it is read from the file once; a larger one keeps none (drawn at random, a batch is rarely
    read twice before the epoch ends). A split of examples stored through ``to_record`` (images) gives them back as
    they were (``from_record``)."""

    def __init__(self, path: Union[str, Path]) -> None:
        import pyarrow as pa

        self.path = Path(path)
        self.reader = pa.ipc.open_file(pa.OSFile(str(self.path)))
        count = self.reader.num_record_batches
        metadata = self.reader.schema.metadata or {}
        self.rows_per_batch = int(metadata.get(b"eeap_rows_per_batch", ROWS_PER_BATCH))
        self.kind = metadata.get(b"eeap_example", b"").decode() or None
        self.keeps = self.path.stat().st_size <= KEPT_BYTES
        self.kept: dict[int, Any] = {}  # batch number -> record batch, where the split keeps them
        self.size = (count - 1) * self.rows_per_batch + self.reader.get_batch(count - 1).num_rows if count else 0

    def __reduce__(self) -> tuple:
        return ArrowRows, (str(self.path),)

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> dict: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict]: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[dict, list[dict]]:
        if isinstance(index, slice):
            return self.__getitems__(list(range(*index.indices(self.size))))
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        """The rows at ``indices`` (what a DataLoader asks for a batch): each a one-row slice of its record batch
        (no copy), the slices made Python records in one conversion."""
        import pyarrow as pa

        if not indices:
            return []
        rows = []
        for index in indices:
            row = int(index) + self.size if int(index) < 0 else int(index)
            if not 0 <= row < self.size:
                raise IndexError(f"row {index} of a split of {self.size}")
            rows.append(self.batch(row // self.rows_per_batch).slice(row % self.rows_per_batch, 1))
        records = pa.Table.from_batches(rows).to_pylist()
        return [from_record(r, self.kind) for r in records] if self.kind else records

    def batch(self, number: int) -> Any:
        """Record batch ``number``, read from the file (once, where the split keeps what it reads)."""
        if not self.keeps:
            return self.reader.get_batch(number)
        if number not in self.kept:
            self.kept[number] = self.reader.get_batch(number)
        return self.kept[number]

    def column_lengths(self, column: str, nested: bool = False) -> np.ndarray:
        """The length of ``column`` (a list column) in every row: only that column's buffers are read, and the
        lengths are the differences of its list offsets (no ``pyarrow.compute``, which imports pandas: ~40 MB).
        ``nested``: the column holds lists of lists; the lengths of the inner lists, row after row."""
        import pyarrow as pa

        field = self.reader.schema.get_field_index(column)
        options = pa.ipc.IpcReadOptions(included_fields=[field])
        reader = pa.ipc.open_file(pa.OSFile(str(self.path)), options=options)
        parts = []
        for number in range(reader.num_record_batches):
            lists = reader.get_batch(number).column(0)
            starts = integers((lists.flatten() if nested else lists).offsets)  # (lists + 1,) where each list starts
            parts.append(np.diff(starts).astype(np.int32))  # (rows,)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def write_rows(path: Path, rows: Iterable[Any], kind: Optional[str] = None) -> int:
    """Write a split to an Arrow IPC file in record batches of the same number of rows (the last may be short), so
    that a row's batch is its index over that: ``ROWS_PER_BATCH``, or fewer where rows are large (about
    ``BATCH_BYTES`` a batch, from the first rows' size). ``rows`` are flat records (dicts) or ``pyarrow`` tables,
    the column types from the first; ``kind``: they are records ``to_record`` made of ``tuple`` or ``dict``
    examples. Returns the number of rows."""
    import pyarrow as pa

    writer: Any = None
    schema: Any = None
    carry: Any = None  # rows short of a whole batch, written with the next ones
    pending: list[dict] = []
    count = 0
    size = ROWS_PER_BATCH

    def put(table: Any, last: bool = False) -> None:
        nonlocal writer, schema, carry, size
        if writer is None:
            size = max(1, min(ROWS_PER_BATCH, BATCH_BYTES * max(1, table.num_rows) // max(1, table.nbytes)))
            metadata = {"eeap_rows_per_batch": str(size), **({"eeap_example": kind} if kind else {})}
            schema = table.schema.with_metadata(metadata)
            writer = pa.ipc.new_file(str(path), schema)
        table = table.cast(schema)
        table = (pa.concat_tables([carry, table]) if carry is not None else table).combine_chunks()
        whole = table.num_rows if last else table.num_rows // size * size
        for begin in range(0, whole, size):
            writer.write_batch(table.slice(begin, size).to_batches()[0])
        carry = table.slice(whole)

    try:
        for item in rows:
            if isinstance(item, pa.Table):
                count += item.num_rows
                put(item)
                continue
            pending.append(item)
            count += 1
            if len(pending) == ROWS_PER_BATCH:
                put(pa.Table.from_pylist(pending, schema=schema))
                pending.clear()
        if pending or carry is not None:
            put(pa.Table.from_pylist(pending, schema=schema), last=True)
        if writer is None:  # no rows: an empty file of no columns
            writer = pa.ipc.new_file(str(path), pa.schema([], metadata={"eeap_rows_per_batch": str(ROWS_PER_BATCH)}))
    finally:
        if writer is not None:
            writer.close()
    return count


RUN_ROWS = 16_384  # rows sorted in memory at a time by ``SortedRows`` (a few tens of MB as Python records)
MERGE_ROWS = 256  # rows of each sorted run read at a time while merging


def integers(column: Any) -> np.ndarray:
    """An Arrow integer column without nulls (an array, or a table's chunked column) as a numpy array, read from
    its buffers (pyarrow's own conversion imports pandas)."""
    chunks = column.chunks if hasattr(column, "chunks") else [column]
    parts = [
        np.frombuffer(chunk.buffers()[1], dtype=f"int{chunk.type.bit_width}")[chunk.offset : chunk.offset + len(chunk)]
        for chunk in chunks
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class SortedRows:
    """Rows added in any order and read back in the order of an integer key, in memory that does not grow with
    their number: an external merge sort in Arrow. Every ``RUN_ROWS`` rows are sorted and written to a run file in
    ``folder``; ``tables()`` merges the runs, holding ``MERGE_ROWS`` rows of each.

    # Parameters
    folder: where the run files go (a temporary folder of the cache being written).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pending: list[dict] = []
        self.keys: list[int] = []
        self.runs: list[Path] = []
        self.schema: Any = None
        self.count = 0

    def add(self, key: int, row: dict) -> None:
        """Add a row (a flat record) under ``key``; keys should be unique (ties keep no particular order)."""
        self.pending.append(row)
        self.keys.append(key)
        self.count += 1
        if len(self.pending) == RUN_ROWS:
            self.spill()

    def spill(self) -> None:
        """Sort the pending rows by key and write them as one run."""
        import pyarrow as pa

        table = pa.Table.from_pylist(self.pending, schema=self.schema)
        self.schema = table.schema  # the first run's column types hold for every run
        keys = np.asarray(self.keys, dtype=np.int64)  # (rows,)
        order = np.argsort(keys, kind="stable")  # (rows,)
        table = table.take(order).append_column("_key", pa.array(keys[order]))
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"run-{len(self.runs):05d}.arrow"
        with pa.ipc.new_file(str(path), table.schema) as writer:
            writer.write_table(table, max_chunksize=MERGE_ROWS)
        self.runs.append(path)
        self.pending.clear()
        self.keys.clear()

    def tables(self) -> Iterator[Any]:
        """The rows in key order, as ``pyarrow`` tables (the key column left out). Each round takes, from every
        run's rows in memory, those at or below the smallest of the runs' largest keys in memory: no row still on
        disk can come before them."""
        import pyarrow as pa

        if self.pending:
            self.spill()
        readers = [pa.ipc.open_file(pa.OSFile(str(path))) for path in self.runs]
        heads = {run: (pa.Table.from_batches([reader.get_batch(0)]), 1) for run, reader in enumerate(readers)}
        while heads:
            bound = min(int(integers(table.column("_key"))[-1]) for table, _ in heads.values())
            parts = []
            for run, (table, following) in list(heads.items()):
                cut = int(np.searchsorted(integers(table.column("_key")), bound, side="right"))
                parts.append(table.slice(0, cut))
                if cut < table.num_rows:
                    heads[run] = (table.slice(cut), following)
                elif following < readers[run].num_record_batches:
                    heads[run] = (pa.Table.from_batches([readers[run].get_batch(following)]), following + 1)
                else:
                    del heads[run]
            merged = pa.concat_tables(parts)
            order = np.argsort(integers(merged.column("_key")), kind="stable")
            yield merged.take(order).drop_columns(["_key"])


def release_freed_memory() -> None:
    """Give the memory that a finished step freed (a tokenizer's training) back to the system, where the C library
    can (glibc's ``malloc_trim``): freed heap pages otherwise stay in the process's resident memory for the whole
    training run."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # not glibc (musl, macOS): nothing to do
        return


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
            return (*read(folder, module), True)  # what every later run reads: images decoded once, not per epoch
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
    import torch

    temporary = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    torch.save(info.state(), temporary / "info.pt")
    for name, examples in splits.items():
        remaining = iter(examples)  # each example made once (an image decoded once)
        first = next(remaining, None)
        kind = record_kind(first)
        rows = itertools.chain([first], remaining) if first is not None else []
        write_rows(temporary / f"{name}.arrow", (to_record(e) for e in rows) if kind else rows, kind)
    finish(temporary, folder, module, settings, {name: len(examples) for name, examples in splits.items()})


def read(folder: Path, module: Any) -> tuple[dict, Any]:
    """The splits (``ArrowRows``) and the info of a complete cache folder."""
    import torch

    from eeap.errors import DataError

    try:
        info = module.info_class.from_state(torch.load(folder / "info.pt", weights_only=True))
        splits = {name: ArrowRows(folder / f"{name}.arrow") for name in ("train", "val", "test")}
    except Exception as e:  # noqa: BLE001  (a damaged cache: one line saying how to rebuild it)
        raise DataError(
            f"data.cache_dir: {folder} is damaged ({type(e).__name__}); delete it to prepare again"
        ) from None
    return splits, info
