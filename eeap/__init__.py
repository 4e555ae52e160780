"""EEAP: attention models from Embed, Encode, Attend and Predict parts, composed in YAML, trained with Lightning.

``import eeap`` is light: the registries know every component's name from the sources and import a component's module
only when it is built. The Python API:

- ``eeap.build(config)`` → ``(task, data)``: a config file's path (or a loaded config) built into a task module and its
  data module, ready for a Lightning ``Trainer``;
- ``eeap.load(checkpoint)`` → the trained task, in evaluation mode (``TaskClass.load_from_checkpoint`` does the same);
- ``eeap.train(config)`` → the final metrics, as ``eeap train`` gives them;
- the registries ``EMBED``, ``ENCODE``, ``ATTEND``, ``PREDICT``, ``TASK``, ``DATA``: ``ATTEND.names()``,
  ``ATTEND.get("additive")``, ``ATTEND.build({"type": "additive"}, query_dim=8, key_dim=8)``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, Union

from eeap.registry import ATTEND, DATA, EMBED, ENCODE, PREDICT, TASK, Registry

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from eeap.data import DataModule
    from eeap.task import Task

try:
    __version__ = version("eeap")  # pyproject.toml's, the one place it is written
except PackageNotFoundError:  # the source folder imported without being installed
    __version__ = "0+unknown"
__all__ = ["ATTEND", "DATA", "EMBED", "ENCODE", "PREDICT", "TASK", "Registry", "build", "load", "train"]


def build(config: Union[str, Path, DictConfig], overrides: Sequence[str] = ()) -> tuple[Task, DataModule]:
    """A config (a YAML path, a shipped config's name, or a config from ``eeap.config.load_config``) → (task module,
    prepared data module)."""
    from eeap.run import build_run

    return build_run(config, overrides)


def load(checkpoint: Union[str, Path], map_location: Any = "cpu") -> Task:
    """A checkpoint written by ``eeap train`` → its task module, with its data state (vocabularies), in eval mode."""
    from eeap.inference import load_task

    return load_task(checkpoint, map_location)


def train(config: Union[str, Path, DictConfig], overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Train and test the run a config describes; returns the final metrics (also in the run's metrics.json)."""
    from omegaconf import DictConfig

    from eeap.config import load_config
    from eeap.run import train as run

    return run(config if isinstance(config, DictConfig) else load_config(config, overrides))
