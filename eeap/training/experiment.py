"""One run's assembly, the one way every entry point builds it (``eeap train``, ``test``, ``prepare``, ``sweep``, the
Python API): the config loaded and checked once, whole, before any data is read or torch imported; the process set
up once (kernels, threads, seeds); then the data and the task built once, every default recorded in the config as
built. ``eeap test`` starts from a checkpoint's config instead of a file (``Experiment.from_checkpoint``).

Importing this module imports neither torch nor Lightning: they come with ``setup`` and the builds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union, cast

from omegaconf import DictConfig, OmegaConf

from eeap.config.loader import RunConfig, apply_overrides, check_config, resolve_config
from eeap.errors import ConfigError, DataError

if TYPE_CHECKING:
    from eeap.data.base import DataModule
    from eeap.model.task import Task
    from eeap.training.module import TrainingModule


class Experiment:
    """A checked run config and what it builds.

    # Parameters
    config: the config, loaded (``eeap.config.loader.load_config``: composed, overridden, resolved and checked).
    """

    def __init__(self, config: DictConfig) -> None:
        self.config = config
        from eeap.config.registry import recording_settings

        self.container = cast(dict, OmegaConf.to_container(config, resolve=True))
        with recording_settings() as record:
            self.run: RunConfig = check_config(self.container)
        self.settings: dict[str, Any] = dict(record)  # every section's settings as built, defaults filled in
        self._data: Optional[DataModule] = None
        self.callbacks: list = []  # the named callbacks (trainer.callbacks), built with the task
        self.checkpoint: Optional[dict] = None  # from_checkpoint's, read once
        self.source: Optional[Path] = None
        self._ready = False

    @classmethod
    def from_config(cls, config: Union[str, Path, DictConfig], overrides: Sequence[str] = ()) -> Experiment:
        """A config file's path, a shipped config's name, or a loaded config (``overrides`` apply to the first two)."""
        return cls(config if isinstance(config, DictConfig) else resolve_config(config, overrides))

    @classmethod
    def from_checkpoint(cls, checkpoint: Union[str, Path], overrides: Sequence[str] = ()) -> Experiment:
        """The run a checkpoint was trained by (its config as built), with ``overrides`` (``data.test_file=...``)."""
        from eeap.model.checkpoints import read_checkpoint

        path = Path(checkpoint)
        if not path.is_file():
            raise DataError(f"checkpoint not found: {path}")
        saved = read_checkpoint(path, f"{path}:", DataError)
        experiment = cls(apply_overrides(OmegaConf.create(saved["eeap"]["config"]), list(overrides)))
        experiment.checkpoint, experiment.source = saved, path
        return experiment

    def setup(self) -> None:
        """The process as the run wants it, once: EEAP's CPU kernels, torch's threads, every seed."""
        if self._ready:
            return
        import lightning as L

        from eeap import kernels, threads

        kernels.use(self.run.kernels)
        threads.use(self.run.threads)
        L.seed_everything(self.run.seed, workers=True, verbose=False)
        self._ready = True

    def data(self) -> DataModule:
        """The data module, built once (not prepared: ``prepare`` reads, or makes, its cache); checked to fit the
        task before any data is read."""
        if self._data is None:
            from eeap.config.registry import DATA, recording_settings
            from eeap.data.base import DataModule

            self.setup()
            with recording_settings() as record:
                data = DATA.build(self.container["data"], where="data", role=DataModule, seed=self.run.seed)
            data.cache_settings = record["data"]  # with every default: what a prepared-data cache is keyed by
            check_pairing(self.container["model"], data)
            self.settings.update(record)
            self._data = data
        return self._data

    def trained_task(self) -> Task:
        """The task of a checkpoint's experiment (``from_checkpoint``), built from this config (overrides of the model
        section apply, ``model.beam_size=5``) with the checkpoint's vocabularies and weights; in eval mode."""
        from eeap.model.checkpoints import restore_task

        if self.checkpoint is None:
            raise ConfigError("this experiment was not made from a checkpoint (Experiment.from_checkpoint)")
        self.setup()
        return restore_task(self.checkpoint, self.container, f"{self.source}:")

    def build(self) -> tuple[TrainingModule, DataModule]:
        """The task, wrapped for Lightning (``TrainingModule``; the task itself is its ``model``), and its prepared
        data; the task carries the config as built (``eeap_config``, every default filled in: the run rebuilds from
        it) and the data state (vocabularies) it was built for."""
        from eeap.config.registry import TASK, complete_config, recording_settings
        from eeap.model.task import Task
        from eeap.training.module import TrainingModule

        data = self.data()
        with recording_settings() as record:
            self.callbacks = build_callbacks(self.run)
            data.prepare()
            task = TASK.build(self.container["model"], where="model", role=Task, info=data.info())
        self.settings.update(record)
        task.eeap_config = complete_config(self.container, self.settings)
        task.eeap_data_state = data.info().state()
        keep = self.run.checkpoint
        metric = (keep.monitor, keep.mode or task.monitor[1]) if keep.monitor else None
        return TrainingModule(task, validation_metric=metric), data


def build_callbacks(run: RunConfig) -> list:
    """The callbacks named in ``trainer.callbacks`` (``eeap.training.callbacks.named``), each from its section."""
    from eeap.config.registry import CALLBACK
    from eeap.training.callbacks import RunCallback

    return [
        CALLBACK.build(section, f"trainer.callbacks.{i}", role=RunCallback)
        for i, section in enumerate(run.trainer.callbacks)
    ]


def check_pairing(model: Any, data: Any) -> None:
    """Refuse in one line a task given data of another task (a translation model on images, say)."""
    from eeap.config.registry import DATA, TASK
    from eeap.model.task import Task

    task_cls, _ = TASK.settings(model, "model", role=Task, wired=["info"])
    wanted = task_cls.info_class
    if not issubclass(data.info_class, wanted):
        fitting = [name for name in DATA.names() if issubclass(DATA.get(name).info_class, wanted)]
        raise ConfigError(
            f"data.type: task '{task_cls.registered_name}' needs its own kind of data ({', '.join(fitting)}); "
            f"data '{data.registered_name}' is for another task"
        )
