"""Training a task with Lightning: ``TrainingModule`` wraps a task (a plain ``nn.Module``, ``eeap.model.task.Task``) and
gives Lightning what it asks for: the steps (the task's loss and evaluation, logged under ``train/``, ``val/`` and
``test/``), the optimizer and schedule from ``model.optim``, and checkpoints that carry the run's config, the data
state and the random states, so a run resumes exactly and a checkpoint loads without Lightning (``eeap.load``).

The task's weights sit under ``model.`` in a checkpoint's ``state_dict``; ``eeap.model.checkpoints`` reads both that and
the unprefixed keys of checkpoints written before the wrapper.
"""

from __future__ import annotations

import math
import random
from typing import Any, Optional, cast

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn

from eeap.model.task import Task

PREFIX = "model."  # where the task's weights sit in a training checkpoint's state_dict


class TrainingModule(L.LightningModule):
    """The Lightning side of a task.

    # Parameters
    model: the task (``eeap.model.task.Task``), built by ``TASK.build``.
    validation_metric: ``(metric, mode)`` that the run picks its best checkpoint by (``checkpoint.monitor``), which
        the ``plateau`` schedule follows too, as JoeyNMT's does; unset, the task's own (``model.monitor``).
    """

    def __init__(self, model: Task, validation_metric: Optional[tuple[str, str]] = None) -> None:
        super().__init__()
        self.model = model
        self.validation_metric = validation_metric
        # each split's metrics: torchmetrics states are not saved (not persistent), so the weights are the model's
        # (the test split adds what is too slow for every validation)
        self.metrics = nn.ModuleDict(
            {
                "val": nn.ModuleDict(model.new_metrics()),
                "test": nn.ModuleDict({**model.new_metrics(), **model.test_metrics()}),
            }
        )
        self._resume_rng: Optional[dict] = None
        self.eeap_wandb_id: Optional[str] = None

    # what the run and Lightning's tuners read of the task
    @property
    def monitor(self) -> tuple[str, str]:
        return self.model.monitor

    @property
    def eeap_config(self) -> dict:
        return self.model.eeap_config

    @property
    def eeap_data_state(self) -> dict:
        return self.model.eeap_data_state

    @property
    def registered_name(self) -> str:
        return str(self.model.registered_name)

    @property
    def optim(self) -> Any:
        return self.model.optim

    def logged_metrics(self) -> set[str]:
        return self.model.logged_metrics()

    @property
    def lr(self) -> float:
        """The learning rate (``model.optim.lr``), under the name Lightning's learning-rate finder sets."""
        return self.model.optim.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.model.optim.lr = float(value)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss, logs = self.model.training_loss(batch)
        size = self.model.batch_size(batch)
        for name, value in logs.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss", batch_size=size)
        return loss

    def evaluate(self, batch: dict, split: str) -> Any:
        """Loss and metrics of a validation or test batch, logged as ``split/name`` (the monitored metric on the
        progress bar); the task's outputs for ``validation_examples``."""
        metrics: Any = self.metrics[split]
        loss, outputs = self.model.evaluate(batch, split, dict(metrics.items()))
        shown = self.model.monitor[0].split("/", 1)[-1]
        size = self.model.batch_size(batch)
        for name, value in {"loss": loss, **dict(metrics.items())}.items():
            self.log(f"{split}/{name}", value, batch_size=size, prog_bar=name == shown, sync_dist=name == "loss")
        return outputs

    def validation_step(self, batch: dict, batch_idx: int) -> Any:
        return self.evaluate(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self.evaluate(batch, "test")

    def on_fit_start(self) -> None:
        values = self.model.hyperparameters()
        if values:
            for logger in self.loggers:
                logger.log_hyperparams(values)

    def on_train_epoch_start(self) -> None:
        self.model.start_epoch(self.current_epoch)

    def configure_optimizers(self) -> Any:
        o = self.model.optim
        groups = self.model.parameter_groups()
        params = [p for group in groups for p in group["params"]]
        optimizer: torch.optim.Optimizer
        if o.name == "sgd":
            optimizer = torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
        else:
            cls = torch.optim.Adam if o.name == "adam" else torch.optim.AdamW
            optimizer = cls(
                groups, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay, fused=self.fused_optimizer(params)
            )
        if o.scheduler == "none":
            return optimizer
        if o.scheduler == "plateau":
            metric, mode = self.validation_metric or self.model.monitor
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode=cast(Any, mode), factor=0.5, patience=o.patience
            )
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": plateau, "monitor": metric}}
        warmup = max(o.warmup_steps, 1)
        total = max(int(self.trainer.estimated_stepping_batches), warmup + 1)
        if o.scheduler == "cosine":

            def factor(step: int) -> float:
                if step < warmup:
                    return (step + 1) / warmup
                return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))
        else:

            def factor(step: int) -> float:
                return min((step + 1) / warmup, (warmup / (step + 1)) ** 0.5)

        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def fused_optimizer(self, params: list) -> bool:
        """Adam's fused kernel (one pass over all parameters instead of a loop over them; on the CPU a step takes
        ~1 ms instead of ~3 ms for the date translator) where torch has it: float parameters on the CPU or a GPU.
        Not under mixed or half precision: Lightning's precision plugins refuse to clip gradients for an optimizer
        that can unscale them itself, as the fused ones can."""
        trainer = self._trainer
        if trainer is not None and not str(trainer.precision).startswith(("32", "64")):
            return False
        return bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, map_location: Any = "cpu", **kwargs: Any) -> Any:  # type: ignore[override]
        """The trained task of a checkpoint written by ``eeap train``, wrapped for Lightning (to test or fine-tune
        it); Lightning's own classmethod, here through ``eeap.load``."""
        from eeap.model.checkpoints import load_task

        return cls(load_task(checkpoint_path, map_location))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Store the run's config, the data state (vocabularies) and the random states, so a run resumes exactly."""
        checkpoint["eeap"] = {
            "config": self.model.eeap_config,
            "data_state": self.model.eeap_data_state,
            "rng": rng_state(),
            "rng_ranks": ranks_rng_states(),  # under DDP, every rank's (each draws its own dropout)
            "wandb_id": self.eeap_wandb_id,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        from eeap.model.checkpoints import training_weights

        checkpoint["state_dict"] = training_weights(checkpoint["state_dict"])  # one written before the wrapper
        saved = checkpoint.get("eeap", {})
        ranks, trainer = saved.get("rng_ranks"), self._trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        self._resume_rng = ranks[rank] if ranks and len(ranks) == world else saved.get("rng")

    def on_train_start(self) -> None:
        """Restore the checkpoint's random states here: after the sanity check (whose data loader draws a seed) and
        before the first training batch, where an unbroken run stood when the checkpoint was written."""
        if self._resume_rng:
            set_rng_state(self._resume_rng)
            self._resume_rng = None


def rng_state() -> dict:
    """torch, numpy and Python random states in types torch.load(weights_only=True) accepts."""
    kind, keys, position, has_gauss, cached = cast(tuple, np.random.get_state())
    return {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
        "python": random.getstate(),
    }


def ranks_rng_states() -> Optional[list]:
    """Every DDP rank's ``rng_state`` (gathered: each rank saving a checkpoint calls this), or None in one process."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    states: list = [None] * dist.get_world_size()
    dist.all_gather_object(states, rng_state())
    return states


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` saved."""
    torch.set_rng_state(state["torch"])
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    random.setstate(state["python"])
