"""Shared pieces of every task's data: data loaders whose order and seeds survive a resume."""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Sampler


class EpochShuffle(Sampler[int]):
    """Shuffles ``size`` indices with a generator seeded by ``(seed, epoch)``.

    Lightning calls ``set_epoch`` at the start of each epoch, so a resumed run sees the same order as an unbroken one.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


def make_loader(
    data: Sequence, batch_size: int, collate_fn: Callable, seed: int, shuffle: bool = False, num_workers: int = 0
) -> DataLoader:
    """A DataLoader that never draws from the global random state (its own generator seeds workers), shuffled by
    ``EpochShuffle`` when asked; together they make runs resume exactly."""
    return DataLoader(
        data, batch_size=batch_size, sampler=EpochShuffle(len(data), seed) if shuffle else None,
        collate_fn=collate_fn, num_workers=num_workers, generator=torch.Generator().manual_seed(seed),
    )
