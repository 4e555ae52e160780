"""Hyperparameter sweeps from one file that both W&B and EEAP read.

A sweep file is a W&B sweep config (``configs/sweeps/*.yaml``): ``method``, ``metric``, ``parameters`` over dotted
config keys, and a ``command`` that runs ``train.py CONFIG [fixed overrides] ${args_no_hyphens}`` — W&B's agent
expands ``${args_no_hyphens}`` to ``key=value`` pairs, which are EEAP's dotted overrides. So

- online: ``wandb sweep configs/sweeps/dates.yaml`` then ``wandb agent ENTITY/PROJECT/ID``;
- offline, with no account: ``eeap sweep configs/sweeps/dates.yaml`` runs the trials here through Optuna (the
  ``sweep`` extra): ``grid`` → GridSampler, ``random`` → RandomSampler, ``bayes`` (or ``tpe``) → TPE;
  ``early_terminate: {type: hyperband, min_iter, eta}`` prunes at validations (``ValidationPruning``). Each trial
  is a normal run folder (``<out>/trial-000``, resumable and predictable as any) and a W&B run in the sweep's group;
  the sweep ends with a table sorted by the objective, printed and written as ``results.csv``. The study is kept in
  the folder (``study.db``): a sweep run again there continues it, and several processes share it.

The objective is the metric's best validation value in the trial (the trials' checkpoints monitor it), or a
``test/`` metric of the tested checkpoint.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import signal
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Optional, Sequence, cast

from lightning.pytorch.callbacks import Callback

from eeap.errors import ConfigError, one_line
from eeap.faults import Stopped

METHODS = {"grid": "GridSampler", "random": "RandomSampler", "bayes": "TPESampler", "tpe": "TPESampler"}
DISTRIBUTIONS = ("uniform", "int_uniform", "log_uniform_values", "q_uniform", "categorical", "constant")
KNOWN_KEYS = {
    "program", "method", "metric", "parameters", "command", "run_cap", "early_terminate", "name", "description",
    "project", "entity",
}  # fmt: skip


@dataclass
class Parameter:
    """One swept key: a constant, a list of values, or a distribution (W&B's names)."""

    key: str
    distribution: str
    values: list = field(default_factory=list)
    low: float = 0.0
    high: float = 0.0
    q: Optional[float] = None

    def suggest(self, trial: Any) -> Any:
        if self.distribution == "constant":
            return self.values[0]
        if self.distribution == "categorical":
            return trial.suggest_categorical(self.key, self.values)
        if self.distribution == "int_uniform":
            return trial.suggest_int(self.key, int(self.low), int(self.high))
        if self.distribution == "log_uniform_values":
            return trial.suggest_float(self.key, self.low, self.high, log=True)
        return trial.suggest_float(self.key, self.low, self.high, step=self.q)  # uniform, q_uniform


@dataclass
class Sweep:
    """A sweep file, checked: what to train (``config`` and the fixed ``overrides`` of its command), what to vary,
    what to optimise and how."""

    path: Path
    name: str
    config: str
    overrides: list[str]
    parameters: list[Parameter]
    metric: str
    goal: str  # maximize | minimize
    method: str
    run_cap: Optional[int]
    hyperband: Optional[dict]

    @property
    def direction(self) -> str:
        return self.goal

    def grid_size(self) -> int:
        return math.prod(len(p.values) if p.distribution == "categorical" else 1 for p in self.parameters)


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a W&B sweep file (a path, or a shipped one's name: ``sweeps/dates``); every problem is one
    ConfigError line naming the key."""
    from eeap.config.loader import find_config, load_yaml

    path = find_config(path)
    spec = load_yaml(path)
    where = str(path)
    unknown = sorted(set(spec) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown sweep key '{unknown[0]}'. Valid keys: {', '.join(sorted(KNOWN_KEYS))}")
    method = spec.get("method")
    if method not in METHODS:
        raise ConfigError(f"{where}: method: expected one of {', '.join(METHODS)}, got {method!r}")
    metric = spec.get("metric")
    if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
        raise ConfigError(f"{where}: metric: expected {{name: val/..., goal: maximize|minimize}}, got {metric!r}")
    goal = metric.get("goal", "minimize")
    if goal not in ("maximize", "minimize"):
        raise ConfigError(f"{where}: metric.goal: expected maximize or minimize, got {goal!r}")
    parameters = spec.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise ConfigError(f"{where}: parameters: expected a section of dotted config keys, e.g. model.optim.lr")
    params = [parameter(key, value, where) for key, value in parameters.items()]
    if method == "grid":
        continuous = [p.key for p in params if p.distribution not in ("categorical", "constant")]
        if continuous:
            raise ConfigError(f"{where}: method grid needs 'values' for every parameter; '{continuous[0]}' has none")
    config, overrides = read_command(spec.get("command"), spec.get("program"), where)
    run_cap = spec.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or isinstance(run_cap, bool) or run_cap < 1):
        raise ConfigError(f"{where}: run_cap: expected a whole number ≥ 1, got {run_cap!r}")
    stop = spec.get("early_terminate")
    hyperband = None
    if stop is not None:
        if not isinstance(stop, dict) or stop.get("type") != "hyperband":
            raise ConfigError(f"{where}: early_terminate: expected {{type: hyperband, min_iter: N}}, got {stop!r}")
        extra = sorted(set(stop) - {"type", "min_iter", "max_iter", "eta", "s", "strict"})
        if extra:
            raise ConfigError(
                f"{where}: early_terminate: unknown key '{extra[0]}'. Valid keys: min_iter, max_iter, eta"
            )
        hyperband = {"min_resource": int(stop.get("min_iter", 1)), "reduction_factor": int(stop.get("eta", 3))}
        if stop.get("max_iter") is not None:
            hyperband["max_resource"] = int(stop["max_iter"])
    name = spec.get("name") or path.stem
    return Sweep(path, str(name), config, overrides, params, metric["name"], goal, method, run_cap, hyperband)


def parameter(key: Any, spec: Any, where: str) -> Parameter:
    """One entry of ``parameters``, in W&B's forms: ``{value}``, ``{values}``, ``{distribution, min, max[, q]}``
    or ``{min, max}`` (int_uniform for whole numbers, else uniform)."""
    at = f"{where}: parameters.{key}"
    if not isinstance(key, str) or "." not in key and key not in ("seed", "name"):
        raise ConfigError(f"{at}: expected a dotted config key such as model.optim.lr")
    if not isinstance(spec, dict):
        raise ConfigError(f"{at}: expected {{values: [...]}}, {{value: ...}} or {{distribution: ..., min, max}}")
    if "value" in spec:
        return Parameter(key, "constant", [spec["value"]])
    distribution = spec.get("distribution")
    if "values" in spec and distribution in (None, "categorical"):
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{at}.values: expected a non-empty list")
        return Parameter(key, "categorical", list(values))
    if distribution is None and "min" in spec and "max" in spec:
        whole = all(isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in ("min", "max"))
        distribution = "int_uniform" if whole else "uniform"
    if distribution not in DISTRIBUTIONS or distribution in ("categorical", "constant"):
        raise ConfigError(
            f"{at}.distribution: {distribution!r} is not supported offline. Valid options: "
            f"{', '.join(d for d in DISTRIBUTIONS if d not in ('categorical', 'constant'))}, or values: [...]"
        )
    try:
        low, high = float(spec["min"]), float(spec["max"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{at}: {distribution} needs numbers min and max") from None
    if not low < high or (distribution == "log_uniform_values" and low <= 0):
        raise ConfigError(f"{at}: expected 0 < min < max for log_uniform_values, min < max otherwise")
    q = spec.get("q") if distribution == "q_uniform" else None
    if distribution == "q_uniform" and not (isinstance(q, (int, float)) and q > 0):
        raise ConfigError(f"{at}.q: q_uniform needs a step q > 0")
    return Parameter(key, distribution, [], low, high, q)


def read_command(command: Any, program: Any, where: str) -> tuple[str, list[str]]:
    """The config and fixed overrides in a sweep's ``command`` (``${env} ${interpreter} ${program} CONFIG key=value
    ... ${args_no_hyphens}``); W&B's default command (no ``command``) passes ``--key=value``, which train.py does not
    read, so a command with ``${args_no_hyphens}`` is required."""
    if not isinstance(command, list) or "${args_no_hyphens}" not in command:
        raise ConfigError(
            f"{where}: command: expected a list ending in ${{args_no_hyphens}} (train.py reads dotted key=value "
            f"overrides), e.g. [${{env}}, ${{interpreter}}, ${{program}}, CONFIG.yaml, ${{args_no_hyphens}}]"
        )
    if program not in ("train.py", None) and not str(program).endswith("train.py"):
        raise ConfigError(f"{where}: program: expected train.py, got {program!r}")
    words = [str(w) for w in command if not (str(w).startswith("${") and str(w).endswith("}"))]
    configs = [w for w in words if w.endswith((".yaml", ".yml")) and "=" not in w]
    if len(configs) != 1:
        raise ConfigError(f"{where}: command: expected one config file (a .yaml path), found {configs or 'none'}")
    overrides = [w for w in words if "=" in w]
    other = [w for w in words if w not in configs and w not in overrides]
    if other:
        raise ConfigError(f"{where}: command: '{other[0]}' is neither a config file nor a key=value override")
    return configs[0], overrides


def override(key: str, value: Any) -> str:
    """``key=value`` as W&B's agent writes it (``${args_no_hyphens}``: Python's str of the value)."""
    return f"{key}={value}"


@dataclass
class Trial:
    number: int
    params: dict
    state: str = "running"
    value: Optional[float] = None
    run_dir: str = ""
    fit_time_s: Optional[float] = None
    message: str = ""


STUDY_FILE = "study.db"
HEARTBEAT_S = 10  # a worker's trials are marked alive this often; one silent for GRACE_S was killed and is rerun
GRACE_S = 60
MATCHING = ("method", "metric", "parameters", "command", "early_terminate")  # what a continued study must share
FINISHED = ("complete", "pruned", "failed")  # the trials a sweep counts (not stopped, running or waiting ones)


def run_sweep(
    sweep: Sweep, out: Path, trials: Optional[int] = None, seed: int = 0, until: Optional[int] = None
) -> list[Trial]:
    """Run the sweep's trials one after another in the study kept in ``out`` (``study.db``, SQLite), each a run
    folder under ``out``; returns the study's trials sorted by the objective (failed and pruned ones last), after
    writing ``results.csv`` and printing the table.

    A folder that holds the study already continues it: its finished trials are kept, a trial that was stopped (or
    whose process died) runs again with the same point, and the sweep runs until ``run_cap`` (or the grid) is
    reached; ``trials`` runs that many more. Several processes on one folder share the study (``--jobs``, or
    ``eeap sweep`` started again elsewhere): each takes the next trial, and all stop when the count is reached.
    ``until``: the number of finished trials at which to stop (what ``--jobs`` gives its workers)."""
    import optuna

    from eeap.paths import writable_folder, write_atomically

    writable_folder(out, "--out")
    config_path = resolve_config(sweep)
    fixed = list(sweep.overrides)
    if sweep.metric.startswith("val/"):  # trials' best checkpoints (and their best values) by the objective
        keys = {o.split("=", 1)[0] for o in fixed}
        if "checkpoint.monitor" not in keys:
            fixed.append(f"checkpoint.monitor={sweep.metric}")
        if "checkpoint.mode" not in keys:
            fixed.append(f"checkpoint.mode={'max' if sweep.goal == 'maximize' else 'min'}")
    if not any(o.startswith("logger.wandb.group=") for o in fixed):
        fixed.append(f"logger.wandb.group={sweep.name}")
    check_point(config_path, fixed, sweep)
    check_same_sweep(sweep, out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "sweep.yaml", sweep.path.read_text(encoding="utf-8"))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(sweep, out, seed)
    counted = len(finished(study))
    target = until or target_count(sweep, counted, trials)
    if counted >= target:
        print(f"sweep {sweep.name}: {counted} trials finished already (of {target}); --trials N runs N more")
    current: list[Any] = []  # the Optuna trial this process runs

    def objective(optuna_trial: Any) -> float:
        params = {p.key: p.suggest(optuna_trial) for p in sweep.parameters}
        trial = Trial(optuna_trial.number, params, run_dir=str(out / f"trial-{optuna_trial.number:03d}"))
        current[:] = [optuna_trial]
        optuna_trial.set_user_attr("point", params)
        optuna_trial.set_user_attr("run_dir", trial.run_dir)
        points = " ".join(override(k, v) for k, v in params.items())
        print(
            f"sweep {sweep.name}: trial {trial.number} ({len(finished(study)) + 1} of {target}): {points}", flush=True
        )
        try:
            return run_trial(sweep, config_path, fixed, trial, optuna_trial)
        finally:
            if trial.message:
                optuna_trial.set_user_attr("message", trial.message)
            if trial.fit_time_s is not None:
                optuna_trial.set_user_attr("fit_time_s", trial.fit_time_s)

    def enough(study: Any, _: Any) -> None:  # after each trial: stop once the count is reached, with the others'
        running = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING]
        if len(finished(study)) + len(running) >= target:
            study.stop()
        write_results(out, sweep, study_trials(study))

    try:  # a failed trial (a combination the model refuses) is recorded and the sweep goes on
        if counted < target:
            study.optimize(objective, catch=(TrialFailed,), callbacks=[enough])
    except Stopped as stop:  # SIGINT/SIGTERM: the trial is marked stopped and queued to run again; the table so far
        if current:
            stopped = current[0]
            stopped.set_user_attr("stopped", stop.name)
            study.tell(stopped.number, state=optuna.trial.TrialState.FAIL)
            study.enqueue_trial(stopped.params, user_attrs={"rerun_of": stopped.number})
        write_results(out, sweep, study_trials(study))
        print(format_table(sort_trials(study_trials(study), sweep.goal), sweep))
        raise
    ranked = sort_trials(study_trials(study), sweep.goal)
    write_results(out, sweep, ranked)
    print(format_table(ranked, sweep))
    return ranked


def target_count(sweep: Sweep, counted: int, trials: Optional[int]) -> int:
    """How many finished trials the study should hold at the end: ``trials`` more than it holds, else the sweep's
    ``run_cap``, else a grid's size."""
    target = counted + trials if trials else sweep.run_cap or (sweep.grid_size() if sweep.method == "grid" else None)
    if target is None:
        raise ConfigError(f"{sweep.path}: how many trials? Set run_cap in the sweep file or give --trials N")
    return target


def open_study(sweep: Sweep, out: Path, seed: int) -> Any:
    """The sweep's Optuna study in ``out/study.db``, made or loaded. Trials send a heartbeat: a trial whose process
    died (kill -9, a lost node) is failed after ``GRACE_S`` by the next worker to start a trial, and run again.
    The sampler's seed moves on with the trials already in the study, so a continued sweep does not draw its first
    points again."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = RDBStorage(
            f"sqlite:///{(out / STUDY_FILE).resolve()}",
            engine_kwargs={"connect_args": {"timeout": 60}},  # several workers write to one file
            heartbeat_interval=HEARTBEAT_S,
            grace_period=GRACE_S,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
        )
    direction = cast(Any, sweep.direction)
    study = optuna.create_study(study_name=sweep.name, storage=storage, direction=direction, load_if_exists=True)
    running = any(t.state == optuna.trial.TrialState.RUNNING for t in study.get_trials(deepcopy=False))
    offset = len(study.trials) + (os.getpid() if running else 0)  # another worker at work: draw apart from it
    study.sampler, study.pruner = sampler(sweep, seed + offset), pruner(sweep)
    return study


def check_same_sweep(sweep: Sweep, out: Path) -> None:
    """Refuse a folder whose study was made by another sweep (other parameters, metric, method or command)."""
    from eeap.config.loader import load_yaml

    previous = out / "sweep.yaml"
    if not (out / STUDY_FILE).is_file() or not previous.is_file():
        return
    old, new = load_yaml(previous), load_yaml(sweep.path)
    changed = [key for key in MATCHING if old.get(key) != new.get(key)]
    if changed:
        raise ConfigError(
            f"--out {out} holds the study of another sweep ({changed[0]} differs from its sweep.yaml); "
            "continue it with that file, or choose another --out"
        )


def study_trials(study: Any) -> list[Trial]:
    """The study's trials as the table shows them."""
    import optuna

    states = {
        optuna.trial.TrialState.COMPLETE: "complete",
        optuna.trial.TrialState.PRUNED: "pruned",
        optuna.trial.TrialState.FAIL: "failed",
        optuna.trial.TrialState.RUNNING: "running",
        optuna.trial.TrialState.WAITING: "waiting",
    }
    made = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        state, message = states[t.state], attrs.get("message", "")
        if attrs.get("stopped") or (t.state == optuna.trial.TrialState.FAIL and "run_dir" in attrs and not message):
            state, message = "stopped", f"by {attrs.get('stopped') or 'a lost process'}; run again"
        if attrs.get("rerun_of") is not None or t.system_attrs.get("failed_trial") is not None:
            again = attrs.get("rerun_of", t.system_attrs.get("failed_trial"))
            message = f"{message}; " if message else ""
            message += f"reruns trial {again}"
        made.append(
            Trial(
                t.number,
                dict(attrs.get("point", t.params)),
                state,
                t.value,
                attrs.get("run_dir", ""),
                attrs.get("fit_time_s"),
                message,
            )
        )
    return made


def finished(study: Any) -> list[Trial]:
    """The trials the sweep counts: complete, pruned or failed (not stopped ones, which run again)."""
    return [t for t in study_trials(study) if t.state in FINISHED]


def check_point(config_path: Path, fixed: list[str], sweep: Sweep) -> None:
    """Check the config with the sweep's first point before any trial runs, so a swept key that does not exist,
    or a value of the wrong type, fails at once in one line (``eeap.config.loader.check_config``)."""
    from eeap.config.loader import load_config

    first = {p.key: p.values[0] if p.values else p.low for p in sweep.parameters}
    for p in sweep.parameters:
        if p.distribution == "int_uniform":
            first[p.key] = int(p.low)
    load_config(config_path, [*fixed, *(override(k, v) for k, v in first.items())])  # checked whole


def resolve_config(sweep: Sweep) -> Path:
    """The command's config: relative to the working folder (as W&B's agent runs it), else to the sweep file's
    project (``configs/sweeps/x.yaml`` → the folder holding ``configs/``)."""
    path = Path(sweep.config)
    if path.is_file() or path.is_absolute():
        return path
    for parent in sweep.path.resolve().parents:
        if (parent / path).is_file():
            return parent / path
    return path  # load_config names it in its one line


class TrialFailed(Exception):
    """A trial that could not run to the end (its reason already recorded); Optuna marks it failed."""


def run_trial(sweep: Sweep, config_path: Path, fixed: list[str], trial: Trial, optuna_trial: Any) -> float:
    """One trial as a normal run: its objective, or ``optuna.TrialPruned`` (pruned), or ``TrialFailed`` with the
    one-line reason recorded."""
    import optuna

    from eeap.config.loader import load_config
    from eeap.training.run import train

    overrides = [*fixed, *(override(k, v) for k, v in trial.params.items()), f"run_dir={trial.run_dir}"]
    overrides.append(f"logger.wandb.name={sweep.name}-{Path(trial.run_dir).name}")
    callbacks = [ValidationPruning(optuna_trial, sweep.metric)] if sweep.metric.startswith("val/") else []
    try:
        metrics = train(load_config(config_path, overrides), callbacks=callbacks)
    except optuna.TrialPruned as pruned:
        trial.state, trial.message = "pruned", str(pruned)
        raise
    except ConfigError as e:  # a combination the model refuses (sizes that do not fit, say)
        fail(trial, one_line(e))
    value = metrics.get(f"best/{sweep.metric}", metrics.get(sweep.metric))
    trial.fit_time_s = metrics.get("fit_time_s")
    if value is None:
        fail(trial, f"metric {sweep.metric} not in the run's results ({', '.join(sorted(metrics))})")
    trial.state, trial.value = "complete", float(value)
    return float(value)


class ValidationPruning(Callback):
    """Reports the objective to the Optuna trial at every validation, numbered 1, 2, 3... (the iterations a sweep
    file's ``early_terminate.min_iter`` counts, as W&B's hyperband counts the metric's reports) with its global step
    kept in the trial (``validation_steps``), and stops a trial the pruner gives up. Optuna's Lightning callback
    reports once an epoch, which drops the reports of configs that validate several times an epoch.

    # Parameters
    trial: the Optuna trial. monitor: the metric reported (the sweep's ``metric.name``).
    """

    def __init__(self, trial: Any, monitor: str) -> None:
        self.trial, self.monitor = trial, monitor
        self.steps: list[int] = []

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        import optuna

        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None:
            return
        step = trainer.fit_loop.epoch_loop._batches_that_stepped  # the step the loggers record it at
        self.steps.append(step)
        self.trial.report(float(value), len(self.steps))
        self.trial.set_user_attr("validation_steps", self.steps)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at validation {len(self.steps)} (step {step})")


def fail(trial: Trial, message: str) -> NoReturn:
    trial.state, trial.message = "failed", message
    print(f"error: trial {trial.number}: {message}", file=sys.stderr)
    raise TrialFailed(message)


def sampler(sweep: Sweep, seed: int) -> Any:
    import optuna

    if sweep.method == "grid":
        space = {p.key: p.values for p in sweep.parameters}
        return optuna.samplers.GridSampler(space, seed=seed)
    if sweep.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def pruner(sweep: Sweep) -> Any:
    import optuna

    if sweep.hyperband is None:
        return optuna.pruners.NopPruner()
    return optuna.pruners.HyperbandPruner(**sweep.hyperband)


def sort_trials(trials: list[Trial], goal: str) -> list[Trial]:
    sign = -1.0 if goal == "maximize" else 1.0
    return sorted(trials, key=lambda t: (t.value is None, sign * t.value if t.value is not None else 0.0, t.number))


def columns(sweep: Sweep) -> list[str]:
    return ["rank", "trial", "state", sweep.metric, *(p.key for p in sweep.parameters), "fit_time_s", "run_dir"]


def rows(trials: list[Trial], sweep: Sweep) -> list[list[Any]]:
    out = []
    for rank, t in enumerate(sort_trials(trials, sweep.goal), 1):
        value = "" if t.value is None else t.value
        state = t.state if not t.message else f"{t.state}: {t.message}"
        params = [t.params.get(p.key, "") for p in sweep.parameters]
        out.append([rank, t.number, state, value, *params, "" if t.fit_time_s is None else t.fit_time_s, t.run_dir])
    return out


def write_results(out: Path, sweep: Sweep, trials: list[Trial]) -> None:
    """``results.csv``: one row per trial, best first (rewritten after every trial)."""
    import io

    from eeap.paths import write_atomically

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns(sweep))
    writer.writerows(rows(trials, sweep))
    write_atomically(out / "results.csv", buffer.getvalue())
    best = next((t for t in sort_trials(trials, sweep.goal) if t.value is not None), None)
    if best is not None:
        record = {"trial": best.number, sweep.metric: best.value, "params": best.params, "run_dir": best.run_dir}
        write_atomically(out / "best.json", json.dumps(record, indent=2) + "\n")


def format_table(trials: list[Trial], sweep: Sweep) -> str:
    """The trials as an aligned text table, best first."""

    def cell(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    table = [columns(sweep)[:-1]] + [[cell(v) for v in row[:-1]] for row in rows(trials, sweep)]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in table]
    return "\n".join(lines)


def run_jobs(sweep: Sweep, out: Path, jobs: int, trials: Optional[int], seed: int) -> list[Trial]:
    """``--jobs N``: N worker processes (``eeap sweep`` each, one study) until the sweep's count is reached; their
    output goes to ``out/worker-<i>.log``. Returns the study's trials, ranked, as ``run_sweep`` does."""
    import subprocess

    from eeap.paths import writable_folder

    writable_folder(out, "--out")
    check_same_sweep(sweep, out)
    out.mkdir(parents=True, exist_ok=True)
    study = open_study(sweep, out, seed)  # made once here, so the workers do not race to make it
    target = target_count(sweep, len(finished(study)), trials)
    command = [sys.executable, "-m", "eeap.cli", "sweep", str(sweep.path), "--out", str(out), "--until", str(target)]
    print(f"sweep {sweep.name}: {jobs} workers until {target} trials; their output in {out}/worker-*.log", flush=True)
    workers = []
    try:
        for i in range(jobs):
            with open(out / f"worker-{i}.log", "w", encoding="utf-8") as log:
                worker_seed = seed + 1000 * i  # apart from each other's draws
                workers.append(
                    subprocess.Popen([*command, "--seed", str(worker_seed)], stdout=log, stderr=subprocess.STDOUT)
                )
        codes = [worker.wait() for worker in workers]
    finally:  # stopped: each worker stops its trial (queued to run again) and writes its table. A Ctrl-C reaches
        # them with this process's group; a signal sent to this process alone is passed on after a moment
        for worker in workers:
            try:
                worker.wait(timeout=5)
            except subprocess.TimeoutExpired:
                worker.send_signal(signal.SIGINT)
        for worker in workers:
            worker.wait()
    bad = [code for code in codes if code not in (0, 1)]
    ranked = sort_trials(study_trials(study), sweep.goal)
    write_results(out, sweep, ranked)
    print(format_table(ranked, sweep))
    if bad:
        raise ConfigError(f"a sweep worker ended with exit code {bad[0]}; see {out}/worker-*.log")
    return ranked


def main(argv: Sequence[str] | None = None, prog: str = "eeap sweep") -> int:
    """``eeap sweep SWEEP.yaml [--trials N] [--out DIR] [--seed S] [--jobs N]``."""
    from eeap.errors import ArgumentParser, guarded

    parser = ArgumentParser(
        prog=prog,
        description="Run a W&B sweep file's trials offline through Optuna; each trial is a run folder, "
        "and the sweep ends with a table sorted by the objective (also results.csv).",
    )
    parser.add_argument("sweep", help="a W&B sweep file, e.g. configs/sweeps/dates.yaml")
    parser.add_argument("--trials", type=int, default=None, help="how many trials (default: run_cap, or the grid)")
    parser.add_argument("--out", default=None, help="the sweep's folder (default: runs/sweeps/<name>/<time>)")
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes sharing the study (default 1)")
    parser.add_argument("--until", type=int, default=None, help=argparse.SUPPRESS)  # what --jobs gives its workers

    def body() -> int:
        from eeap.faults import stop_on_signals

        args = parser.parse_args(argv)
        for name in ("trials", "jobs"):
            value = getattr(args, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name}: expected a whole number ≥ 1, got {value}")
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise ConfigError(
                "eeap sweep needs Optuna: pip install 'eeap[sweep]' (or run it online: wandb sweep FILE)"
            ) from None
        sweep = load_sweep(args.sweep)
        out = Path(args.out) if args.out else Path("runs", "sweeps", sweep.name, time.strftime("%Y%m%d-%H%M%S"))
        with stop_on_signals():
            if args.jobs > 1:
                ranked = run_jobs(sweep, out, args.jobs, args.trials, args.seed)
            else:
                ranked = run_sweep(sweep, out, args.trials, args.seed, args.until)
        print(f"results: {out / 'results.csv'}")
        return 0 if any(t.state == "complete" for t in ranked) else 1

    return guarded(body, prog)
