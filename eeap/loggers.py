"""Loggers (W&B offline by default, CSV) and the one helper every task uses to log a figure."""

from __future__ import annotations

import netrc
import os
import warnings
from pathlib import Path
from typing import Any

from eeap.errors import ConfigError

LOGGERS = ("wandb", "csv")


def build_loggers(run: Any, run_dir: Path) -> list:
    """The loggers named in ``logger.use``, writing under ``run_dir``; the resolved config goes in as hyperparameters."""
    from lightning.pytorch.loggers import CSVLogger, WandbLogger

    unknown = [name for name in run.logger.use if name not in LOGGERS]
    if unknown:
        raise ConfigError(
            f"logger.use: unknown logger '{unknown[0]}'. Valid options: {', '.join(LOGGERS)} (or logger=none)"
        )
    loggers: list[Any] = []
    if "csv" in run.logger.use:
        loggers.append(CSVLogger(save_dir=str(run_dir), name="csv", version=""))
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
        loggers.append(
            WandbLogger(
                project=wb.project,
                entity=wb.entity,
                name=f"{run.name}-{run_dir.name}",
                save_dir=str(run_dir),
                mode=mode,
                tags=list(wb.tags),
                log_model=wb.log_model,
            )
        )
    return loggers


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
