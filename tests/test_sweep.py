"""Sweeps: the shipped W&B sweep file gives train.py commands that set the swept keys; ``eeap sweep`` runs trials
offline through Optuna in a study kept in its folder (continued after a stop, shared by several processes), ranks
them and groups their W&B runs; pruning is reported at every validation."""

import csv
import json
import subprocess
import sys
import warnings

import pytest
import yaml

from eeap.errors import ConfigError
from eeap.training.sweep import load_sweep
from eeap.training.sweep import main as sweep_main
from tests.conftest import ROOT, TINY_DATES

SWEEP = ROOT / "configs" / "sweeps" / "dates.yaml"


def agent_command(spec, params):
    """The command W&B's agent runs for one point (wandb_agent.Agent._command_run, built on the SDK's own
    create_sweep_command_args)."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    variables = create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    variables.update(env=["/usr/bin/env"], interpreter=["python"], program=[spec["program"]])
    command = []
    for word in spec["command"]:
        word = str(word)
        if word.startswith("${") and word.endswith("}"):
            command += variables.get(word[2:-1]) or []
        else:
            command.append(word)
    return command


def test_the_wandb_sweep_file_runs_train_py_with_the_swept_keys():
    spec = yaml.safe_load(SWEEP.read_text())
    point = {"model.optim.lr": 0.0021, "model.attend.type": "general", "model.encode.hidden": 64}
    command = agent_command(spec, point)
    assert command[:4] == ["/usr/bin/env", "python", "train.py", "configs/translation/dates.yaml"]
    assert command[-3:] == ["model.optim.lr=0.0021", "model.attend.type=general", "model.encode.hidden=64"]
    printed = subprocess.run(
        [sys.executable, *command[2:], "--print-config"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    config = yaml.safe_load(printed)
    assert config["model"]["optim"]["lr"] == 0.0021 and config["model"]["attend"]["type"] == "general"
    assert config["model"]["encode"]["hidden"] == 64 and config["trainer"]["max_epochs"] == 8
    assert config["logger"]["wandb"]["group"] == "dates-sweep"
    sweep = load_sweep(SWEEP)  # and EEAP reads the same file
    assert sweep.method == "bayes" and sweep.metric == "val/exact_match" and sweep.run_cap == 12
    assert [p.key for p in sweep.parameters] == list(point)


def tiny_sweep(tmp_path, method="random", extra=None, parameters=None):
    spec = {
        "name": "tiny",
        "program": "train.py",
        "method": method,
        "metric": {"name": "val/token_accuracy", "goal": "maximize"},  # tiny models: exact matches are all 0
        "parameters": parameters
        or {
            "model.optim.lr": {"distribution": "log_uniform_values", "min": 0.001, "max": 0.01},
            "model.attend.type": {"values": ["additive", "general"]},
        },
        "command": [
            "${env}",
            "${interpreter}",
            "${program}",
            str(ROOT / "configs" / "translation" / "dates.yaml"),
            *[o for o in TINY_DATES if not o.startswith("logger")],
            "logger.use=[wandb]",
            "trainer.max_epochs=2",
            "early_stopping.stopping_threshold=null",
            "${args_no_hyphens}",
        ],
        **(extra or {}),
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_three_trial_sweep_ranks_its_trials_and_groups_their_wandb_runs(tmp_path, capsys):
    from tests.wandb_records import of_type, run_files

    out = tmp_path / "out"
    assert sweep_main([str(tiny_sweep(tmp_path)), "--trials", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [int(r["rank"]) for r in rows] == [1, 2, 3] and sorted(int(r["trial"]) for r in rows) == [0, 1, 2]
    values = [float(r["val/token_accuracy"]) for r in rows]
    assert values == sorted(values, reverse=True) and len(set(values)) == 3  # best first
    for row in rows:
        assert row["state"] == "complete"
        metrics = json.loads((out / f"trial-{int(row['trial']):03d}" / "metrics.json").read_text())
        assert metrics["best/val/token_accuracy"] == float(row["val/token_accuracy"])  # the trial's best validation
        config = yaml.safe_load((out / f"trial-{int(row['trial']):03d}" / "config.yaml").read_text())
        assert config["model"]["optim"]["lr"] == float(row["model.optim.lr"])
        assert config["model"]["attend"]["type"] == row["model.attend.type"]
        (run,) = of_type(run_files(out / f"trial-{int(row['trial']):03d}")[-1], "run")
        assert run.run_group == "tiny" and run.display_name == f"tiny-trial-{int(row['trial']):03d}"
    table = printed[printed.index("rank  trial") :].splitlines()[:4]
    assert table[-1].split()[0] == "3" and table[1].split()[:2] == ["1", rows[0]["trial"]]
    assert json.loads((out / "best.json").read_text())["trial"] == int(rows[0]["trial"])
    assert (out / "sweep.yaml").is_file()


def test_a_grid_sweep_visits_every_point_once(tmp_path):
    parameters = {"model.attend.type": {"values": ["additive", "general"]}, "model.optim.lr": {"value": 0.005}}
    out = tmp_path / "out"
    path = tiny_sweep(tmp_path, "grid", parameters=parameters)
    assert sweep_main([str(path), "--out", str(out)]) == 0  # no --trials: the grid's size
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert sorted(r["model.attend.type"] for r in rows) == ["additive", "general"]


def test_hyperband_prunes_at_each_validation(tmp_path, monkeypatch):
    import optuna

    validations = []

    def should_prune(trial):  # Optuna's pruner says "prune" at the first report: the callback must stop the trial
        validations.append(trial.number)
        return True

    monkeypatch.setattr(optuna.trial.Trial, "should_prune", should_prune)
    out = tmp_path / "out"
    path = tiny_sweep(tmp_path, extra={"early_terminate": {"type": "hyperband", "min_iter": 1}})
    assert sweep_main([str(path), "--trials", "2", "--out", str(out)]) == 1  # no trial completed
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["state"][:32] for r in rows] == ["pruned: pruned at validation 1 ("] * 2 and validations == [0, 1]
    assert not (out / "trial-000" / "metrics.json").exists()  # stopped at its first validation, never tested


@pytest.mark.parametrize(
    "change, message",
    [
        ({"method": "hill"}, r"method: expected one of grid, random, bayes, tpe, got 'hill'"),
        ({"metric": {"name": "val/loss", "goal": "up"}}, r"metric.goal: expected maximize or minimize"),
        ({"command": ["${program}", "x.yaml"]}, r"command: expected a list ending in \$\{args_no_hyphens\}"),
        ({"parameters": {"model.optim.lr": {"distribution": "beta", "min": 0, "max": 1}}}, r"'beta' is not supported"),
        ({"parameters": {"model.optim.lr": {"min": 0.1, "max": 0.01}}}, r"parameters.model.optim.lr: expected 0 < min"),
        ({"method": "grid"}, r"method grid needs 'values' for every parameter; 'model.optim.lr' has none"),
        ({"early_terminate": {"type": "median"}}, r"early_terminate: expected \{type: hyperband"),
        ({"controller": {"type": "local"}, "typo": 1}, r"unknown sweep key 'controller'"),
    ],
)
def test_bad_sweep_files_fail_in_one_line(tmp_path, change, message):
    path = tiny_sweep(tmp_path, extra=change)
    if "parameters" in change or "command" in change:
        spec = yaml.safe_load(path.read_text())
        spec.update(change)
        path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match=message):
        load_sweep(path)


def test_a_swept_key_that_does_not_exist_fails_before_any_trial(tmp_path, capsys):
    parameters = {"model.encode.hiden": {"values": [8, 16]}}
    code = sweep_main([str(tiny_sweep(tmp_path, parameters=parameters)), "--trials", "2", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: model.encode.hiden: unknown key")
    assert not (tmp_path / "o" / "trial-000").exists()


def test_a_run_started_by_the_wandb_agent_takes_the_run_id_the_agent_gave(tiny, tmp_path, monkeypatch):
    from eeap.training.run import train
    from tests.wandb_records import of_type, run_files

    monkeypatch.setenv("WANDB_SWEEP_ID", "sweep42")
    monkeypatch.setenv("WANDB_RUN_ID", "agentrun1")
    train(tiny("logger.use=[wandb]", "trainer.max_epochs=1", "test=false"))
    (run,) = of_type(run_files(tmp_path / "run")[-1], "run")
    assert run.run_id == "agentrun1" == (tmp_path / "run" / "wandb-id").read_text().strip()


def test_pruning_is_reported_at_every_validation_with_its_global_step(tmp_path):
    import optuna

    from eeap.training.sweep import load_sweep, open_study

    out = tmp_path / "out"
    path = tiny_sweep(tmp_path, extra={"early_terminate": {"type": "hyperband", "min_iter": 1}})
    spec = yaml.safe_load(path.read_text())
    spec["command"].insert(-1, "trainer.val_check_interval=0.25")  # four validations an epoch
    path.write_text(yaml.safe_dump(spec))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*is already reported")  # a report at a step reported before
        assert sweep_main([str(path), "--trials", "1", "--out", str(out)]) == 0
    (trial,) = open_study(load_sweep(path), out, 0).get_trials(states=[optuna.trial.TrialState.COMPLETE])
    steps = trial.user_attrs["validation_steps"]  # 10 batches an epoch, a validation every 2: 5 an epoch, 2 epochs
    assert steps == [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]  # the steps the loggers record them at
    assert sorted(trial.intermediate_values) == list(range(1, 11))  # numbered as min_iter counts them


def test_a_stopped_sweep_continues_in_its_folder(tmp_path, monkeypatch, capsys):
    import signal

    from eeap.faults import Stopped
    from eeap.training import run

    real_train, calls = run.train, []

    def stopped_at_the_second(*args, **kwargs):  # SIGINT during the second trial
        calls.append(1)
        if len(calls) == 2:
            raise Stopped(signal.SIGINT, None, "epoch 0, step 3", phase="training")
        return real_train(*args, **kwargs)

    out = tmp_path / "out"
    path = str(tiny_sweep(tmp_path, extra={"run_cap": 3}))
    monkeypatch.setattr(run, "train", stopped_at_the_second)
    assert sweep_main([path, "--out", str(out)]) == 130
    rows = {int(r["trial"]): r for r in csv.DictReader((out / "results.csv").open())}
    assert rows[0]["state"] == "complete" and rows[1]["state"].startswith("stopped: by SIGINT; run again")
    first = (out / "trial-000" / "metrics.json").read_text()
    monkeypatch.setattr(run, "train", real_train)
    assert sweep_main([path, "--out", str(out)]) == 0  # continues: the stopped point again, then one new
    rows = {int(r["trial"]): r for r in csv.DictReader((out / "results.csv").open())}
    assert sorted(rows) == [0, 1, 2, 3]
    assert [rows[n]["state"] for n in (0, 2, 3)] == ["complete", "complete: reruns trial 1", "complete"]
    for key in ("model.optim.lr", "model.attend.type"):
        assert rows[2][key] == rows[1][key]  # the stopped trial's point, run again
    assert (out / "trial-000" / "metrics.json").read_text() == first  # a finished trial is kept, not rerun
    assert "3 trials finished already (of 3)" in (
        sweep_main([path, "--out", str(out)]) == 0 and capsys.readouterr().out
    )
    assert sweep_main([path, "--out", str(out), "--trials", "1"]) == 0  # one more
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 5 and sum(r["state"].startswith("complete") for r in rows) == 4
    other = tiny_sweep(
        tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path,
        method="grid",
        parameters={"model.attend.type": {"values": ["dot"]}},
    )
    assert sweep_main([str(other), "--out", str(out)]) == 2
    assert "holds the study of another sweep (method differs" in capsys.readouterr().err


def test_two_processes_share_one_study(tmp_path):
    from eeap.training.sweep import load_sweep, open_study

    path = tiny_sweep(tmp_path, extra={"run_cap": 4})
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "eeap.cli", "sweep", str(path), "--out", str(out), "--jobs", "2"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert sorted(int(r["trial"]) for r in rows) == [0, 1, 2, 3] and {r["state"] for r in rows} == {"complete"}
    points = {(r["model.optim.lr"], r["model.attend.type"]) for r in rows}
    assert len(points) == 4  # the workers drew apart
    logs = [(out / f"worker-{i}.log").read_text() for i in range(2)]
    assert all("sweep tiny: trial" in log for log in logs)  # both took trials
    study = open_study(load_sweep(path), out, 0)
    assert len(study.trials) == 4
