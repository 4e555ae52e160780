"""Shared pieces of every task's data: the data role and its one contract, image reading, and data loaders whose
order and seeds survive a resume."""

from __future__ import annotations

import abc
import csv
import json
import os
import shutil
import signal
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from eeap.config.registry import NonNegativeInt, PositiveInt, Role
from eeap.data.images import IMAGE_SUFFIXES
from eeap.data.info import DataInfo
from eeap.data.prepared import DecodedOnRead as DecodedOnRead
from eeap.errors import DataError
from eeap.paths import decode_text


def ignore_interrupts(worker_id: int) -> None:
    """A DataLoader worker's ``worker_init_fn``: Ctrl-C reaches every process of the terminal's group, and a worker
    that died of it would fail the main process's next batch; the main process stops the run and the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def is_texts(value: Any) -> bool:
    """A list or tuple of strings (a batch's raw texts), which stays where it is when the batch moves."""
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, str) for v in value)


class DataModule(L.LightningDataModule, Role):
    """The data role, one contract for every task's data: ``make_splits()`` makes the train, val and test splits
    (lists of examples) and the info object the model is built from; ``prepare()`` calls it once; the loaders batch
    the splits with ``collate`` (training batches bucketed by ``lengths`` where a family gives them).

    # Parameters
    seed: supplied from the run's seed.
    batch_size, eval_batch_size: examples per training / evaluation batch.
    num_workers: DataLoader worker processes.
    """

    registry_kind = "data"
    role_name = "data source"
    supplied = ("seed",)
    info_class: type[DataInfo]

    def __init__(
        self,
        seed: int,
        batch_size: PositiveInt = 64,
        eval_batch_size: PositiveInt = 256,
        num_workers: NonNegativeInt = 0,
    ) -> None:
        super().__init__()
        self.seed, self.batch_size, self.eval_batch_size, self.num_workers = (
            seed,
            batch_size,
            eval_batch_size,
            num_workers,
        )
        self.splits: dict[str, Sequence] = {}
        self._info: Optional[DataInfo] = None

    @abc.abstractmethod
    def make_splits(self) -> tuple[Mapping[str, Sequence], DataInfo]:
        """``({"train": [...], "val": [...], "test": [...]}, info)``: the examples of each split, ready to collate."""

    cache_settings: Optional[dict] = None  # the data section as built (set by the run): part of a cache's key
    prepared_here = False  # whether the last prepare() made the splits (not read them from a cache)

    def data_files(self) -> list[Path]:
        """The files the splits are made from; a module that names some and whose ``cache_dir()`` is not None keeps
        what it prepares in a cache (``eeap.data.prepared``). None (the default): generated data, made in memory."""
        return []

    def cache_dir(self) -> Optional[str]:
        """Where prepared data is cached (``eeap.data.prepared.cache_root``); None: not cached (the default)."""
        return None

    def prepare(self) -> None:
        """Make the splits and the info (once; a second call does nothing): from a cache where the module keeps
        one, else with ``make_splits``."""
        if self._info is not None:
            return
        folder = self.cache_dir()
        splits: Mapping[str, Sequence]
        if folder is not None and self.cache_settings is not None and self.data_files():
            from eeap.data.prepared import cache_root, load_or_prepare

            splits, info, self.prepared_here = load_or_prepare(self, self.cache_settings, cache_root(folder))
        else:
            splits, info = self.make_splits()
            self.prepared_here = True
        for name in ("train", "val", "test"):
            if not splits.get(name):
                raise DataError(f"data: the {name} split is empty")
        self.splits, self._info = dict(splits), info

    def info(self) -> Any:
        """The data's info (after ``prepare``)."""
        if self._info is None:
            raise RuntimeError("call prepare() before info()")
        return self._info

    @abc.abstractmethod
    def collate(self, examples: list) -> dict:
        """A batch (a dict of tensors and lists of texts) from a list of examples."""

    def train_collate(self, examples: list) -> dict:
        """A training batch; ``collate`` by default."""
        return self.collate(examples)

    def augment(self, example: Any, generator: torch.Generator) -> Any:
        """A training example with its random augmentation (flips, crops, ...), drawn from ``generator`` only: it is
        seeded by the run's seed, the epoch and the example's index, so an example gets the same draw in the same
        epoch in any worker process and after a resume. None (the default): no augmentation."""
        return None

    def lengths(self, split: str) -> Optional[Union[Sequence[int], np.ndarray]]:
        """Each example's length, to batch training examples of similar length together; None: plain shuffle."""
        return None

    def train_dataloader(self) -> DataLoader:
        augments = type(self).augment is not DataModule.augment
        return make_loader(
            self.splits["train"],
            self.batch_size,
            self.train_collate,
            self.seed,
            True,
            self.num_workers,
            self.lengths("train"),
            self.trainer,
            self.augment if augments else None,
        )

    def val_dataloader(self) -> DataLoader:
        return make_loader(self.splits["val"], self.eval_batch_size, self.collate, self.seed, False, self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return make_loader(self.splits["test"], self.eval_batch_size, self.collate, self.seed, False, self.num_workers)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Move a dict batch's tensors to ``device`` and leave its lists of texts alone: Lightning's own transfer
        walks every string of every list, which costs more than the move itself on a small model's step."""
        if not isinstance(batch, dict):
            return super().transfer_batch_to_device(batch, device, dataloader_idx)
        move = super().transfer_batch_to_device
        return {key: value if is_texts(value) else move(value, device, dataloader_idx) for key, value in batch.items()}


class CachedFiles:
    """A data source of the user's files that keeps its prepared splits in a cache (``eeap.data.prepared``) and reuses
    them on the next run and on every rank, until a file or a setting changes; it names the files the cache is
    keyed by (``data_files``). Put it before the task's data class: ``class ImageFolderData(CachedFiles,
    ClassificationData)``.

    # Parameters
    cache: keep the prepared data (tokenizers trained, texts encoded, images decoded and resized) for the runs that
        follow (``eeap prepare CONFIG`` prepares it ahead of time).
    cache_dir: where (default ``$EEAP_CACHE`` or ``~/.cache/eeap/prepared``).
    """

    def __init__(self, *args: Any, cache: bool = True, cache_dir: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cache, self.cache_folder = cache, cache_dir

    def cache_dir(self) -> Optional[str]:
        """``data.cache_dir`` (``""``: the default folder), or None with ``data.cache=false``."""
        return (self.cache_folder or "") if self.cache else None


def folder_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder`` (none if it is not a folder), sorted."""
    if not folder.is_dir():
        return []
    return sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)


def read_text(path: Path, where: str) -> str:
    """A text file's contents; bytes that are not UTF-8 stop with one line naming the file, the line and the bytes."""
    return decode_text(Path(path).read_bytes(), str(path), where)


class BadLines:
    """The lines of a data file that ``data.on_bad_line`` refuses (``error``: the first stops the run in one line
    naming the file and the line) or leaves out (``skip``: counted, and the first few shown in one warning).

    # Parameters
    path: the file; where: its config key; mode: ``error`` or ``skip``.
    """

    SHOWN = 3

    def __init__(self, path: Path, where: str, mode: str) -> None:
        self.path, self.where, self.mode = path, where, mode
        self.count, self.first = 0, []  # type: int, list[str]

    def __call__(self, line: int, problem: str) -> None:
        message = f"{self.path} line {line} {problem}"
        if self.mode == "error":
            raise DataError(f"{self.where}: {message} (data.on_bad_line=skip leaves such lines out)")
        self.count += 1
        if len(self.first) < self.SHOWN:
            self.first.append(message)

    def report(self) -> None:
        if self.count:
            more = f"; {self.count - len(self.first)} more" if self.count > len(self.first) else ""
            warnings.warn(
                f"{self.where}: left out {self.count} bad lines of {self.path}: {'; '.join(self.first)}{more}",
                stacklevel=2,
            )


def read_rows(
    path: Path, where: str, columns: int, on_bad_line: str = "error", header: bool = False, exact: bool = False
) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each row of a TSV or CSV file, read as it streams past (memory independent of the
    file's size). TSV: one row per line, split at tabs, quotes taken literally (as corpora are written); CSV:
    Python's csv dialect (quoted fields may span lines). Blank lines are passed over; a line that is not UTF-8
    or has fewer than ``columns`` fields (another number, if ``exact``) is a bad line (``BadLines``: stop, or leave it
    out and report it)."""
    path = Path(path)
    tsv = path.suffix.lower() != ".csv"
    bad = BadLines(path, where, on_bad_line)
    state = {"line": 0}

    def lines() -> Iterator[str]:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, 1):
                state["line"] = number
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    bad(number, f"is not UTF-8 text (bytes {raw[e.start : e.end]!r}); save it as UTF-8")

    try:
        if tsv:
            rows: Iterator[list[str]] = (line.rstrip("\r\n").split("\t") for line in lines())
        else:
            rows = csv.reader(lines())
        first = True
        for row in rows:
            number = state["line"]
            if not row or not "".join(row).strip():
                continue
            if first and header:
                first = False
                continue
            first = False
            if len(row) < columns or (exact and len(row) != columns):
                shown = row[0][:40] + ("..." if len(row[0]) > 40 else "") if row else ""
                bad(number, f"has {len(row)} column{'s' * (len(row) != 1)} ({shown!r}), expected {columns}")
                continue
            yield number, row
    except csv.Error as e:
        raise DataError(f"{where}: {path} line {state['line']} is not valid CSV ({e})") from None
    finally:
        bad.report()


def demo_import(module: str, needed_for: str) -> Any:
    """Import a package of the ``demos`` extra (the demo data generators' packages); missing, it stops with one line
    naming the extra. ``needed_for``: what needs it, e.g. "the 'dates' data"."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(
            f"{needed_for} needs the package '{module.split('.')[0]}', which comes with EEAP's demo data "
            "extra: pip install 'eeap[demos]'"
        ) from None


def write_generated(root: Path, marker_name: str, settings: dict, what: str, write: Callable[[Path], None]) -> None:
    """A generated data set made in ``root`` once: ``write(folder)`` fills a temporary folder beside it, which is
    renamed into place when complete, so ranks that start together, or a killed run, never leave half a folder.
    ``root/<marker_name>`` keeps the ``settings``; a folder already made with the same settings is kept, one made
    with others (or any other folder that is not empty) is refused in one line. ``what`` names the set in messages."""
    marker = root / marker_name
    if marker.is_file():
        if json.loads(marker.read_text()) == settings:
            return
        raise DataError(
            f"data.root: {root} holds {what} generated with other settings ({marker}); delete it or choose another root"
        )
    if root.exists() and any(root.iterdir()):
        raise DataError(f"data.root: {root} exists and is not a folder of generated {what}; choose another root")
    root.parent.mkdir(parents=True, exist_ok=True)
    temporary = root.with_name(f".{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    write(temporary)
    (temporary / marker_name).write_text(json.dumps(settings))
    try:
        os.rename(temporary, root)
    except OSError:  # another process made it first
        shutil.rmtree(temporary, ignore_errors=True)
        if not marker.is_file():
            raise


class EpochShuffle(Sampler[int]):
    """Shuffles indices with a generator seeded by ``(seed, epoch)``; with ``lengths``, in length buckets.

    Lightning calls ``set_epoch`` at the start of each epoch, so a resumed run sees the same order as an unbroken one.
    Bucketing: the shuffled indices are cut into pools of 50 batches, each pool sorted by length and cut into
    batches, and the batches shuffled; batches then hold examples of similar length and carry little padding. Only
    the last batch may be short, and it stays last, so the DataLoader's own batching keeps these batches whole.

    # Parameters
    size: number of examples.
    seed: the run's seed.
    lengths: each example's length, to bucket by (None: plain shuffle).
    batch_size: the DataLoader's batch size (with ``lengths``).
    """

    def __init__(
        self, size: int, seed: int, lengths: Optional[Union[Sequence[int], np.ndarray]] = None, batch_size: int = 1
    ) -> None:
        self.size, self.seed, self.lengths, self.batch_size = size, seed, lengths, batch_size
        self.epoch = 0
        self.resume_at: Optional[tuple[int, int]] = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume(self, epoch: int, done: int) -> None:
        """The next pass, if it is over ``epoch``, leaves out its first ``done`` indices: those a run trained on
        before it stopped mid-epoch."""
        self.resume_at = (epoch, done)

    def __iter__(self) -> Iterator[int]:
        order = self.share(self.order())
        if self.resume_at is not None:
            epoch, done = self.resume_at
            self.resume_at = None
            if epoch == self.epoch:
                order = order[done:]
        return map(int, order)

    def share(self, order: np.ndarray) -> np.ndarray:
        """What this process draws of the epoch's order: all of it (``RankShuffle``: its rank's share)."""
        return order

    def order(self) -> np.ndarray:
        """This epoch's indices in the order they are drawn: one int32 array (no Python object per example, so a
        corpus of millions costs tens of MB here, for the time it is drawn)."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator, dtype=torch.int32).numpy()  # (size,)
        if self.lengths is None:
            return order
        lengths = np.asarray(self.lengths)
        pool = self.batch_size * 50
        for start in range(0, self.size, pool):  # each pool by length; a stable sort: ties keep the shuffle
            chunk = order[start : start + pool]
            chunk[:] = chunk[np.argsort(lengths[chunk], kind="stable")]
        whole = self.size // self.batch_size  # pools are whole batches, so batches never straddle two
        drawn = np.empty_like(order)
        batches = order[: whole * self.batch_size].reshape(whole, self.batch_size)  # (batches, batch_size)
        shuffled = torch.randperm(whole, generator=generator).numpy()
        np.take(batches, shuffled, axis=0, out=drawn[: whole * self.batch_size].reshape(whole, self.batch_size))
        drawn[whole * self.batch_size :] = order[whole * self.batch_size :]  # the short batch, if any, stays last
        return drawn

    def __len__(self) -> int:
        return self.size


class RankShuffle(EpochShuffle, DistributedSampler):
    """``EpochShuffle`` for one of ``ranks`` DDP processes: the epoch's order (the same on every rank), padded to a
    multiple of ``ranks`` by repeating its start, and every ``ranks``-th index from ``rank`` on: the share that
    Lightning's ``DistributedSamplerWrapper`` gives a rank, drawn from arrays where the wrapper builds Python lists
    of the whole order (hundreds of MB per rank at millions of examples). Being a ``DistributedSampler``, Lightning
    uses it as it is."""

    def __init__(
        self,
        size: int,
        seed: int,
        lengths: Optional[Union[Sequence[int], np.ndarray]],
        batch_size: int,
        ranks: int,
        rank: int,
    ) -> None:
        EpochShuffle.__init__(self, size, seed, lengths, batch_size)
        self.num_replicas, self.rank, self.shuffle, self.drop_last = ranks, rank, True, False
        self.num_samples = -(-size // ranks)  # per rank
        self.total_size = self.num_samples * ranks

    def share(self, order: np.ndarray) -> np.ndarray:
        return np.resize(order, self.total_size)[self.rank :: self.num_replicas]  # np.resize repeats from the start

    def __len__(self) -> int:
        return self.num_samples


class Augmented(Dataset):
    """A training split whose examples pass through ``augment(example, generator)`` as they are drawn; the generator
    is seeded by (seed, epoch, index), the epoch read from the split's ``EpochShuffle`` (which Lightning sets, under
    DDP too). Draws do not depend on the global random state, the worker, or what a prefetching loader drew before a
    checkpoint, so a run resumed from any checkpoint sees the same augmented examples as an unbroken one."""

    def __init__(self, examples: Sequence, augment: Callable[[Any, torch.Generator], Any], seed: int, sampler: Any):
        self.examples, self.augment, self.seed, self.sampler = examples, augment, seed, sampler

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> Any:
        epoch = self.sampler.epoch if self.sampler is not None else 0
        generator = torch.Generator().manual_seed(hash((self.seed, epoch, index)) & (2**63 - 1))
        return self.augment(self.examples[index], generator)


def make_loader(
    data: Sequence,
    batch_size: int,
    collate_fn: Callable,
    seed: int,
    shuffle: bool = False,
    num_workers: int = 0,
    lengths: Optional[Union[Sequence[int], np.ndarray]] = None,
    trainer: Any = None,
    augment: Optional[Callable[[Any, torch.Generator], Any]] = None,
) -> DataLoader:
    """A DataLoader that never draws from the global random state (its own generator seeds workers), shuffled by
    ``EpochShuffle`` when asked (bucketed by ``lengths`` if given); together they make runs resume exactly.

    ``trainer``: for a training loader, the Lightning trainer; when it resumes from a checkpoint written mid-epoch
    (validation more than once an epoch), the loader skips the batches that run had trained on, so the resumed run
    sees what an unbroken one would; under DDP each rank draws its own share (``RankShuffle``) and skips its part.

    ``augment``: ``DataModule.augment``, applied to each example as it is drawn (``Augmented``).
    """
    sampler: Optional[EpochShuffle] = None
    if shuffle and trainer is not None and trainer.world_size > 1:
        sampler = RankShuffle(len(data), seed, lengths, batch_size, trainer.world_size, trainer.global_rank)
    elif shuffle:
        sampler = EpochShuffle(len(data), seed, lengths, batch_size)
    dataset: Any = Augmented(data, augment, seed, sampler) if augment is not None else data
    if sampler is not None and trainer is not None:
        # Lightning makes the first iterator before it sets the epoch; with worker processes the iterator draws its
        # order at once, so a resumed run would draw epoch 0's order
        sampler.set_epoch(trainer.current_epoch)
    if sampler is not None and trainer is not None and trainer.fit_loop.restarting:
        done = trainer.fit_loop.epoch_loop.batch_progress.current.completed  # batches this rank trained that epoch
        if 0 < done < -(-len(sampler) // batch_size):
            sampler.resume(trainer.current_epoch, done * batch_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
        worker_init_fn=ignore_interrupts if num_workers else None,  # the main process stops the run on Ctrl-C
    )
