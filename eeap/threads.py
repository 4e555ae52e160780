"""How many CPU threads each phase uses.

torch runs an operation on all cores (``torch.get_num_threads()``, by default one thread per core). That pays for
the large matrix products of training, but decoding runs hundreds of tiny steps (a GRU cell and an attention over a
batch of 64 short sentences), where splitting each operation across threads costs more in synchronisation than it
saves; and when another process holds a core, each operation waits for the thread that runs there. Measured on a
2-core machine (bench/decode.py, bench/README.md): the default date model decodes 2.5-3.5× faster on one thread, while
its training is ~1.4× slower on one.

So EEAP leaves training on torch's default and runs the search loop (greedy and beam) on one thread on the CPU.
``threads`` (the run key, and ``--threads`` of ``eeap predict`` / ``eeap test``) sets one count for every phase.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

import torch

_chosen: Optional[int] = None  # set by ``use``: one count for every phase; None: the per-phase defaults
SEARCH_THREADS = 1  # the search loop's count on the CPU when none is chosen
_DEFAULT = torch.get_num_threads()  # torch's own count, as this process started


def use(threads: Optional[int]) -> None:
    """Choose one thread count for every phase (None: torch's default for training, one for the search loop; a run
    after one that chose a count, in the same process, gets torch's default back)."""
    global _chosen
    _chosen = threads
    torch.set_num_threads(threads if threads is not None else _DEFAULT)


def chosen() -> Optional[int]:
    return _chosen


@contextmanager
def for_search(device: torch.device) -> Iterator[None]:
    """The search loop's thread count inside the block: ``SEARCH_THREADS`` on the CPU unless a count was chosen."""
    if device.type != "cpu" or _chosen is not None or torch.get_num_threads() == SEARCH_THREADS:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(SEARCH_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)
