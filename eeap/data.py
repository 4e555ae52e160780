"""Shared pieces of every task's data: a sampler that makes shuffling reproducible across resumes."""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


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
