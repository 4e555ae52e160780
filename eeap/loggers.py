"""Loggers (W&B offline by default, CSV) and the one helper every task uses to log a figure."""

from __future__ import annotations

import netrc
import os
import warnings
from pathlib import Path
from typing import Any

from eeap.errors import ConfigError

LOGGERS = ("wandb", "csv")


WANDB_ID_FILE = "wandb-id"  # in the run folder: the W&B run a resumed run continues


def wandb_run_id(run_dir: Path, known: str | None = None) -> tuple[str, bool]:
    """The W&B run id of a run folder and whether it continues one: ``known`` (from the checkpoint resumed) or the id
    kept in the folder; a new id (written to the folder) for a new run."""
    path = run_dir / WANDB_ID_FILE
    if known:
        return known, True
    if path.is_file():
        return path.read_text(encoding="utf-8").strip(), True
    import secrets

    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    from eeap.paths import write_atomically

    run_id = secrets.token_hex(4)  # 8 characters, as W&B's own ids
    if getattr(rank_zero_only, "rank", 0) == 0:
        write_atomically(path, run_id + "\n")
    return run_id, False


def build_loggers(run: Any, run_dir: Path, wandb_id: str | None = None) -> list:
    """The loggers named in ``logger.use``, writing under ``run_dir``; the resolved config goes in as hyperparameters.

    A resumed run continues its experiment: the same W&B run (its id kept in the run folder and the checkpoint,
    ``wandb_id``), and rows appended to the same ``csv/metrics.csv``."""
    from lightning.pytorch.loggers import WandbLogger

    unknown = [name for name in run.logger.use if name not in LOGGERS]
    if unknown:
        raise ConfigError(
            f"logger.use: unknown logger '{unknown[0]}'. Valid options: {', '.join(LOGGERS)} (or logger=none)"
        )
    loggers: list[Any] = []
    if "csv" in run.logger.use:
        loggers.append(AppendingCSVLogger(save_dir=str(run_dir), name="csv", version=""))
    if "wandb" in run.logger.use:
        wb = run.logger.wandb
        mode = wb.mode
        if mode == "online" and not has_wandb_credentials():
            warnings.warn(
                "logger.wandb.mode=online but no W&B account is set up (WANDB_API_KEY or `wandb login`); "
                "logging offline instead, `wandb sync` uploads later",
                stacklevel=2,
            )
            mode = "offline"
        run_dir.mkdir(parents=True, exist_ok=True)
        run_id, resuming = wandb_run_id(run_dir, wandb_id)
        loggers.append(
            WandbLogger(
                project=wb.project,
                entity=wb.entity,
                name=wb.name or f"{run.name}-{run_dir.name}",
                save_dir=str(run_dir),
                mode=mode,
                tags=list(wb.tags),
                log_model=False,  # EEAP logs the checkpoints itself, with the right aliases (log_checkpoints)
                id=run_id,
                resume="allow" if resuming else None,
                group=wb.group,
                job_type=wb.job_type,
                notes=wb.notes,
                save_code=wb.save_code,
            )
        )
    return loggers


def log_checkpoints(trainer: Any, best: str, last: Path) -> None:
    """With ``logger.wandb.log_model``: the best and the last checkpoint as versions of the run's ``model-<id>``
    artifact, aliased ``best`` and ``latest`` (one file holding both, when it is both). A checkpoint carries what
    prediction needs: the config as built and the data state (vocabularies, classes)."""
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    for logger in trainer.loggers:
        if not (isinstance(logger, WandbLogger) and trainer.is_global_zero):
            continue
        run = logger.experiment
        versions: dict[str, list[str]] = {}
        if best and Path(best).is_file():
            versions.setdefault(str(Path(best).resolve()), []).append("best")
        if last.is_file():
            versions.setdefault(str(last.resolve()), []).append("latest")
        for path, aliases in versions.items():
            artifact = wandb.Artifact(f"model-{run.id}", type="model", metadata={"checkpoint": path})
            artifact.add_file(path, name="model.ckpt")
            run.log_artifact(artifact, aliases=aliases)


def _csv_base() -> type:
    from lightning.pytorch.loggers import CSVLogger

    return CSVLogger


class AppendingCSVLogger(_csv_base()):  # type: ignore[misc]
    """Lightning's CSV logger, but a run folder's ``metrics.csv`` is continued, not replaced, when a run resumes."""

    @property
    def experiment(self) -> Any:
        if getattr(self, "_experiment", None) is None:
            self._experiment = AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def _writer_base() -> type:
    from lightning.pytorch.loggers.csv_logs import ExperimentWriter

    return ExperimentWriter


class AppendingWriter(_writer_base()):  # type: ignore[misc]
    """Keeps an existing metrics.csv and its columns (Lightning's writer deletes it)."""

    def _check_log_dir_exists(self) -> None:
        import csv

        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="", encoding="utf-8") as f:
                self.metrics_keys = sorted(next(csv.reader(f), []))


def has_wandb_credentials() -> bool:
    """Whether W&B can log in without a prompt: an API key in the environment or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def log_figure(module: Any, key: str, figure: Any) -> Path | None:
    """Save a matplotlib figure as PNG under ``<run_dir>/figures/`` and send it to W&B; rank 0 only.

    Returns the PNG's path (None on other ranks).
    """
    import matplotlib.pyplot as plt
    from lightning.pytorch.loggers import WandbLogger

    from eeap.plotting import save_figure

    trainer = module.trainer
    if not trainer.is_global_zero:
        plt.close(figure)
        return None
    name = f"{key.replace('/', '_')}-step{trainer.global_step:07d}.png"
    path = save_figure(figure, Path(trainer.default_root_dir) / "figures" / name)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=trainer.global_step)
    return path
