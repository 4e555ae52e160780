"""The ``eeap`` command: ``train``, ``test``, ``prepare``, ``predict``, ``export``, ``sweep`` and ``components``.

- ``eeap train CONFIG [key=value ...]``: train, then test (``train.py`` is the same);
- ``eeap test CHECKPOINT [key=value ...]``: evaluate a trained model on its test split (or ``data.test_file=...``)
  without training;
- ``eeap predict CHECKPOINT [--input FILE] ...``: run a trained model on new input (``predict.py`` is the same);
- ``eeap prepare CONFIG [key=value ...]``: prepare a config's data ahead of training into its cache
  (``eeap.data.prepared``);
- ``eeap export CHECKPOINT --out DIR``: ONNX or ``torch.export`` files, or a model folder, of a trained model;
- ``eeap explore CHECKPOINT``: a local web page where the model answers what you type and shows its attention
  (``eeap.serving.explore``; the ``explore`` extra);
- ``eeap sweep SWEEP.yaml``: a W&B sweep file's trials, run offline through Optuna (``eeap.training.sweep``);
- ``eeap components [KIND [NAME]]``: what can be named in a config, with each component's keys, types and defaults;
- ``eeap configs`` lists the configs that ship with EEAP, ``eeap configs copy NAME DEST`` copies one to edit;
- ``eeap --version``.
"""

from __future__ import annotations

import inspect
import json
import sys
from typing import Any, Callable, Sequence, cast

USAGE = """usage: eeap COMMAND ...

commands:
  train CONFIG [key=value ...]     train a model from a YAML config, then test it
  test CHECKPOINT [key=value ...]  evaluate a trained model on its test split, without training
  prepare CONFIG [key=value ...]   prepare a config's data once (tokenizers, encoding), for the runs that follow
  predict CHECKPOINT [options]     run a trained model on new input (one example per line)
  export CHECKPOINT --out DIR      export a trained model (ONNX, torch.export, a model folder)
  explore CHECKPOINT|RUN_DIR       a local web page: type an input, see the output and its attention
  sweep SWEEP.yaml [--trials N]    run a W&B sweep file's trials offline (Optuna), ranked by the objective
  components [KIND [NAME]]         list what a config can name, with keys, types and defaults
  configs [copy NAME DEST]         list the configs that ship with EEAP, or copy one to edit

A CONFIG is a YAML file or a shipped config's name (eeap train translation/dates).
'eeap --version' prints the version; 'eeap COMMAND --help' says more."""


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a command; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] == "--version":
        from eeap.version import __version__

        print(f"eeap {__version__}")
        return 0
    commands: dict[str, Callable[[list[str]], int]] = {
        "train": train_command,
        "test": test_command,
        "prepare": prepare_command,
        "predict": predict_command,
        "export": export_command,
        "explore": explore_command,
        "sweep": sweep_command,
        "components": components_command,
        "configs": configs_command,
    }
    if args[0] not in commands:
        print(f"error: unknown command '{args[0]}'. Valid commands: {', '.join(commands)}", file=sys.stderr)
        return 2
    return commands[args[0]](args[1:])


def train_command(args: list[str]) -> int:
    from eeap.training.run import main as train_main

    return train_main(args, prog="eeap train")


def predict_command(args: list[str]) -> int:
    from eeap.serving.inference import main as predict_main

    return predict_main(args, prog="eeap predict")


def export_command(args: list[str]) -> int:
    from eeap.serving.export import main as export_main

    return export_main(args)


def explore_command(args: list[str]) -> int:
    from eeap.serving.explore import main as explore_main

    return explore_main(args)


def prepare_command(args: list[str]) -> int:
    from eeap.training.run import prepare_main

    return prepare_main(args)


def sweep_command(args: list[str]) -> int:
    from eeap.training.sweep import main as sweep_main

    return sweep_main(args)


def test_command(args: list[str]) -> int:
    """``eeap test CHECKPOINT [key=value ...]``: rebuild the checkpoint's data (with the overrides, e.g.
    ``data.test_file=other.tsv``), check that it matches the model, and test; prints the metrics as JSON."""
    from eeap.errors import ArgumentParser, guarded
    from eeap.faults import stop_on_signals

    parser = ArgumentParser(prog="eeap test", description="Evaluate a trained model on its test split.")
    parser.add_argument("checkpoint", help="a .ckpt written by eeap train")
    parser.add_argument(
        "overrides", nargs="*", default=[], help="dotted overrides of the run's config, e.g. data.test_file=x.tsv"
    )

    def body() -> int:
        with stop_on_signals():
            options = parser.parse_intermixed_args(args)
            metrics = evaluate(options.checkpoint, options.overrides)
        print(json.dumps(metrics, indent=2))
        return 0

    return guarded(body, "eeap test")


def evaluate(checkpoint: str, overrides: Sequence[str] = ()) -> dict[str, float]:
    """Test a trained model on the test split of its run's data (its config with ``overrides``), assembled as its
    run was (``Experiment.from_checkpoint``: seed, threads, kernels and cache settings as training had them)."""
    import lightning as L

    from eeap.errors import DataError
    from eeap.training.console import console_callbacks, draws_bar, quiet_lightning
    from eeap.training.experiment import Experiment
    from eeap.training.module import TrainingModule

    experiment = Experiment.from_checkpoint(checkpoint, overrides)
    task = experiment.trained_task()
    data = experiment.data()
    data.prepare()
    if data.info().state() != task.eeap_data_state:
        raise DataError(
            f"{checkpoint}: the data this config makes has other vocabularies or classes than the "
            "model was trained with; test on the same training data (data.test_file changes only the "
            "test split)"
        )
    run = experiment.run
    quiet_lightning()
    trainer = L.Trainer(
        accelerator=run.trainer.accelerator,
        devices=1,
        precision=cast(Any, run.trainer.precision),
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=draws_bar(run.trainer.enable_progress_bar),
        # Lightning's default given explicitly makes it say so in a line
        **cast(
            dict,
            {} if run.trainer.limit_test_batches == 1.0 else {"limit_test_batches": run.trainer.limit_test_batches},
        ),
        callbacks=console_callbacks(run.trainer.enable_progress_bar),
    )
    results = trainer.test(TrainingModule(task), datamodule=data, verbose=False, weights_only=True)
    return {key: float(value) for key, value in results[0].items()}


def components_command(args: list[str]) -> int:
    """``eeap components [KIND [NAME]]``: every kind's names; a kind's components with their keys; one in full."""
    from eeap.config.registry import REGISTRIES
    from eeap.errors import ArgumentParser, guarded

    parser = ArgumentParser(prog="eeap components", description="List what a config can name.")
    parser.add_argument("kind", nargs="?", help=f"one of {', '.join(REGISTRIES)}")
    parser.add_argument("name", nargs="?", help="a component's name, e.g. additive")

    def body() -> int:
        options = parser.parse_args(args)
        print(describe(options.kind, options.name))
        return 0

    return guarded(body, "eeap components")


def configs_command(args: list[str]) -> int:
    """``eeap configs``: the shipped configs, a line each; ``eeap configs copy NAME DEST``: one copied to edit."""
    from eeap.errors import ArgumentParser, guarded

    parser = ArgumentParser(
        prog="eeap configs",
        description="List the configs that ship with EEAP (train one by name: eeap train translation/dates), or copy "
        "one to edit.",
    )
    parser.add_argument("action", nargs="?", choices=("list", "copy"), default="list")
    parser.add_argument("name", nargs="?", help="with copy: a shipped config's name, e.g. translation/dates")
    parser.add_argument("dest", nargs="?", help="with copy: the file to write, or a folder to write NAME's file in")
    parser.add_argument("--force", action="store_true", help="with copy: replace a file that is already there")

    def body() -> int:
        options = parser.parse_args(args)
        if options.action == "list":
            if options.name or options.dest:
                parser.error("'eeap configs' lists and takes no names; to copy: eeap configs copy NAME DEST")
            print(list_configs())
            return 0
        if not (options.name and options.dest):
            parser.error("copy needs a NAME and a DEST: eeap configs copy translation/dates my_dates.yaml")
        written = copy_config(options.name, options.dest, options.force)
        print(f"wrote {written}; train it with: eeap train {written}")
        return 0

    return guarded(body, "eeap configs")


def list_configs() -> str:
    """What ``eeap configs`` prints: each shipped config's name and the first line of its opening comment."""
    from eeap.config.loader import shipped_configs, shipped_folder

    lines = []
    for name in shipped_configs():
        text = (shipped_folder() / f"{name}.yaml").read_text(encoding="utf-8")
        first = next((line for line in text.splitlines() if line.strip()), "")
        about = first.lstrip("# ").strip() if first.startswith("#") else ""
        lines.append(f"  {name:<30} {about if len(about) <= 86 else about[:85] + '…'}".rstrip())
    return "\n".join(["shipped configs (eeap train NAME; eeap configs copy NAME DEST to edit one):", *lines])


def copy_config(name: str, dest: str, force: bool = False) -> Any:
    """Copy the shipped config ``name`` to ``dest`` (a file, or a folder that gets NAME's file name); an existing file
    is kept unless ``force``. Returns the path written."""
    from pathlib import Path

    from eeap.config.loader import shipped_config, unknown_config
    from eeap.errors import ConfigError
    from eeap.paths import writable_file, write_atomically

    source = shipped_config(name)
    if source is None:
        raise unknown_config(name)
    target = Path(dest)
    if target.is_dir():
        target = target / source.name
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists; give another DEST, or --force to replace it")
    writable_file(target, "DEST")
    write_atomically(target, source.read_text(encoding="utf-8"))
    return target


def describe(kind: str | None = None, name: str | None = None) -> str:
    """The text ``eeap components`` prints. Without a kind it reads the sources only (no component is imported)."""
    from eeap.config.registry import REGISTRIES
    from eeap.errors import ConfigError

    if kind is None:
        lines = []
        for registry in REGISTRIES.values():
            lines.append(f"{registry.kind}:")
            lines += [f"  {n:<22} {registry.summary(n)}" for n in registry.names()]
        lines.append("\n'eeap components KIND' lists each one's keys, types and defaults.")
        return "\n".join(lines)
    if kind not in REGISTRIES:
        raise ConfigError(f"unknown kind '{kind}'. Valid kinds: {', '.join(REGISTRIES)}")
    registry = REGISTRIES[kind]
    names = [name] if name else registry.names()
    return "\n\n".join(describe_component(registry, n, full=bool(name)) for n in names)


def describe_component(registry: Any, name: str, full: bool = False) -> str:
    """A component's name, role, first docstring line and keys (``key: type = default``); ``full`` adds its
    whole docstring."""
    from eeap.config.registry import accepted_parameters, parameter_types, role_of, type_name

    cls = registry.get(name, where=f"{registry.kind}")
    supplied = supplied_parameters(cls)
    hints = parameter_types(cls)
    lines = [f"{name}  ({role_of(cls, article=False)})", f"  {registry.summary(name)}"]
    keys = []
    for key, parameter in accepted_parameters(cls).items():
        if key in supplied:
            continue
        text = f"    {key}: {type_name(hints[key]) if key in hints else 'any'}"
        if parameter.default is not inspect.Parameter.empty:
            text += f" = {json.dumps(parameter.default, default=str)}"
        keys.append(text)
    lines += ["  keys:", *keys] if keys else ["  keys: (none)"]
    if supplied:
        lines.append(f"  supplied by the task: {', '.join(sorted(supplied & set(accepted_parameters(cls))))}")
    if full and cls.__doc__:
        lines += ["", inspect.cleandoc(cls.__doc__)]
    return "\n".join(lines)


def components_markdown() -> str:
    """The component reference of the documentation (``docs/hooks.py`` writes it at each build): every registered
    name of every kind, its role, first docstring line and keys, read from the registries, so it cannot drift."""
    from eeap.config.registry import REGISTRIES, accepted_parameters, parameter_types, role_of, type_name

    lines = [
        "# Components",
        "",
        "Every name a config can use, by kind, with its keys (generated from the registries at each build of this",
        "site; `eeap components KIND NAME` prints the same, with the component's whole docstring).",
        "",
    ]
    for registry in REGISTRIES.values():
        lines += [f"## {registry.kind}", ""]
        for name in registry.names():
            cls = registry.get(name, where=registry.kind)
            supplied = supplied_parameters(cls)
            hints = parameter_types(cls)
            lines += [f"### `{name}`", "", f"*{role_of(cls, article=False)}*: {registry.summary(name)}", ""]
            rows = []
            for key, parameter in accepted_parameters(cls).items():
                if key in supplied:
                    continue
                kind = type_name(hints[key]) if key in hints else "any"
                default = (
                    "" if parameter.default is inspect.Parameter.empty else json.dumps(parameter.default, default=str)
                )
                cells = [f"`{key}`", f"`{kind}`", f"`{default}`" if default else "required"]
                rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
            if rows:
                lines += ["| key | type | default |", "| --- | --- | --- |", *rows, ""]
            else:
                lines += ["No keys.", ""]
    return "\n".join(lines)


def supplied_parameters(cls: type) -> set[str]:
    """The parameters the framework supplies to components of ``cls``'s role (declared by the role)."""
    return {key for klass in cls.__mro__ for key in vars(klass).get("supplied", ())}


if __name__ == "__main__":
    sys.exit(main())
