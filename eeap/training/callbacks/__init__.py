"""Lightning callbacks and plugins of every run: stop cleanly on a signal, write checkpoints atomically; the role
of the callbacks a config names (``RunCallback``, registered in ``eeap.training.callbacks.named``).

- ``StopOnSignal``: the first SIGINT or SIGTERM during training stops the run at the next batch boundary with a
  checkpoint it resumes from exactly;
- ``AtomicCheckpointIO``: every checkpoint is written to a temporary file beside its target, flushed to disk and then
  renamed over it, so a crash or ``kill -9`` at any moment leaves either the old checkpoint or the new one whole.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any, Optional

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback

from eeap.config.registry import Role
from eeap.faults import STOP_SIGNALS, Stopped, in_main_thread
from eeap.training.loggers import log_examples


class RunCallback(Callback, Role):
    """The callback role: a Lightning callback a config names in ``trainer.callbacks`` (``eeap.training.callbacks.named``).

    ``replaces_weights``: the callback leaves the model with other weights when training ends than any checkpoint
    holds (weight averaging), so the run saves and tests those."""

    registry_kind = "callback"
    role_name = "callback"
    replaces_weights = False


class StopOnSignal(Callback):
    """A Lightning callback: during training, the first SIGINT or SIGTERM asks the run to stop; it stops before the
    next training batch, after the batch it was on and any validation and checkpoints due after it, writes
    ``last_path`` there (a checkpoint an unbroken run could have written, so resuming continues exactly) and raises
    ``Stopped``. A second signal raises ``Stopped`` at once, leaving the checkpoints already written. Under DDP every
    process stops at the same batch (the request is shared before each batch).

    Installed when training starts, after Lightning has set its own SIGTERM handler (whose mid-validation stop this
    replaces); the previous handlers come back when training ends.

    SIGUSR1 is a scheduler's warning that the time limit is near (SLURM's ``--signal=USR1@90``): with
    ``requeue_job``, rank 0 then asks SLURM to run the job again (``scontrol requeue``) once ``last_path`` is written,
    and the requeued job continues from it (``eeap.training.cluster``). So does SIGTERM when SLURM sends it at the
    job's time limit; a SIGTERM from ``scancel`` only stops.

    # Parameters
    last_path: where the stopping run writes its checkpoint (the run's ``checkpoints/last.ckpt``).
    requeue_job: the SLURM job to requeue on the scheduler's signals (``cluster.requeue``), or None.
    """

    def __init__(self, last_path: Path, requeue_job: Optional[str] = None) -> None:
        self.last_path = Path(last_path)
        self.requeue_job = requeue_job
        self.pending: Optional[int] = None
        self.previous: dict[int, Any] = {}
        self.saving = self.requeueing = False

    def request(self, signum: int, frame: Any = None) -> None:
        if self.requeueing:  # SLURM's SIGTERM to the job it was just asked to requeue: the run is already stopping
            return  # with its checkpoint written, and a second stop would cut the requeue's report short
        if self.pending is not None:
            raise Stopped(signum, self.last_path if self.last_path.is_file() else None, phase="training")
        self.pending = signum
        print(
            f"\n{signal.Signals(signum).name}: stopping after this batch and writing {self.last_path} "
            "(send it again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if in_main_thread():
            self.previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
            for signum in STOP_SIGNALS:
                signal.signal(signum, self.request)

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        pending = self.pending is not None
        if trainer.world_size > 1:
            pending = bool(trainer.strategy.reduce_boolean_decision(pending, all=False))
        if not pending:
            return
        self.saving = True
        try:
            trainer.save_checkpoint(self.last_path)
        finally:
            self.saving = False
        where = f"epoch {trainer.current_epoch}, step {trainer.global_step}"
        signum = self.pending or signal.SIGTERM
        note = ""
        if self.requeue_job is not None and trainer.is_global_zero:
            from eeap.training import cluster

            if cluster.requeues_on(signum, self.requeue_job):
                print(f"requeueing SLURM job {self.requeue_job} (cluster.requeue)", file=sys.stderr, flush=True)
                self.requeueing = True
                note = cluster.requeue(self.requeue_job)
        raise Stopped(signum, self.last_path, where, "training", note)

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict) -> None:
        """A checkpoint written at a batch's start holds the progress of the batches completed: the batch about to
        start is not counted: the checkpoint is the one an unbroken run writes after the batch before (its last
        step, validation and checkpoints done)."""
        progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.batch_progress")
        if not self.saving or progress is None:
            return
        for counts in (progress["total"], progress["current"]):
            counts["ready"] = counts["started"] = counts["processed"] = counts["completed"]

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        for signum, old in self.previous.items():
            if signal.getsignal(signum) == self.request:  # not if Lightning has already put back its originals
                signal.signal(signum, old)
        self.previous = {}


class SameRunDir(Callback):
    """Once the ranks are connected (``setup``), every rank's run folder is compared with rank 0's; a difference (a
    ``run_dir`` that differs between nodes, a clock stamp on a node that did not hear rank 0's) is one ``error:``
    line naming both, before anything is trained.

    # Parameters
    run_dir: this rank's run folder.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if trainer.world_size == 1:
            return
        import torch.distributed as dist

        from eeap.errors import ConfigError

        folders: list = [None] * trainer.world_size
        dist.all_gather_object(folders, str(self.run_dir.resolve()))
        odd = [(rank, folder) for rank, folder in enumerate(folders) if folder != folders[0]]
        if odd:
            rank, folder = odd[0]
            raise ConfigError(
                f"run_dir: the ranks disagree on the run folder: rank 0 has {folders[0]}, rank {rank} has {folder}; "
                "give one run_dir on a shared file system, or a job id (SLURM's, torchrun's --rdzv-id)"
            )


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made atomic: the bytes go to ``.<name>.tmp-<pid>`` beside the target, are flushed
    to disk, and the file is renamed over the target (an atomic replace on POSIX and Windows). A crash mid-write
    leaves the previous checkpoint whole and, at worst, a temporary file that the next write of the same name
    replaces."""

    def save_checkpoint(self, checkpoint: dict, path: Any, storage_options: Optional[Any] = None) -> None:
        import torch

        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            with open(temporary, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, target)
        finally:
            if temporary.exists():
                temporary.unlink()


class ExampleLog(Callback):
    """Each validation (not the sanity check), the task's examples of the first batch (``Task.validation_examples``):
    their figures and one table, through ``eeap.training.loggers.log_examples``."""

    def on_validation_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        model = pl_module.model  # the task inside the TrainingModule
        if batch_idx == 0 and dataloader_idx == 0 and model.plot_examples and not trainer.sanity_checking:
            log_examples(pl_module, model.validation_examples(batch, outputs))


class BestValue(Callback):
    """The best value of the monitored metric over a run's validations and the global step it came at (kept in
    checkpoints, so a resumed run keeps it): what the run's summary reports, not the last validation's value.

    # Parameters
    monitor, mode: the metric (e.g. ``val/exact_match``) and whether more (``max``) or less (``min``) is better.
    """

    def __init__(self, monitor: str, mode: str) -> None:
        self.monitor, self.mode = monitor, mode
        self.value: Optional[float] = None
        self.step: Optional[int] = None

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        current = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or current is None:
            return
        value = float(current)
        if self.value is None or (value > self.value if self.mode == "max" else value < self.value):
            # the step the loggers record this validation at (its trainer/global_step in W&B and metrics.csv)
            self.value, self.step = value, trainer.fit_loop.epoch_loop._batches_that_stepped

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value, "step": self.step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.value, self.step = state_dict["value"], state_dict["step"]


class LearningCurve(Callback):
    """The run's learning curve, drawn when training ends as ``figures/learning_curve.png`` in the run folder (and
    sent to the loggers that show images): the training loss every ``log_every_n_steps`` and each validation's
    metrics, against the step the loggers record them at; the monitored metric's best value marked. Its points
    are kept in checkpoints, so a resumed run draws the whole curve.

    # Parameters
    monitor, mode: the metric marked at its best, and whether more or less is better.
    """

    def __init__(self, monitor: str, mode: str) -> None:
        self.monitor, self.mode = monitor, mode
        self.train: list[tuple[int, float]] = []  # (step, train/loss)
        self.val: list[tuple[int, dict[str, float]]] = []  # (step, {val/<name>: value})

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        from eeap.training.loggers import logged_step

        step = logged_step(trainer)
        loss = trainer.callback_metrics.get("train/loss")
        if (
            loss is not None
            and step % trainer.log_every_n_steps == 0
            and not (self.train and self.train[-1][0] == step)
        ):
            self.train.append((step, float(loss)))

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        from eeap.training.loggers import logged_step

        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/") and v.numel() == 1}
        if metrics:
            self.val.append((logged_step(trainer), metrics))

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        from eeap.model.plotting import learning_curve, save_figure
        from eeap.training.loggers import logged_step, send_image

        if not trainer.is_global_zero or not (self.train or self.val):
            return
        figure = learning_curve(self.train, self.val, self.monitor, self.mode)
        path = save_figure(figure, Path(trainer.default_root_dir) / "figures" / "learning_curve.png")
        send_image(trainer, "learning_curve", path, logged_step(trainer))

    def state_dict(self) -> dict[str, Any]:
        return {"train": list(self.train), "val": list(self.val)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.train = [(int(step), float(loss)) for step, loss in state_dict.get("train", [])]
        self.val = [(int(step), dict(metrics)) for step, metrics in state_dict.get("val", [])]
