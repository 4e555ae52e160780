"""Shared pieces of every task's data: the data module base, and data loaders whose order and seeds survive a resume."""

from __future__ import annotations

from typing import Any, Callable, Iterator, Optional, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Sampler


def is_texts(value: Any) -> bool:
    """A list or tuple of strings (a batch's raw texts), which stays where it is when the batch moves."""
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, str) for v in value)


class DataModule(L.LightningDataModule):
    """The base of every task's data module: batches are dicts of tensors and lists of texts."""

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Move a dict batch's tensors to ``device`` and leave its lists of texts alone: Lightning's own transfer
        walks every string of every list, which costs more than the move itself on a small model's step."""
        if not isinstance(batch, dict):
            return super().transfer_batch_to_device(batch, device, dataloader_idx)
        move = super().transfer_batch_to_device
        return {key: value if is_texts(value) else move(value, device, dataloader_idx) for key, value in batch.items()}


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

    def __init__(self, size: int, seed: int, lengths: Optional[Sequence[int]] = None, batch_size: int = 1) -> None:
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
        order = self.order()
        if self.resume_at is not None:
            epoch, done = self.resume_at
            self.resume_at = None
            if epoch == self.epoch:
                order = order[done:]
        return iter(order)

    def order(self) -> list[int]:
        """This epoch's indices in the order they are drawn."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        if self.lengths is None:
            return order
        pool = self.batch_size * 50
        batches = []
        for start in range(0, self.size, pool):
            chunk = sorted(order[start : start + pool], key=self.lengths.__getitem__)
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        short = batches.pop() if len(batches[-1]) < self.batch_size else []
        shuffled = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()] + [short]
        return [index for batch in shuffled for index in batch]

    def __len__(self) -> int:
        return self.size


def make_loader(
    data: Sequence,
    batch_size: int,
    collate_fn: Callable,
    seed: int,
    shuffle: bool = False,
    num_workers: int = 0,
    lengths: Optional[Sequence[int]] = None,
    trainer: Any = None,
) -> DataLoader:
    """A DataLoader that never draws from the global random state (its own generator seeds workers), shuffled by
    ``EpochShuffle`` when asked (bucketed by ``lengths`` if given); together they make runs resume exactly.

    ``trainer``: for a training loader, the Lightning trainer; when it resumes from a checkpoint written mid-epoch
    (validation more than once an epoch), the loader skips the batches that run had trained on, so the resumed run
    sees what an unbroken one would. (Not under DDP, where Lightning's distributed sampler splits the full list.)
    """
    sampler = EpochShuffle(len(data), seed, lengths, batch_size) if shuffle else None
    if sampler is not None and trainer is not None and trainer.world_size == 1 and trainer.fit_loop.restarting:
        done = trainer.fit_loop.epoch_loop.batch_progress.current.completed  # batches trained in that epoch
        if 0 < done < -(-len(data) // batch_size):
            sampler.resume(trainer.current_epoch, done * batch_size)
    return DataLoader(
        data, batch_size=batch_size, sampler=sampler,
        collate_fn=collate_fn, num_workers=num_workers, generator=torch.Generator().manual_seed(seed),
    )
