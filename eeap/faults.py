"""Stops a command survives: ``Stopped`` and the signal handlers (light; the Lightning side is ``eeap.training.callbacks``).

``Stopped`` is raised when SIGINT, SIGTERM or SIGUSR1 (a scheduler's warning before its time limit, SLURM's
``--signal=USR1@90``) stops a command. Outside training (reading data, testing) the first
signal stops at once; during training (``eeap.training.callbacks.StopOnSignal``) the run finishes the batch it is on, writes
``last.ckpt`` and stops, and a second signal stops at once. Either way the command exits 128 + the signal's number
(130 for Ctrl-C, 143 for SIGTERM) with one ``error:`` line that says how to continue.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

STOP_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGUSR1")
    if hasattr(signal, name)  # no SIGUSR1 on Windows
)


class Stopped(BaseException):
    """A run stopped by a signal. A ``BaseException``, like ``KeyboardInterrupt``, so that no ``except Exception``
    on the way up swallows it; Lightning passes it through after its own clean-up.

    # Parameters
    signum: the signal that stopped the run.
    checkpoint: the checkpoint the run can continue from (``None`` if none was written).
    where: where training stood, e.g. ``epoch 2, step 57`` (empty when it stopped at once).
    phase: ``training``, ``testing`` or ``""`` (before training: reading data, building the model).
    note: what was done about it beyond the checkpoint (``SLURM job 12 requeued; ...``), or empty.
    """

    def __init__(
        self, signum: int, checkpoint: Optional[Path] = None, where: str = "", phase: str = "", note: str = ""
    ) -> None:
        super().__init__(signum, checkpoint, where, phase, note)
        self.signum, self.checkpoint, self.where, self.phase, self.note = signum, checkpoint, where, phase, note

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def raise_stopped(signum: int, frame: Any = None) -> None:
    """A signal handler that stops at once."""
    raise Stopped(signum)


def in_main_thread() -> bool:
    """Signal handlers can only be set from the main thread (not, say, from a notebook's worker thread)."""
    return threading.current_thread() is threading.main_thread()


@contextmanager
def stop_on_signals(handler: Callable[[int, Any], None] = raise_stopped) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGUSR1 call ``handler`` (by default: raise ``Stopped`` at once) inside the block; the previous
    handlers come back after it."""
    if not in_main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
