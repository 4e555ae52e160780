"""EEAP: attention models from Embed, Encode, Attend and Predict parts, composed in YAML, trained with Lightning.

``import eeap`` is light: the registries know every component's name from the sources and import a component's module
only when it is built. The Python API:

- ``eeap.build(config)`` → ``(module, data)``: a config file's path (or a loaded config) built into the task wrapped
  for Lightning (``eeap.training.module.TrainingModule``; the task itself is ``module.model``) and its data module, ready for
  a Lightning ``Trainer``;
- ``eeap.load(checkpoint)`` → the trained task, a plain ``torch.nn.Module`` in evaluation mode, loaded without
  Lightning (``TaskClass.load_from_checkpoint`` does the same; ``TrainingModule.load_from_checkpoint`` wraps it);
- ``eeap.train(config)`` → the final metrics, as ``eeap train`` gives them;
- the registries ``EMBED``, ``ENCODE``, ``ATTEND``, ``PREDICT``, ``TASK``, ``DATA``: ``ATTEND.names()``,
  ``ATTEND.get("additive")``, ``ATTEND.build({"type": "additive"}, query_dim=8, key_dim=8)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, Union

from eeap.config.registry import ATTEND, DATA, EMBED, ENCODE, PREDICT, TASK, Registry
from eeap.version import __version__

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from eeap.data.base import DataModule
    from eeap.model.task import Task
    from eeap.training.module import TrainingModule

__all__ = ["__version__", "ATTEND", "DATA", "EMBED", "ENCODE", "PREDICT", "TASK", "Registry", "build", "load", "train"]


def build(config: Union[str, Path, DictConfig], overrides: Sequence[str] = ()) -> tuple[TrainingModule, DataModule]:
    """A config (a YAML path, a shipped config's name, or a config from ``eeap.config.loader.load_config``) → (the task
    wrapped for Lightning, prepared data module), assembled as every run is (``eeap.training.experiment.Experiment``)."""
    from eeap.training.experiment import Experiment

    return Experiment.from_config(config, overrides).build()


def load(checkpoint: Union[str, Path], map_location: Any = "cpu") -> Task:
    """A checkpoint written by ``eeap train`` → its task (a plain ``nn.Module``), with its data state (vocabularies),
    in eval mode; Lightning is not imported."""
    from eeap.model.checkpoints import load_task

    return load_task(checkpoint, map_location)


def train(config: Union[str, Path, DictConfig], overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Train and test the run a config describes; returns the final metrics (also in the run's metrics.json)."""
    from eeap.training.experiment import Experiment
    from eeap.training.run import train as run

    return run(Experiment.from_config(config, overrides))
