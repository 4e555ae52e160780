"""Loggers (W&B offline by default, CSV) and the one helper every task uses to log a figure."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from eeap.errors import ConfigError

if TYPE_CHECKING:
    from eeap.model.task import Example

LOGGERS = ("wandb", "csv", "tensorboard", "mlflow")
EXTRAS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}  # logger: (module, extra)


WANDB_ID_FILE = "wandb-id"  # in the run folder: the W&B run a resumed run continues
MLFLOW_ID_FILE = "mlflow-run-id"  # the MLflow run a resumed run continues


def wandb_run_id(run_dir: Path, known: str | None = None) -> tuple[str, bool]:
    """The W&B run id of a run folder and whether it continues one: ``known`` (from the checkpoint resumed) or the id
    kept in the folder; for a new run, the id W&B's sweep agent gave it (``WANDB_RUN_ID`` with ``WANDB_SWEEP_ID``)
    or a new one, written to the folder."""
    path = run_dir / WANDB_ID_FILE
    if known:
        return known, True
    if path.is_file():
        return path.read_text(encoding="utf-8").strip(), True
    if os.environ.get("WANDB_SWEEP_ID") and os.environ.get("WANDB_RUN_ID"):  # W&B's sweep agent chose this run's id
        run_id = os.environ["WANDB_RUN_ID"]
        from eeap.paths import write_atomically

        write_atomically(path, run_id + "\n")
        return run_id, False
    import secrets

    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    from eeap.paths import write_atomically

    run_id = secrets.token_hex(4)  # 8 characters, as W&B's own ids
    if getattr(rank_zero_only, "rank", 0) == 0:
        write_atomically(path, run_id + "\n")
    return run_id, False


def build_loggers(run: Any, run_dir: Path, wandb_id: str | None = None, resume_step: int | None = None) -> list:
    """The loggers named in ``logger.use``, writing under ``run_dir``; the resolved config goes in as hyperparameters.

    A resumed run continues its experiment: the same W&B run (its id kept in the run folder and the checkpoint,
    ``wandb_id``), and rows appended to the same ``csv/metrics.csv`` after the rows up to ``resume_step`` (the
    checkpoint's last logged step: rows a killed run logged after its checkpoint are logged again by the resumed
    run, so they are dropped first)."""
    from lightning.pytorch.loggers import WandbLogger

    unknown = [name for name in run.logger.use if name not in LOGGERS]
    if unknown:
        raise ConfigError(
            f"logger.use: unknown logger '{unknown[0]}'. Valid options: {', '.join(LOGGERS)} (or logger=none)"
        )
    for name in run.logger.use:
        if name in EXTRAS:
            import importlib.util

            module, extra = EXTRAS[name]
            if importlib.util.find_spec(module) is None:
                raise ConfigError(
                    f"logger.use: '{name}' needs the {module} package: pip install 'eeap[{extra}]' "
                    f"(or leave it out of logger.use)"
                )
    loggers: list[Any] = []
    if "csv" in run.logger.use:
        csv_logger = AppendingCSVLogger(save_dir=str(run_dir), name="csv", version="")
        csv_logger.resume_step = resume_step
        loggers.append(csv_logger)
    if "wandb" in run.logger.use:
        wb = run.logger.wandb
        mode = wb.mode
        quiet_wandb()
        if mode == "online" and not has_wandb_credentials():
            warnings.warn(
                "logger.wandb.mode=online but no W&B account is set up (WANDB_API_KEY or `wandb login`, "
                "with WANDB_BASE_URL for a server of your own); "
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
    if "tensorboard" in run.logger.use:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(
            TensorBoardLogger(
                save_dir=str(run_dir), name="tensorboard", version="", log_graph=run.logger.tensorboard.log_graph
            )
        )
    if "mlflow" in run.logger.use:
        loggers.append(mlflow_logger(run, run_dir))
    return loggers


def mlflow_logger(run: Any, run_dir: Path) -> Any:
    """MLflow's logger for a run folder: a local store beside it (``mlflow.db``, SQLite, and ``mlartifacts/``; MLflow
    3 refuses its older plain-file store) unless a tracking URI is given; the run id
    kept in the folder, so a resumed run continues its MLflow run."""
    from lightning.pytorch.loggers import MLFlowLogger
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    from eeap.paths import write_atomically

    section = run.logger.mlflow
    store = run_dir.resolve().parent  # one store for the runs beside this one (runs/<name>/)
    uri = section.tracking_uri or f"sqlite:///{store / 'mlflow.db'}"
    id_file = run_dir / MLFLOW_ID_FILE
    known = id_file.read_text(encoding="utf-8").strip() if id_file.is_file() else None
    logger = MLFlowLogger(
        experiment_name=section.experiment_name,
        run_name=section.run_name or f"{run.name}-{run_dir.name}",
        tracking_uri=uri,
        tags=dict(section.tags) or None,
        save_dir=None,
        log_model=section.log_model,
        run_id=known,
        artifact_location=None if section.tracking_uri else (store / "mlartifacts").as_uri(),
    )
    if getattr(rank_zero_only, "rank", 0) == 0 and known is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(id_file, f"{logger.run_id}\n")  # creates the MLflow run
    return logger


def record_config(trainer: Any, config: dict, path: Path, resuming: bool) -> None:
    """The config as built (every default filled in) as each logger's hyperparameters; MLflow also keeps the
    run folder's config.yaml as an artifact, and, since its parameters cannot change, a resumed run (say with more
    epochs) leaves the first ones and only replaces that file."""
    from lightning.pytorch.loggers import MLFlowLogger

    for logger in trainer.loggers:
        if isinstance(logger, MLFlowLogger):
            if not resuming:
                logger.log_hyperparams(config)
            if trainer.is_global_zero:
                logger.experiment.log_artifact(logger.run_id, str(path))
        else:
            logger.log_hyperparams(config)


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

    resume_step: Optional[int] = None

    @property
    def experiment(self) -> Any:
        if getattr(self, "_experiment", None) is None:
            self._experiment = AppendingWriter(log_dir=self.log_dir, resume_step=self.resume_step)
        return self._experiment


def _writer_base() -> type:
    from lightning.pytorch.loggers.csv_logs import ExperimentWriter

    return ExperimentWriter


class AppendingWriter(_writer_base()):  # type: ignore[misc]
    """Keeps an existing metrics.csv and its columns (Lightning's writer deletes it), without its rows after
    ``resume_step``."""

    def __init__(self, log_dir: str, resume_step: Optional[int] = None) -> None:
        self.resume_step = resume_step
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        import csv
        import io

        from eeap.paths import write_atomically

        if not os.path.isfile(self.metrics_file_path):
            return
        with open(self.metrics_file_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = list(reader.fieldnames or [])
            rows = list(reader)
        self.metrics_keys = sorted(columns)
        if self.resume_step is None or "step" not in columns:
            return
        kept = [row for row in rows if not row["step"] or int(float(row["step"])) <= self.resume_step]
        if len(kept) < len(rows):
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=columns)  # as Lightning writes it
            writer.writeheader()
            writer.writerows(kept)
            write_atomically(Path(self.metrics_file_path), buffer.getvalue())


def has_wandb_credentials() -> bool:
    """Whether W&B can log in without a prompt, by the wandb SDK's own check and without a network call: an API key
    in ``WANDB_API_KEY``, W&B's settings files, or the netrc entry ``wandb login`` wrote for the server W&B is set
    to (``WANDB_BASE_URL``: a company's own server as well as the public one)."""
    import wandb

    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "dryrun", "disabled"):
        return True  # W&B runs without an account in these modes (and wandb.login declines to answer)
    was = wandb.setup().settings.silent
    wandb.setup(settings=wandb.Settings(silent=True))  # else it asks the server for the user's name to greet
    try:
        return bool(wandb.login(prompt=False, verify=False))
    finally:
        wandb.setup(settings=wandb.Settings(silent=was))


def quiet_wandb() -> None:
    """W&B's banner, summary and login lines not printed (``eeap.training.console`` says where the run is) unless
    ``EEAP_DEBUG=1``."""
    import wandb

    from eeap.console import debugging

    if not debugging():
        wandb.setup(settings=wandb.Settings(silent=True))


def logged_step(trainer: Any) -> int:
    """The step Lightning gives what is logged now, the x-axis of every logger (``trainer/global_step`` in W&B).

    Inside training a validation runs before its training batch is counted, so its metrics go to the number of
    optimizer steps *before* that batch; ``trainer.global_step`` has already counted it. Figures and tables logged at
    ``global_step`` would sit one step after the metrics they belong to."""
    return int(trainer.fit_loop.epoch_loop._batches_that_stepped)


def log_figure(module: Any, key: str, figure: Any) -> Path | None:
    """Save a matplotlib figure as PNG under ``<run_dir>/figures/`` and send it to the loggers that show images
    (W&B, TensorBoard, MLflow), at the step of the metrics logged with it; rank 0 only.

    Returns the PNG's path (None on other ranks).
    """
    from eeap.model.plotting import save_figure

    trainer = module.trainer
    if not trainer.is_global_zero:  # figures are made outside pyplot: dropping one frees it
        return None
    step = logged_step(trainer)
    name = f"{key.replace('/', '_')}-step{step:07d}.png"
    path = save_figure(figure, Path(trainer.default_root_dir) / "figures" / name)
    send_image(trainer, key, path, step)
    return path


def send_image(trainer: Any, key: str, path: Path, step: int) -> None:
    """A PNG already in the run folder, to every logger that shows images."""
    from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=step)
        elif isinstance(logger, TensorBoardLogger):
            import matplotlib.image

            pixels = matplotlib.image.imread(str(path))  # (H, W, 4) floats in [0, 1]
            logger.experiment.add_image(key, pixels[..., :3], global_step=step, dataformats="HWC")
        elif isinstance(logger, MLFlowLogger):
            logger.experiment.log_artifact(logger.run_id, str(path), artifact_path="figures")


def log_examples(module: Any, examples: list[Example], key: str = "val") -> None:
    """A validation's fixed examples: each figure as ``<key>/attention_<i>`` (a PNG in the run folder, an image in
    the loggers), and one table ``<key>/examples`` (example, input, output, reference, attention) at the step of the
    validation's metrics, so one example's attention can be followed through training. Rank 0 only."""
    trainer = module.trainer
    if not trainer.is_global_zero:
        return
    step = logged_step(trainer)
    paths = [
        log_figure(module, f"{key}/attention_{i}", e.figure) if e.figure is not None else None
        for i, e in enumerate(examples)
    ]
    from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.log({f"{key}/examples": wandb_table(examples, paths), "trainer/global_step": step})
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_text(f"{key}/examples", markdown_table(examples), global_step=step)
        elif isinstance(logger, MLFlowLogger):
            rows = [{name: text_of(value) for name, value in row.items()} for row in plain_rows(examples)]
            logger.experiment.log_dict(logger.run_id, {"step": step, "rows": rows}, f"examples/step{step:07d}.json")


TABLE_COLUMNS: list[str | int] = ["example", "input", "output", "reference", "attention"]


def plain_rows(examples: list[Example]) -> list[dict[str, Any]]:
    return [
        {"example": i, "input": e.input, "output": e.output, "reference": e.reference} for i, e in enumerate(examples)
    ]


def text_of(value: Any) -> Any:
    """A cell for a text-only logger: text and numbers as they are, an image as its shape."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    return f"image {'x'.join(map(str, getattr(value, 'shape', ())))}"


def markdown_table(examples: list[Example]) -> str:
    def cell(value: Any) -> str:
        return str(text_of(value)).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(str, TABLE_COLUMNS[:-1])) + " |", "|" + "---|" * (len(TABLE_COLUMNS) - 1)]
    lines += ["| " + " | ".join(cell(v) for v in row.values()) + " |" for row in plain_rows(examples)]
    return "\n".join(lines)


def wandb_table(examples: list[Example], figures: list[Optional[Path]]) -> Any:
    """A ``wandb.Table``: text cells as text, images as ``wandb.Image`` (masks coloured by class), the attention
    figure's PNG as an image."""
    import numpy as np
    import wandb

    def cell(value: Any, classes: int) -> Any:
        if value is None or isinstance(value, (str, int, float)):
            return value
        array = np.asarray(value)
        if classes:  # a label mask: each class a grey level, 0 black
            array = array.astype(np.float32) / max(classes - 1, 1)
        return wandb.Image(np.clip(array * 255, 0, 255).astype(np.uint8))

    table = wandb.Table(columns=TABLE_COLUMNS)
    for i, (e, path) in enumerate(zip(examples, figures)):
        table.add_data(
            i,
            cell(e.input, 0),
            cell(e.output, e.classes),
            cell(e.reference, e.classes),
            wandb.Image(str(path)) if path is not None else None,
        )
    return table
