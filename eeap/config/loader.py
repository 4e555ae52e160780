"""YAML configs: composition with ``defaults``, dotted command-line overrides, interpolation, typed validation.

A config is a YAML file's path or the name of one that ships with EEAP (``translation/dates``: ``eeap configs`` lists
them). It may start with ``defaults: [other.yaml, ...]`` (paths relative to the file, or shipped configs' names such as
``trainer/default``); those are merged in order and the file's own keys on top. A section given another ``type`` than the one it had replaces it whole. Overrides ``a.b.c=value`` are applied last; a value is read as YAML
(``3`` is an int, ``[1, 2]`` a list, ``null`` None). Changing a component's ``type`` on the command line starts that
section afresh: its other keys take the new component's defaults unless they are overridden too.
``logger=none`` turns every logger off. ``${a.b}`` interpolates another key.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Sequence, Union, cast

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from eeap.config.registry import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    Range,
    check_arguments,
    join,
    record_settings,
)
from eeap.errors import ConfigError, one_line


@dataclass
class TrainerConfig:
    """Arguments passed to ``lightning.Trainer``. These are EEAP's own checks; any other argument of Lightning's
    ``Trainer`` whose value is plain data (``benchmark``, ``profiler: simple``, ``detect_anomaly``, ``min_epochs``,
    ...) is checked against Lightning's own signature and passed on, except those EEAP sets (``set_by_eeap``)."""

    set_by_eeap = ("default_root_dir", "logger", "plugins")
    built_by_eeap = ("callbacks", "profiler")  # EEAP's fields that name things it builds, not Trainer values

    @staticmethod
    def passthrough() -> type:
        import lightning as L

        return L.Trainer

    accelerator: str = "auto"
    devices: Union[int, str, list] = "auto"
    strategy: str = "auto"
    num_nodes: PositiveInt = 1
    precision: Union[str, int] = "32-true"
    max_epochs: Annotated[int, Range(low=-1)] = 10  # -1: no limit
    max_steps: Annotated[int, Range(low=-1)] = -1
    max_time: Optional[str] = None
    gradient_clip_val: Optional[NonNegativeFloat] = None
    gradient_clip_algorithm: Literal["norm", "value"] = "norm"
    accumulate_grad_batches: PositiveInt = 1
    val_check_interval: Union[PositiveInt, Annotated[float, Range(0, 1, open_low=True)]] = 1.0  # batches or epochs
    check_val_every_n_epoch: PositiveInt = 1
    log_every_n_steps: PositiveInt = 50
    num_sanity_val_steps: Annotated[int, Range(low=-1)] = 2  # -1: the whole validation set
    deterministic: Union[bool, str] = False
    fast_dev_run: Union[bool, NonNegativeInt] = False
    overfit_batches: Union[NonNegativeInt, Annotated[float, Range(0, 1)]] = 0.0
    limit_train_batches: Union[NonNegativeInt, Annotated[float, Range(0, 1)]] = 1.0
    limit_val_batches: Union[NonNegativeInt, Annotated[float, Range(0, 1)]] = 1.0
    limit_test_batches: Union[NonNegativeInt, Annotated[float, Range(0, 1)]] = 1.0
    enable_progress_bar: bool = True
    # named callbacks (eeap.training.callbacks.named): [swa, {type: lr_finder, max_lr: 0.1}, {type: accumulate, ...}]
    callbacks: list = field(default_factory=list)
    profiler: Optional[Literal["simple", "advanced", "pytorch"]] = None  # its report goes in the run folder

    def __post_init__(self) -> None:
        self.callbacks = [{"type": c} if isinstance(c, str) else c for c in self.callbacks]
        if self.max_time is not None and not re.fullmatch(r"\d+:\d{1,2}:\d{1,2}:\d{1,2}", self.max_time):
            raise ConfigError(
                f"trainer.max_time: expected DD:HH:MM:SS (e.g. 00:01:30:00 for 90 minutes), got {self.max_time!r}"
            )


@dataclass
class WandbConfig:
    """Weights & Biases options; ``offline`` needs no account and never blocks (``wandb sync`` uploads later)."""

    project: str = "eeap"
    entity: Optional[str] = None
    mode: Literal["offline", "online", "disabled"] = "offline"
    name: Optional[str] = None  # the run's display name (default: <name>-<run folder>)
    group: Optional[str] = None  # e.g. a sweep's or an ablation's runs together
    job_type: Optional[str] = None
    tags: list = field(default_factory=list)
    notes: Optional[str] = None
    log_model: bool = False
    save_code: bool = False


@dataclass
class TensorBoardConfig:
    """TensorBoard event files in ``<run_dir>/tensorboard`` (``tensorboard --logdir runs``); the ``tensorboard``
    extra."""

    log_graph: bool = False


@dataclass
class MLflowConfig:
    """MLflow, with a local store by default (``mlflow ui --backend-store-uri sqlite:///runs/<name>/mlflow.db``); the
    ``mlflow`` extra.

    ``tracking_uri``: null is a SQLite file beside the run folder (``runs/<name>/mlflow.db``, artifacts in
    ``runs/<name>/mlartifacts``: one store for a config's runs); a server's address (``http://...``) logs there. A resumed run continues its MLflow
    run (its id kept in the run folder)."""

    experiment_name: str = "eeap"
    tracking_uri: Optional[str] = None
    run_name: Optional[str] = None  # default: <name>-<run folder>
    tags: dict = field(default_factory=dict)
    log_model: bool = False


@dataclass
class LoggerConfig:
    """Which loggers run, several at once: any of ``wandb``, ``csv``, ``tensorboard``, ``mlflow``; an empty list (or
    ``logger=none``) turns logging off."""

    use: list = field(default_factory=lambda: ["wandb", "csv"])
    wandb: WandbConfig = field(default_factory=WandbConfig)
    tensorboard: TensorBoardConfig = field(default_factory=TensorBoardConfig)
    mlflow: MLflowConfig = field(default_factory=MLflowConfig)


@dataclass
class CheckpointConfig:
    """Best and last checkpoints; ``monitor: null`` takes the task's own validation metric."""

    monitor: Optional[str] = None
    mode: Optional[Literal["min", "max"]] = None
    save_top_k: Annotated[int, Range(low=-1)] = 1  # -1: keep every checkpoint
    save_last: bool = True


@dataclass
class EarlyStoppingConfig:
    """Stop when the monitored metric stops improving, or reaches ``stopping_threshold``; ``patience: null`` is off.
    ``monitor`` unset: the task's metric, whatever ``checkpoint.monitor`` names (a threshold is the task metric's)."""

    monitor: Optional[str] = None
    mode: Optional[Literal["min", "max"]] = None
    patience: Optional[NonNegativeInt] = None
    min_delta: NonNegativeFloat = 0.0
    stopping_threshold: Optional[float] = None


@dataclass
class ClusterConfig:
    """Jobs that a cluster's launcher starts (SLURM's ``srun``, ``torchrun``): ``requeue`` asks SLURM to run the job
    again when its warning signal (``#SBATCH --signal=USR1@90``) or its time limit stops the run, and the requeued job
    continues from ``last.ckpt``; ``timeout`` is how long, in seconds, a rank waits for the others (to meet at the
    start, and in every exchange) before the job ends with one line."""

    requeue: bool = False
    timeout: Annotated[float, Range(low=1)] = 1800.0


@dataclass
class RunConfig:
    """The top level of an EEAP config. ``data`` and ``model`` are component sections ``{type: NAME, ...}``."""

    name: str
    data: dict
    model: dict
    seed: Annotated[int, Range(0, 2**32 - 1)] = 0  # numpy's seeds are 32-bit
    run_dir: Optional[str] = None
    resume: Optional[str] = None
    test: bool = True
    kernels: Literal["auto", "fused", "reference"] = "auto"  # EEAP's fused CPU kernels (eeap.kernels)
    threads: Optional[PositiveInt] = (
        None  # CPU threads for every phase; null: torch's, and one for search (eeap.threads)
    )
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)


def shipped_folder() -> Path:
    """The folder of the configs that ship with EEAP (the package ``eeap.configs``: ``configs/`` in a checkout)."""
    import eeap.configs

    return Path(cast(str, eeap.configs.__file__)).parent


def shipped_configs() -> list[str]:
    """The shipped configs' names (``translation/dates``), sorted."""
    root = shipped_folder()
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


def shipped_config(name: str) -> Optional[Path]:
    """A shipped config by name (``translation/dates``, ``translation/dates.yaml`` or a checkout's
    ``configs/translation/dates.yaml``), or None when no shipped config has that name."""
    stem = name.removeprefix("configs/").removesuffix(".yaml")
    if stem in shipped_configs():
        return shipped_folder() / f"{stem}.yaml"
    return None


def find_config(name: str | Path, base: Optional[Path] = None) -> Path:
    """The file a config name means: a path that exists (relative to ``base``, the including file's folder, for
    ``defaults``), else the shipped config of that name. A name that is neither raises ConfigError, with the nearest
    shipped names."""
    path = base / name if base is not None else Path(name)
    if path.exists():
        return path
    found = shipped_config(Path(name).as_posix())
    if found is not None:
        return found
    raise unknown_config(str(name), f"config file not found: {path}, and no")


def unknown_config(name: str, lead: str = "no") -> ConfigError:
    """The error for a name that no shipped config has, with the nearest names; ``lead`` starts the line."""
    stem = name.removeprefix("configs/").removesuffix(".yaml")
    close = difflib.get_close_matches(stem, shipped_configs(), n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return ConfigError(f"{lead} shipped config is named '{name}'{hint} ('eeap configs' lists them)")


def load_yaml(path: Path) -> dict:
    """Read one YAML file into a dict; a missing or malformed file raises ConfigError."""
    if path.is_dir():
        raise ConfigError(f"config {path} is a folder; give a YAML file, e.g. configs/translation/dates.yaml")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    from eeap.paths import decode_text

    try:
        data = yaml.safe_load(decode_text(path.read_bytes(), str(path), "config"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty; a config names at least name, data and model")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def compose(path: str | Path) -> DictConfig:
    """Load a config (a file, or a shipped config's name) with its ``defaults`` merged under it (interpolations are
    left for later)."""
    return OmegaConf.create(compose_dict(find_config(path), ()))


def compose_dict(path: Path, seen: tuple[Path, ...]) -> dict:
    if path.resolve() in seen:
        raise ConfigError(f"{path}: includes itself through 'defaults'")
    data = load_yaml(path)
    if "logger" in data and data["logger"] in ("none", None, False):  # as logger=none on the command line
        data["logger"] = {"use": []}
    defaults = data.pop("defaults", [])
    if not isinstance(defaults, list) or not all(isinstance(d, str) for d in defaults):
        raise ConfigError(f"{path}: 'defaults' must be a list of config files or shipped configs' names")
    merged: dict = {}
    try:
        for part in [compose_dict(find_config(d, path.parent), seen + (path.resolve(),)) for d in defaults] + [data]:
            drop_retyped(merged, part)
            merged = cast(dict, OmegaConf.to_container(OmegaConf.merge(merged, part), resolve=False))
    except OmegaConfBaseException as e:
        raise ConfigError(f"{path}: {one_line(e)}") from None
    return merged


def drop_retyped(base: dict, top: dict) -> None:
    """Remove from ``base`` the sections to which ``top`` gives another ``type``: a new type starts afresh."""
    for key, new in top.items():
        old = base.get(key)
        if not (isinstance(new, dict) and isinstance(old, dict)):
            continue
        if "type" in new and new["type"] != old.get("type"):
            del base[key]
        else:
            drop_retyped(old, new)


def apply_overrides(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """Apply ``key=value`` overrides; a ``....type`` override that changes the type resets its section first, and so
    does a whole section given with another ``type``."""
    parsed = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value (e.g. trainer.max_epochs=3)")
        key, raw = item.split("=", 1)
        if not key:
            raise ConfigError(f"override '{item}' has no key")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        if key == "logger" and value in ("none", None, False):
            key, value = "logger.use", []
        parsed.append((key, value))
    for key, value in sorted(parsed, key=lambda kv: not kv[0].endswith(".type")):
        if key.endswith(".type"):
            section = key.rsplit(".", 1)[0]
            current = OmegaConf.select(cfg, section, default=None)
            if current is not None and OmegaConf.select(cfg, key, default=None) != value:
                OmegaConf.update(cfg, section, {"type": value}, merge=False)
                continue
        if isinstance(value, dict) and "type" in value:  # a whole section with a new type also starts afresh
            current = OmegaConf.select(cfg, key, default=None)
            if isinstance(current, DictConfig) and current.get("type") != value["type"]:
                OmegaConf.update(cfg, key, value, merge=False)
                continue
        try:
            OmegaConf.update(cfg, key, value, merge=True, force_add=True)
        except OmegaConfBaseException as e:
            raise ConfigError(f"override '{key}': {one_line(e)}") from None
    return cfg


def resolve_config(path: str | Path, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose, override and resolve a config (a file, or a shipped config's name), unchecked."""
    cfg = apply_overrides(compose(path), list(overrides))
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as e:
        raise ConfigError(f"interpolation: {one_line(e)}") from None
    return cfg


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose, override, resolve and check a run config, whole (``check_config``)."""
    cfg = resolve_config(path, overrides)
    check_config(cast(dict, OmegaConf.to_container(cfg)))
    return cfg


def check_config(container: dict) -> RunConfig:
    """Check a whole config without reading data, building the model or importing torch (the components'
    signatures are read from their sources, ``eeap.config.sources``): the run's sections, the named callbacks, the data
    section's keys and every component section of the model (names, keys, types, ranges); what needs the data
    (sizes, vocabularies) or a built part is checked when the model is built."""
    from eeap.config.registry import (  # the registries read sources; nothing imported
        CALLBACK,
        DATA,
        TASK,
        check_sections,
    )

    run = validate(container, RunConfig)
    for i, section in enumerate(run.trainer.callbacks):
        CALLBACK.check(section, f"trainer.callbacks.{i}", wired=())
    if run.trainer.accumulate_grad_batches != 1 and any(c.get("type") == "accumulate" for c in run.trainer.callbacks):
        raise ConfigError(
            "trainer.accumulate_grad_batches: a schedule (trainer.callbacks: accumulate) sets it; leave it at 1"
        )
    DATA.check(container["data"], "data", wired=["seed"])
    TASK.check(container["model"], "model", wired=["info"])
    check_sections(container["model"], "model")
    return run


def validate(values: Any, schema: type, where: str = "") -> Any:
    """Check a mapping against a dataclass schema (keys, types, nested sections) and return the dataclass."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'}: expected a section of keys, got {type(values).__name__} {values!r}")
    hints = typing.get_type_hints(schema)
    nested: dict[str, Any] = {name: t for name, t in hints.items() if dataclasses.is_dataclass(t)}
    flat = {k: v for k, v in values.items() if k not in nested}
    passed_on: dict[str, Any] = {}
    if hasattr(schema, "passthrough"):  # keys beyond the schema's go to the library it configures, checked there
        fields = {f.name for f in dataclasses.fields(schema)}
        passed_on = {k: v for k, v in flat.items() if k not in fields}
        flat = {k: v for k, v in flat.items() if k in fields}
        if passed_on:
            target = schema.passthrough()
            label = f"{target.__module__.split('.')[0]}.{target.__name__}"
            check_arguments(target, passed_on, where, wired=set(getattr(schema, "set_by_eeap", ())), label=label)
    check_arguments(schema, flat, where, label=f"the {where or 'top'} section")
    built = {k: validate(values[k], nested[k], join(where, k)) for k in nested if k in values}
    result = schema(**flat, **built)
    if passed_on:
        result.passed_on = passed_on
    if where:  # a section (the top level's keys are recorded one by one, as sections of their own)
        record_settings(where, {**dataclasses.asdict(result), **passed_on})
    return result


def to_yaml(cfg: DictConfig) -> str:
    """The resolved config as YAML text."""
    return OmegaConf.to_yaml(cfg, resolve=True)
