"""The base of every task module: optimizer and schedule from config, exact resume, what a checkpoint carries."""

from __future__ import annotations

import abc
import math
import random
from dataclasses import dataclass
from typing import Any, Literal, Optional, Union, cast

import lightning as L
import numpy as np
import torch
import torchmetrics

from eeap.config import validate
from eeap.errors import ConfigError
from eeap.registry import ATTEND, PREDICT, Fraction, NonNegativeFloat, NonNegativeInt, PositiveFloat, Role


@dataclass
class OptimConfig:
    """``model.optim``: the optimizer and its learning-rate schedule.

    ``scheduler``: ``none``; ``cosine`` (to 0 over the run, after ``warmup_steps`` linear warm-up);
    ``plateau`` (halve when the monitored metric stalls for ``patience`` validations); ``noam`` (warm-up then 1/sqrt).
    """

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.0
    betas: tuple[Fraction, Fraction] = (0.9, 0.999)
    momentum: Fraction = 0.9
    scheduler: Literal["none", "cosine", "plateau", "noam"] = "none"
    warmup_steps: NonNegativeInt = 0
    patience: NonNegativeInt = 2


@dataclass
class Example:
    """One validation example as a task shows it: what went in, what came out, what should have, and its attention.

    ``input``, ``output``, ``reference``: text, or an image as an array (H, W) or (H, W, 3) of floats in [0, 1]
    (a label mask: integers with ``classes`` set); ``figure``: the attention figure (matplotlib) or None."""

    input: Any
    output: Any
    reference: Any = None
    figure: Any = None
    classes: int = 0  # > 0: output and reference are label masks of this many classes


class Task(L.LightningModule, Role):
    """The task role: a LightningModule that a builder (``from_config``) wires from built parts; subclasses set
    ``monitor`` (metric, mode) for checkpoints.

    # Parameters
    optim: the ``model.optim`` section (see OptimConfig).
    """

    registry_kind = "task"
    role_name = "task"
    supplied = ("info",)
    info_class: type = object  # what the task's data must give (a DataInfo subclass)
    monitor: tuple[str, str] = ("val/loss", "min")
    plot_examples: int = 0  # validation examples shown each validation (``validation_examples``)

    def __init__(self, optim: Optional[dict] = None) -> None:
        super().__init__()
        self.optim = validate(dict(optim or {}), OptimConfig, "model.optim")
        self.eeap_config: dict = {}
        self.eeap_data_state: dict = {}

    @property
    def lr(self) -> float:
        """The learning rate (``model.optim.lr``), under the name Lightning's learning-rate finder sets."""
        return self.optim.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.optim.lr = float(value)

    def configure_optimizers(self) -> Any:
        o = self.optim
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer: torch.optim.Optimizer
        if o.name == "sgd":
            optimizer = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
        else:
            cls = torch.optim.Adam if o.name == "adam" else torch.optim.AdamW
            optimizer = cls(
                params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay, fused=self.fused_optimizer(params)
            )
        if o.scheduler == "none":
            return optimizer
        if o.scheduler == "plateau":
            metric, mode = self.monitor
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

    @abc.abstractmethod
    def metric_names(self) -> list[str]:
        """The names this task logs for its validation and test splits (``loss``, ``exact_match``, ...); the run
        checks a ``monitor`` against them before training."""

    def example_inputs(self) -> dict[str, tuple[torch.Tensor, dict[int, str]]]:
        """What ``eeap export`` traces: example inputs by name, each with its dynamic axes ({axis: name}), of
        ``forward`` (a task exported whole) or of ``encode_inputs`` (a sequence-to-sequence task)."""
        raise ConfigError(f"export: no example inputs are defined for task '{self.registered_name}'")

    def exported_outputs(self) -> list[str]:
        """The names of ``forward``'s leading outputs that a task exported whole exports."""
        raise ConfigError(f"export: no outputs are defined for task '{self.registered_name}'")

    def validation_examples(self, batch: dict, outputs: Any) -> list[Example]:
        """The first validation batch's examples as the loggers show them (``plot_examples`` of them), from that
        batch and what ``validation_step`` returned for it; the run's ``ExampleLog`` callback logs them."""
        return []

    def logged_metrics(self) -> set[str]:
        """Every metric a run of this task logs and a ``monitor`` may name: ``train/loss`` and ``val/<name>``."""
        return {"train/loss", *(f"val/{name}" for name in self.metric_names())}

    def log_metrics(self, split: str, metrics: dict[str, Any], batch_size: int, prog_bar: str = "") -> None:
        """Log ``{name: value or torchmetrics.Metric}`` as ``split/name``; ``prog_bar`` names the one shown."""
        for name, value in metrics.items():
            self.log(
                f"{split}/{name}",
                value,
                batch_size=batch_size,
                prog_bar=name == prog_bar,
                sync_dist=split != "train" and not isinstance(value, torchmetrics.Metric),
            )

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, map_location: Any = "cpu", **kwargs: Any) -> Any:  # type: ignore[override]
        """A trained task from a checkpoint written by ``eeap train``: its config rebuilds the model, its data state
        (vocabularies) the data's side; Lightning's own classmethod, here through ``eeap.load``."""
        from eeap.checkpoints import load_task
        from eeap.errors import DataError

        task = load_task(checkpoint_path, map_location)
        if not isinstance(task, cls):
            raise DataError(f"{checkpoint_path} holds a {type(task).__name__}, not a {cls.__name__}")
        return task

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Store the run's config, the data state (vocabularies) and the random states, so a run resumes exactly."""
        checkpoint["eeap"] = {
            "config": self.eeap_config,
            "data_state": self.eeap_data_state,
            "rng": rng_state(),
            "rng_ranks": ranks_rng_states(),  # under DDP, every rank's (each draws its own dropout)
            "wandb_id": getattr(self, "eeap_wandb_id", None),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("eeap", {})
        ranks, trainer = saved.get("rng_ranks"), self._trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        self._resume_rng = ranks[rank] if ranks and len(ranks) == world else saved.get("rng")

    def on_train_start(self) -> None:
        """Restore the checkpoint's random states here: after the sanity check (whose data loader draws a seed) and
        before the first training batch, where an unbroken run stood when the checkpoint was written."""
        if getattr(self, "_resume_rng", None):
            set_rng_state(self._resume_rng)
            self._resume_rng = None


AttendSection = Union[dict, str, None]  # ``model.attend``: a section, or ``none`` / null for no attention


def attend_section(attend: AttendSection) -> Optional[dict]:
    """``model.attend`` as a component section, or None for ``none`` / null (no attention)."""
    if isinstance(attend, str):
        if attend != "none":
            raise ConfigError(f"model.attend: expected a section like {{type: additive}} or none, got '{attend}'")
        return None
    return attend


def build_predict(predict: dict, attend: AttendSection, role: type, **sizes: Any) -> Any:
    """The ``model.predict`` part, with the attention modules it asks for (``attention_slots``) built from
    ``model.attend`` and handed in; ``sizes`` are what the task supplies (vocabulary, encoder sizes)."""
    cls, settings = PREDICT.settings(predict, "model.predict", role=role, wired=[*sizes, "attention"])
    section = attend_section(attend)
    if section is None and cls.requires_attention:
        raise ConfigError(
            f"model.attend: predict '{cls.registered_name}' needs an attention; "
            f"none was given (e.g. model.attend={{type: multihead}})"
        )
    slots = cls.attention_slots(settings, **sizes) if section is not None else []
    attention = [ATTEND.build(section, "model.attend", role=cls.attention_role, **slot) for slot in slots]
    return PREDICT.build(predict, "model.predict", role=role, attention=attention, **sizes)


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
