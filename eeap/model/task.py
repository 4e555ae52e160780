"""The base of every task: a plain ``nn.Module`` built from the ``model`` section's parts, which trains through
``eeap.training.module`` and predicts, exports and plots with torch alone (this module imports neither Lightning nor
torchmetrics)."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Union

import torch
from torch import nn

from eeap.config.loader import validate
from eeap.config.registry import ATTEND, PREDICT, Fraction, NonNegativeFloat, NonNegativeInt, PositiveFloat, Role
from eeap.errors import ConfigError
from eeap.model.prediction import DecodeOptions, Problems


@dataclass
class OptimConfig:
    """``model.optim``: the optimizer and its learning-rate schedule.

    ``scheduler``: ``none``; ``cosine`` (to 0 over the run, after ``warmup_steps`` linear warm-up);
    ``plateau`` (halve when the validation metric that picks the best checkpoint, ``checkpoint.monitor`` or else the
    task's, stalls for ``patience`` validations); ``noam`` (warm-up then 1/sqrt).
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
class FinetuneConfig:
    """``model.finetune``: a pretrained image encoder frozen (its weights kept, its batch norms in inference mode, no
    gradient through it) until the epoch ``from_epoch`` (null: for the whole run), then trained at ``lr`` (default
    ``model.optim.lr``), as Show, Attend and Tell's fine-tuning does."""

    freeze: bool = False
    from_epoch: Optional[NonNegativeInt] = None
    lr: Optional[PositiveFloat] = None


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


class Task(nn.Module, Role):
    """The task role: a plain ``nn.Module`` that a builder (``from_config``) wires from built parts, and that
    predicts, exports and plots with torch alone; ``eeap.training.module.TrainingModule`` wraps it for Lightning. Subclasses
    set ``monitor`` (metric, mode) for checkpoints and give their loss and their evaluation (``training_loss``,
    ``new_metrics``, ``evaluate``).

    # Parameters
    optim: the ``model.optim`` section (see OptimConfig): how the model is trained, kept with it.
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
    def device(self) -> torch.device:
        """Where the model's parameters are (the CPU for a model without any)."""
        first = next(self.parameters(), None)
        return first.device if first is not None else torch.device("cpu")

    @abc.abstractmethod
    def metric_names(self) -> list[str]:
        """The names this task logs for its validation and test splits (``loss``, ``exact_match``, ...); the run
        checks a ``monitor`` against them before training."""

    @abc.abstractmethod
    def training_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """A training batch's loss, and the terms logged as ``train/<name>`` (``loss`` first, the loss itself)."""

    @abc.abstractmethod
    def new_metrics(self) -> dict[str, Any]:
        """A fresh set of this task's evaluation metrics for one split ({name: torchmetrics.Metric}, the names of
        ``metric_names`` but the loss); the trainer makes one set per split. torchmetrics is imported here, so a
        model that only predicts never imports it."""

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The optimizer's parameter groups (``params``, and settings of their own such as ``lr``): one group of
        every parameter that trains, by default."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def start_epoch(self, epoch: int) -> None:
        """Called as each training epoch starts (also the epoch a resumed run continues): nothing by default."""

    def test_metrics(self) -> dict[str, Any]:
        """Metrics the test split computes beyond ``new_metrics``' (too slow for every validation); none by default."""
        return {}

    @abc.abstractmethod
    def evaluate(self, batch: dict, split: str, metrics: dict[str, Any]) -> tuple[torch.Tensor, Any]:
        """A validation or test batch (``split``: ``val`` or ``test``): update ``metrics`` (``new_metrics``' set for
        the split) and return the batch's loss and what ``validation_examples`` reads (outputs, weights)."""

    def batch_size(self, batch: dict) -> int:
        """The number of examples in a batch: the length of its first tensor."""
        return len(next(v for v in batch.values() if isinstance(v, torch.Tensor)))

    def hyperparameters(self) -> dict[str, Any]:
        """Values the loggers record with the run's config (e.g. sacrebleu's signature); none by default."""
        return {}

    def example_inputs(self) -> dict[str, tuple[torch.Tensor, dict[int, str]]]:
        """What ``eeap export`` traces: example inputs by name, each with its dynamic axes ({axis: name}), of
        ``forward`` (a task exported whole) or of ``encode_inputs`` (a sequence-to-sequence task)."""
        raise ConfigError(f"export: no example inputs are defined for task '{self.registered_name}'")

    def exported_outputs(self) -> list[str]:
        """The names of ``forward``'s leading outputs that a task exported whole exports."""
        raise ConfigError(f"export: no outputs are defined for task '{self.registered_name}'")

    def validation_examples(self, batch: dict, outputs: Any) -> list[Example]:
        """The first validation batch's examples as the loggers show them (``plot_examples`` of them), from that
        batch and what ``evaluate`` returned for it; the run's ``ExampleLog`` callback logs them."""
        return []

    def logged_metrics(self) -> set[str]:
        """Every metric a run of this task logs and a ``monitor`` may name: ``train/loss`` and ``val/<name>``."""
        return {"train/loss", *(f"val/{name}" for name in self.metric_names())}

    # predict's protocol: one loop (``predict_lines``) over what each task reads, decodes and writes
    batchable = True  # inputs of one form, run a batch at a time; False: one at a time (images of any size)
    writes_files = False  # whether the outputs are files (``write_output``), written to predict's --out-dir

    def check_options(self, options: DecodeOptions) -> None:
        """Refuse, in one line, options this task cannot honour (``--n-best`` for segmentation, say)."""

    def read_input(self, text: str, number: int, problems: Problems) -> Optional[Any]:
        """One input from a line's text (not empty; numbered ``number``), or None with the reason in ``problems``."""
        raise ConfigError(f"predict: task '{self.registered_name}' reads no input lines")

    def predict_batch(
        self, items: list, texts: list[str], options: DecodeOptions, figures: bool
    ) -> tuple[list[dict], list[Any]]:
        """The records of a batch of inputs (``read_input``'s, with their lines' texts), and each one's figure (an
        attention plot; None for none) when ``figures``."""
        raise ConfigError(f"predict: task '{self.registered_name}' predicts nothing")

    def write_output(self, record: dict, out_dir: Path, number: int, text: str) -> dict:
        """For a task whose outputs are files: write line ``number``'s into ``out_dir`` and return its record."""
        return record

    @torch.no_grad()
    def predict_lines(
        self,
        lines: list[str],
        options: DecodeOptions = DecodeOptions(),
        plot_dir: Optional[str] = None,
        first: int = 1,
        out_dir: Optional[str] = None,
    ) -> tuple[list[Optional[dict]], Problems]:
        """Run the model on each line (numbered from ``first``): one record per line (``output`` and ``score``,
        more on request), None for an empty or unreadable line, which gets a message instead, never an exception;
        with ``plot_dir`` a PNG of each line's attention, with ``out_dir`` (tasks that write files) the outputs."""
        self.check_options(options)
        problems = Problems()
        outputs: list[Optional[dict]] = [None] * len(lines)
        todo: list[tuple[int, str, Any]] = []
        for number, line in enumerate(lines, first):
            text = line.strip()
            if not text:
                problems.skip(f"line {number}: empty input")
                continue
            item = self.read_input(text, number, problems)
            if item is not None:
                todo.append((number, text, item))
        folder = Path(out_dir or "predictions")
        if self.writes_files and todo:
            folder.mkdir(parents=True, exist_ok=True)
        size = options.batch_size if self.batchable else 1
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            records, figures = self.predict_batch(
                [item for _, _, item in chunk], [text for _, text, _ in chunk], options, bool(plot_dir)
            )
            for (number, text, _), record, figure in zip(chunk, records, figures):
                if self.writes_files:
                    record = self.write_output(record, folder, number, text)
                outputs[number - first] = record
                if plot_dir and figure is not None:
                    from eeap.model.plotting import save_figure

                    save_figure(figure, Path(plot_dir) / f"line{number:05d}.png")
        return outputs, problems

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, map_location: Any = "cpu") -> Any:
        """A trained model of this task from a checkpoint written by ``eeap train`` (as ``eeap.load``), refusing one
        of another task; its config rebuilds the model, its data state (vocabularies) the data's side."""
        from eeap.errors import DataError
        from eeap.model.checkpoints import load_task

        task = load_task(checkpoint_path, map_location)
        if not isinstance(task, cls):
            raise DataError(f"{checkpoint_path} holds a {type(task).__name__}, not a {cls.__name__}")
        return task


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
