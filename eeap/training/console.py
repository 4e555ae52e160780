"""What a run prints while it trains, on standard error (standard output carries the final metrics): the config's
name and run folder at the start; a progress bar on a terminal, or one line a validation where the output is a file
or a pipe; where the W&B run is at the end. Lightning's info lines (GPU/TPU, tips, ``limit_*``, summaries, restores)
are not shown unless ``EEAP_DEBUG=1`` (``eeap.console``)."""

from __future__ import annotations

import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Optional

from lightning.pytorch.callbacks import Callback, ModelSummary, TQDMProgressBar

from eeap.console import debugging, hide_library_warnings, say
from eeap.training.callbacks import BestValue


def quiet_lightning() -> None:
    """Lightning's info lines at debug level: shown with ``EEAP_DEBUG=1`` only; within a command, its deprecation
    warnings too (``eeap.console``). Called once Lightning is imported (importing it sets its own level, filter and
    format). Lightning's hint to start with ``srun`` on a machine where SLURM is installed is not given: EEAP tells
    a process of a SLURM job that needed ``srun`` itself (``eeap.training.cluster.detect``), and a run on a login
    node or a one-machine SLURM is not one."""
    if not debugging():
        for name in ("lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="The `srun` command is available on your system but is not used")
    hide_library_warnings()


def draws_bar(progress_bar: bool) -> bool:
    """Whether a run draws a progress bar: asked for (``trainer.enable_progress_bar``) and standard output (where
    Lightning's bar is drawn) a terminal; a bar written to a file is one long line of escape codes."""
    return progress_bar and sys.stdout.isatty()


def console_callbacks(progress_bar: bool, best: Optional[BestValue] = None) -> list:
    """Lightning's plain model summary (shown with ``EEAP_DEBUG=1``), and either the tqdm bar without ``v_num``
    (on a terminal) or, in a run that validates (``best``), a line a validation. Lightning's rich bar and summary,
    which it chooses when ``rich`` is installed, would print to standard output."""
    callbacks: list = [ModelSummary()]
    if draws_bar(progress_bar):
        callbacks.append(ProgressBar())
    elif best is not None:
        callbacks.append(ValidationLines(best))
    return callbacks


class ProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar without ``v_num`` (a logger's version number, which says nothing about the run)."""

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items


class ValidationLines(Callback):
    """One line a validation on rank 0: the step, the epoch, the validation metrics, the monitored metric's best
    value so far with its step, and the time since training started (in this process).

    # Parameters
    best: the run's tracker of the monitored metric (runs before this callback at each validation).
    """

    def __init__(self, best: BestValue) -> None:
        self.best = best
        self.start = time.perf_counter()

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.start = time.perf_counter()

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        step = trainer.fit_loop.epoch_loop._batches_that_stepped  # the step the loggers record it at
        parts = [f"step {step}", f"epoch {trainer.current_epoch}"]
        parts += [
            f"{key} {number(value)}" for key, value in sorted(trainer.callback_metrics.items()) if key[:4] == "val/"
        ]
        if self.best.value is not None:
            parts.append(f"best {self.best.monitor} {number(self.best.value)} (step {self.best.step})")
        parts.append(f"{time.perf_counter() - self.start:.0f} s")
        say(" · ".join(parts))


def number(value: Any) -> str:
    """A metric for reading: four significant digits."""
    return f"{float(value):.4g}"


def start_line(name: str, task: Any, run_dir: Path, resume: Optional[str]) -> str:
    """The run's first line: the config's name, the task and its size, the run folder (and what it continues)."""
    parameters = sum(p.numel() for p in task.parameters())
    what = f"{name}: {task.registered_name} task, {parameters:,} parameters"
    if resume is not None:
        return f"{what}; continuing {run_dir} from {resume}"
    return f"{what}; run folder {run_dir}"


def wandb_line(trainer: Any) -> Optional[str]:
    """Where the W&B run is: its page (online) or the command that uploads it (offline); None without W&B."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in trainer.loggers:
        experiment = getattr(logger, "_experiment", None)
        if isinstance(logger, WandbLogger) and experiment is not None and trainer.is_global_zero:
            settings = experiment.settings
            if settings.mode in ("offline", "dryrun"):
                return f"W&B: offline run saved; upload it with: wandb sync {settings.sync_dir}"
            return f"W&B: {experiment.url}"
    return None
