"""Run by tests/test_faults.py: ``train.py`` in a real process that a fault strikes at a chosen point.

Usage: python tests/fault_worker.py FAULT CONFIG [key=value ...]

FAULT is ``ACTION@POINT``:
- ACTION: ``kill`` (SIGKILL to itself: no handler, no clean-up, as ``kill -9``), ``sigint``, ``sigterm``, or
  ``sigint2`` (two SIGINTs in a row: the second stops at once);
- POINT: ``batch_start=S`` / ``batch_end=S`` (a training batch's start or end, global step S), ``epoch_end=S``
  (after an epoch's validation and checkpoints, at global step S), ``test`` (the first test batch), or
  ``replace=NAME#K`` (the K-th atomic write of checkpoint NAME, after its bytes are on disk and before the rename).
"""

import os
import signal
import sys
from pathlib import Path

from lightning.pytorch.callbacks import Callback

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eeap.training.run  # noqa: E402

ACTIONS = {"kill": [signal.SIGKILL], "sigint": [signal.SIGINT], "sigterm": [signal.SIGTERM]}
ACTIONS["sigint2"] = [signal.SIGINT, signal.SIGINT]


def strike(action: str) -> None:
    for signum in ACTIONS[action]:
        os.kill(os.getpid(), signum)


class Fault(Callback):
    """Strikes at a hook when the global step is the one named."""

    def __init__(self, action: str, hook: str, step: int) -> None:
        self.action, self.hook, self.step, self.done = action, hook, step, False

    def check(self, hook: str, trainer) -> None:
        if hook == self.hook and not self.done and (self.step < 0 or trainer.global_step == self.step):
            self.done = True
            strike(self.action)

    def on_train_batch_start(self, trainer, *args) -> None:
        self.check("batch_start", trainer)

    def on_train_batch_end(self, trainer, *args) -> None:
        self.check("batch_end", trainer)

    def on_train_epoch_end(self, trainer, *args) -> None:
        self.check("epoch_end", trainer)

    def on_test_batch_start(self, trainer, *args) -> None:
        self.check("test", trainer)


def strike_on_replace(action: str, name: str, count: int) -> None:
    """Strike during the ``count``-th atomic write of a checkpoint called ``name`` (or starting with it)."""
    replace, seen = os.replace, [0]

    def patched(src, dst, *args, **kwargs):
        if Path(dst).name.startswith(name):
            seen[0] += 1
            if seen[0] == count:
                strike(action)
        return replace(src, dst, *args, **kwargs)

    os.replace = patched


if __name__ == "__main__":
    fault, argv = sys.argv[1], sys.argv[2:]
    action, point = fault.split("@")
    callbacks = []
    if point.startswith("replace="):
        name, count = point.removeprefix("replace=").split("#")
        strike_on_replace(action, name, int(count))
    else:
        hook, _, step = point.partition("=")
        callbacks.append(Fault(action, hook, int(step) if step else -1))
    train = eeap.training.run.train
    eeap.training.run.train = lambda cfg: train(cfg, callbacks=callbacks)  # type: ignore[assignment]
    sys.exit(eeap.training.run.main(argv))
