"""The training driver behind ``train.py``: config → data + task → Lightning Trainer → fit, test, metrics.json."""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
from omegaconf import DictConfig, OmegaConf

from eeap.config.loader import RunConfig, to_yaml
from eeap.errors import ClusterError, ConfigError, one_line
from eeap.faults import Stopped
from eeap.paths import writable_folder, write_atomically
from eeap.training.experiment import Experiment

RUN_DIR_ENV = "EEAP_RUN_DIR"  # passed from the launching process to the DDP worker processes


def main(argv: Sequence[str] | None = None, prog: str = "train.py") -> int:
    """``train.py CONFIG [key=value ...] [--print-config]``; returns the exit code."""
    from eeap.errors import ArgumentParser, guarded

    parser = ArgumentParser(
        prog=prog, description="Train an EEAP model from a YAML config, then test it on the test split."
    )
    parser.add_argument("config", help="a YAML config's path, or a shipped config's name (eeap configs lists them)")
    parser.add_argument(
        "overrides", nargs="*", default=[], help="dotted overrides, e.g. trainer.max_epochs=3 model.attend.type=dot"
    )
    parser.add_argument("--print-config", action="store_true", help="check the config, print it resolved, and exit")

    def body() -> int:
        from eeap.faults import stop_on_signals

        with stop_on_signals():
            args = parser.parse_intermixed_args(argv)
            experiment = Experiment.from_config(args.config, args.overrides)  # checked whole, torch not imported
            if args.print_config:
                print(to_yaml(experiment.config), end="")
                return 0
            metrics = train(experiment)
        from lightning.fabric.utilities.rank_zero import rank_zero_only

        if getattr(rank_zero_only, "rank", 0) == 0:  # one copy of a job's metrics, not one a rank
            print(json.dumps(metrics, indent=2))
        return 0

    return guarded(body, prog)


def prepare_main(argv: Sequence[str] | None = None, prog: str = "eeap prepare") -> int:
    """``eeap prepare CONFIG [key=value ...]``: prepare the config's data ahead of training (tokenizers, encoding)
    into its cache, or say that it is already there; what training and every rank then reuse."""
    from eeap.errors import ArgumentParser, guarded

    parser = ArgumentParser(
        prog=prog,
        description="Prepare a config's data once (tokenizers trained, pairs encoded) into its cache, "
        "for the runs and ranks that follow.",
    )
    parser.add_argument("config", help="a YAML config's path, or a shipped config's name")
    parser.add_argument("overrides", nargs="*", default=[], help="dotted overrides, e.g. data.vocab_size=16000")

    def body() -> int:
        from eeap.faults import stop_on_signals

        with stop_on_signals():
            args = parser.parse_intermixed_args(argv)
            data = Experiment.from_config(args.config, args.overrides).data()
            kind = data.registered_name
            if data.cache_dir() is None or not data.data_files():
                print(f"data '{kind}' is made in memory on each run; there is nothing to prepare ahead")
                return 0
            start = time.perf_counter()
            data.prepare()
        sizes = ", ".join(f"{len(data.splits[name])} {name}" for name in ("train", "val", "test"))
        done = "prepared" if data.prepared_here else "already prepared (reused)"
        print(f"data '{kind}' {done}: {sizes} examples, {time.perf_counter() - start:.1f} s")
        return 0

    return guarded(body, prog)


def build_profiler(run: RunConfig, run_dir: Path) -> Any:
    """``trainer.profiler`` by name, writing its report to ``<run_dir>/profile*.txt`` (the PyTorch profiler also
    its traces there)."""
    from lightning.pytorch import profilers

    name = run.trainer.profiler
    if name is None:
        return None
    cls = {
        "simple": profilers.SimpleProfiler,
        "advanced": profilers.AdvancedProfiler,
        "pytorch": profilers.PyTorchProfiler,
    }[name]
    return cls(dirpath=run_dir, filename="profile")


def check_monitors(run: RunConfig, task: Any) -> None:
    """Refuse, before training, a ``checkpoint.monitor`` or ``early_stopping.monitor`` that names a metric the task
    never logs, and a plateau schedule in a run without validations (Lightning finds either only at the first
    validation or epoch end, with a traceback)."""
    optim = getattr(task, "optim", None)
    if getattr(optim, "scheduler", None) == "plateau" and run.trainer.limit_val_batches == 0:
        raise ConfigError(
            "model.optim.scheduler: plateau lowers the rate when the validation metric stalls, but "
            "trainer.limit_val_batches=0 runs no validation; choose none, cosine or noam, or validate"
        )
    logged = task.logged_metrics()
    for key, value in (
        ("checkpoint.monitor", run.checkpoint.monitor),
        ("early_stopping.monitor", run.early_stopping.monitor),
    ):
        if value is not None and value not in logged:
            raise ConfigError(
                f"{key}: '{value}' is not a metric the {task.registered_name} task logs. "
                f"Valid options: {', '.join(sorted(logged))}"
            )


def train(config: Union[DictConfig, Experiment], callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Fit and test the run a config (or its ``Experiment``) describes; return the final metrics (also in
    metrics.json). ``callbacks``: Lightning callbacks beside the run's own."""
    experiment = config if isinstance(config, Experiment) else Experiment.from_config(config)
    run = experiment.run
    task, data = experiment.build()

    run_dir, ckpt_path = resolve_run_dir(run)
    wandb_id, resume_step = None, None
    if ckpt_path is not None:
        wandb_id, resume_step = check_resume(ckpt_path, task)
        for leftover in (run_dir / "checkpoints").glob(".*.tmp-*"):  # a write that a kill cut short
            leftover.unlink(missing_ok=True)
    check_monitors(run, task)
    named = experiment.callbacks
    trainer = build_trainer(run, run_dir, task, [*callbacks, *named], wandb_id, resume_step)
    # our training loaders skip what a mid-epoch checkpoint had seen, on every rank (eeap.data.base)
    warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch")
    if ckpt_path is not None:  # a resumed run writes on in its own checkpoints folder
        warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")
    if trainer.is_global_zero:
        from eeap.console import say
        from eeap.training.console import start_line

        say(start_line(run.name, task.model, run_dir, ckpt_path))
        run_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(run_dir / "config.yaml", to_yaml(OmegaConf.create(task.eeap_config)))
    from eeap.training.loggers import record_config

    record_config(trainer, task.eeap_config, run_dir / "config.yaml", resuming=ckpt_path is not None)
    owns_env = RUN_DIR_ENV not in os.environ
    os.environ[RUN_DIR_ENV] = str(run_dir)
    try:
        start = time.perf_counter()
        fit(trainer, task, data, ckpt_path, run)
        fit_time = time.perf_counter() - start
        checkpoint = trainer.checkpoint_callback
        best = checkpoint.best_model_path if checkpoint is not None else ""
        tested = best
        if any(c.replaces_weights for c in named):  # averaged weights: in no checkpoint until saved here
            tested = str(run_dir / "checkpoints" / "swa.ckpt")
            trainer.save_checkpoint(tested, weights_only=True)
        if run.logger.wandb.log_model:
            from eeap.training.loggers import log_checkpoints

            log_checkpoints(trainer, best, run_dir / "checkpoints" / "last.ckpt")
        try:
            results = (
                trainer.test(task, datamodule=data, ckpt_path=tested or None, verbose=False, weights_only=True)
                if run.test
                else [{}]
            )
        except Stopped as stop:
            raise Stopped(stop.signum, Path(tested) if tested else None, phase="testing") from None
        from eeap.training.callbacks import BestValue

        metrics: dict[str, Any] = {k: float(v) for k, v in results[0].items()}
        tracker = next(c for c in trainer.callbacks if isinstance(c, BestValue))
        if tracker.value is not None:
            metrics.update({f"best/{tracker.monitor}": tracker.value, "best/step": tracker.step})
        metrics.update(
            run_dir=str(run_dir),
            best_checkpoint=best,
            tested_checkpoint=tested if run.test else "",
            epochs=trainer.current_epoch,
            steps=trainer.global_step,
            fit_time_s=round(fit_time, 2),
        )
        summarize_wandb(trainer, metrics, tracker)
        from eeap.console import say
        from eeap.training.console import wandb_line

        line = wandb_line(trainer)
        if line is not None:
            say(line)
    finally:
        if owns_env:
            os.environ.pop(RUN_DIR_ENV, None)
        finish_wandb(trainer)
    if trainer.is_global_zero:
        write_atomically(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics


def fit(trainer: Any, task: Any, data: Any, ckpt_path: Optional[str], run: RunConfig) -> None:
    """``trainer.fit``, weights-only (a checkpoint never unpickles code); a rank that could not meet the others, or
    lost one, ends in one line (``eeap.training.cluster.failure_line``) instead of a traceback or a hang."""
    from eeap.training import cluster

    try:
        trainer.fit(task, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
    except RuntimeError as e:
        if trainer.world_size == 1:
            raise
        line = cluster.failure_line(e, trainer.global_rank, trainer.world_size, run.cluster.timeout)
        if line is None:
            raise
        raise ClusterError(line) from None


def summarize_wandb(trainer: Any, metrics: dict[str, Any], tracker: Any) -> None:
    """The W&B run's summary: the monitored metric's best value (not its last) and the step it came at, the test
    metrics of the checkpoint tested, the fit time and the best checkpoint's path."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and trainer.is_global_zero:
            summary = {key: value for key, value in metrics.items() if key != "run_dir"}
            if tracker.value is not None:
                summary[tracker.monitor] = tracker.value
            logger.experiment.summary.update(summary)


def finish_wandb(trainer: Any) -> None:
    """End this run's W&B run, so that the next run in the same process (a notebook, a sweep, a test) starts its
    own instead of writing into this one."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and getattr(logger, "_experiment", None) is not None:
            logger.experiment.finish()
            logger._experiment = None


def resolve_run_dir(run: RunConfig) -> tuple[Path, str | None]:
    """The run's folder and the checkpoint to resume from (``None`` for a fresh run).

    Without ``run_dir``, the folder is ``runs/<name>/<job>``, the job named by its launcher (SLURM's job id,
    torchrun's ``--rdzv-id``; ``eeap.training.cluster``), else by the time; every rank of a job has the same. A
    fresh run never writes into a folder that already holds checkpoints, so a failed run cannot replace a good one;
    a job its scheduler started again (a SLURM requeue, a torchrun restart) continues its folder's ``last.ckpt``.
    """
    from eeap.training import cluster

    if run.resume:
        ckpt = find_checkpoint(run.resume, run.name)
        return Path(os.environ.get(RUN_DIR_ENV, ckpt.parent.parent)), str(ckpt)
    if RUN_DIR_ENV in os.environ:
        return Path(os.environ[RUN_DIR_ENV]), None
    launch = cluster.detect()
    if run.run_dir:
        run_dir = Path(run.run_dir)
    else:
        run_dir = Path("runs") / run.name / (launch.job or time.strftime("%Y%m%d-%H%M%S"))
        run_dir = cluster.share_run_dir(run_dir, launch, run.cluster.timeout)
    writable_folder(run_dir, "run_dir")
    last = run_dir / "checkpoints" / "last.ckpt"
    if launch.restarts > 0 and last.is_file():
        if launch.rank == 0:
            from eeap.console import say

            job = f"job {launch.job}" if launch.job else "the job"
            say(f"{launch.launcher} started {job} again (restart {launch.restarts}): continuing {last}")
        return run_dir, str(last)
    if any((run_dir / "checkpoints").glob("*.ckpt")):
        raise ConfigError(
            f"run_dir {run_dir} already holds checkpoints; continue it with resume={run_dir} or choose another run_dir"
        )
    return run_dir, None


def check_resume(path: str, task: Any) -> tuple[Optional[str], Optional[int]]:
    """Refuse, in one line and before anything is written, a checkpoint that cannot be resumed: unreadable, not
    written by EEAP, or holding another model than this config builds. Read weights-only, whatever
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` says, so a crafted file cannot run code. Returns the W&B run id it carries
    and the last step the loggers had recorded when it was written (``eeap.model.checkpoints``)."""
    from eeap.model.checkpoints import check_weights, model_weights, read_checkpoint

    checkpoint = read_checkpoint(path, f"resume={path}:", ConfigError)
    check_weights(task.model.state_dict(), model_weights(checkpoint["state_dict"]), f"resume={path}:", ConfigError)
    loop = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.state_dict", {})
    step = loop.get("_batches_that_stepped") if isinstance(loop, dict) else None
    return checkpoint["eeap"].get("wandb_id"), step if isinstance(step, int) else None


def find_checkpoint(resume: str, name: str) -> Path:
    """``last`` → the newest ``runs/<name>/*/checkpoints/last.ckpt``; a run folder → its last.ckpt; else the file."""
    if resume == "last":
        found = sorted(Path("runs", name).glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise ConfigError(f"resume=last: no runs/{name}/*/checkpoints/last.ckpt to continue")
        return found[-1]
    path = Path(resume)
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise ConfigError(f"resume={resume}: checkpoint not found ({path}); give a .ckpt file, a run folder or 'last'")
    return path


def build_trainer(
    run: RunConfig,
    run_dir: Path,
    task: Any,
    callbacks: list,
    wandb_id: Optional[str] = None,
    resume_step: Optional[int] = None,
) -> Any:
    """A Lightning Trainer from ``trainer.*`` with checkpoints (best + last), early stopping and loggers."""
    import dataclasses

    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import WandbLogger

    from eeap.training import cluster
    from eeap.training.callbacks import (
        AtomicCheckpointIO,
        BestValue,
        ExampleLog,
        LearningCurve,
        SameRunDir,
        StopOnSignal,
    )
    from eeap.training.console import console_callbacks, draws_bar, quiet_lightning
    from eeap.training.loggers import build_loggers

    monitor, mode = task.monitor
    ck = run.checkpoint
    callbacks.append(
        ModelCheckpoint(
            dirpath=run_dir / "checkpoints",
            filename="best-epoch{epoch:03d}",
            auto_insert_metric_name=False,
            monitor=ck.monitor or monitor,
            mode=ck.mode or mode,
            save_top_k=ck.save_top_k,
            save_last=False,
            enable_version_counter=False,  # a resumed run that passes the same epoch writes the same file again
        )
    )
    if ck.save_last:  # Lightning's own save_last only writes when a best checkpoint is written; ours every epoch
        callbacks.append(
            ModelCheckpoint(
                dirpath=run_dir / "checkpoints",
                filename="last",
                monitor=None,
                save_top_k=1,
                enable_version_counter=False,
            )
        )
    es = run.early_stopping
    if es.patience is not None or es.stopping_threshold is not None:
        es_mode = es.mode or mode
        threshold = es.stopping_threshold
        if threshold is not None:
            # Lightning stops when the metric passes the threshold strictly, comparing in the metric's float32;
            # stopping on reaching it means passing the float32 just before it.
            toward = np.float32(-np.inf if es_mode == "max" else np.inf)
            threshold = float(np.nextafter(np.float32(threshold), toward))
        callbacks.append(
            EarlyStopping(
                monitor=es.monitor or monitor,
                mode=es_mode,
                min_delta=es.min_delta,
                patience=es.patience if es.patience is not None else sys.maxsize,
                stopping_threshold=threshold,
                check_on_train_epoch_end=False,
            )
        )
    launch = cluster.detect()
    requeue_job = launch.job if run.cluster.requeue and launch.launcher == "slurm" else None
    callbacks.append(StopOnSignal(run_dir / "checkpoints" / "last.ckpt", requeue_job))
    callbacks.append(SameRunDir(run_dir))
    callbacks.append(ExampleLog())
    best = BestValue(ck.monitor or monitor, ck.mode or mode)
    callbacks.append(best)
    callbacks.append(LearningCurve(ck.monitor or monitor, ck.mode or mode))
    loggers = build_loggers(run, run_dir, wandb_id, resume_step)
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            task.eeap_wandb_id = logger._id  # the checkpoint carries it (TrainingModule.on_save_checkpoint)
    if loggers:
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    callbacks += console_callbacks(run.trainer.enable_progress_bar, best)
    quiet_lightning()
    values = {k: v for k, v in dataclasses.asdict(run.trainer).items() if k not in run.trainer.built_by_eeap}
    values["enable_progress_bar"] = draws_bar(run.trainer.enable_progress_bar)
    for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches"):
        if values[key] == 1.0:  # Lightning's default: given explicitly, Lightning says so in a line each
            del values[key]
    cluster.check_world(values["devices"], values["num_nodes"], values["accelerator"], launch)
    try:
        unused = bool(getattr(getattr(task, "model", None), "frozen_phase", False))  # parameters left without grads
        values["strategy"] = cluster.strategy(values["strategy"], run.cluster.timeout, launch, unused)
        return L.Trainer(
            **values,
            profiler=build_profiler(run, run_dir),
            **getattr(run.trainer, "passed_on", {}),  # Lightning's own arguments beyond EEAP's (TrainerConfig)
            default_root_dir=run_dir,
            logger=loggers or False,
            callbacks=callbacks,
            # a kill mid-write leaves the previous checkpoint whole; the launcher's environment (eeap.training.cluster)
            plugins=[AtomicCheckpointIO(), *cluster.environment(launch)],
        )
    except (MisconfigurationException, ValueError, TypeError, RuntimeError, ImportError) as e:
        raise ConfigError(f"trainer: {one_line(e)}") from None
