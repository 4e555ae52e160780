"""train.py's command line: one clear line and a non-zero exit for bad input, nothing lost."""

import os
import subprocess
import sys

import pytest

from eeap.training.run import main
from tests.conftest import DATES, ROOT


def run_main(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.attend.type=addtive"], "error: model.attend.type: unknown attend type 'addtive'. Valid options: "),
        (["model.encode.hiden=3"], "error: model.encode.hiden: unknown key for encode 'rnn'"),
        (
            ["data.type=dats"],
            "error: data.type: unknown data type 'dats'. Valid options: caption_folder, cluttered_shapes, coco, ct_volumes, dates, ",
        ),
        (
            ["model.attend.type=dot"],
            "error: model.attend: 'dot' attention needs query and key of one size, got 128 and 256",
        ),
        (["data.type=parallel", "data.train=nothere.tsv"], "error: data.train: file not found: nothere.tsv"),
        (["trainer.accelerator=tpu"], "error: trainer: Requirement 'torch_xla"),
        (["logger.use=[wandb, tensorbord]"], "error: logger.use: unknown logger 'tensorbord'"),
        (["data.batch_size=0"], "error: data.batch_size: expected int ≥ 1 for data 'dates', got int 0"),
        (["model.optim.lr=-1"], "error: model.optim.lr: expected float > 0 for the model.optim section, got int -1"),
        (["model.optim.betas=[0.9]"], "error: model.optim.betas: expected a list of 2 values, each float in [0, 1) "),
        (
            ["model.label_smoothing=2.0"],
            "error: model.label_smoothing: expected float in [0, 1] for task 'translation'",
        ),
        (["model.encode.dropout=1.5"], "error: model.encode.dropout: expected float in [0, 1) for encode 'rnn'"),
        (
            ["model.attend={type: multihead, num_heads: 3, dim: 64}"],
            "error: model.attend: multihead dim 64 is not divisible by num_heads 3",
        ),
        (
            ["data={type: digits}"],
            "error: data.type: task 'translation' needs its own kind of data (dates, gettext, number_words, parallel); "
            "data 'digits' is for another task",
        ),
        (["trainer.devices=bogus"], "error: trainer: `devices` selected with `CPUAccelerator` should be an int > 0."),
        (["trainer.max_time=soon"], "error: trainer.max_time: expected DD:HH:MM:SS (e.g. 00:01:30:00 for 90 minutes)"),
    ],
)
def test_bad_input_one_line_nonzero(capsys, tmp_path, overrides, message):
    code, out, err = run_main(capsys, DATES, *overrides, f"run_dir={tmp_path}/run")
    assert code == 2
    assert err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_print_config(capsys):
    code, out, _ = run_main(capsys, DATES, "--print-config", "model.attend.type=general", "trainer.max_epochs=2")
    assert code == 0
    assert "attend:\n    type: general\n" in out and "max_epochs: 2" in out


def test_print_config_checks_the_config_as_a_run_would(capsys):
    code, out, err = run_main(capsys, DATES, "--print-config", "model.encode.hiden=3")
    assert (code, out) == (2, "")
    assert err.startswith("error: model.encode.hiden: unknown key for encode 'rnn'") and err.count("\n") == 1


def test_existing_checkpoints_are_never_overwritten(capsys, tmp_path):
    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "last.ckpt").write_bytes(b"good")
    code, _, err = run_main(
        capsys,
        DATES,
        f"run_dir={tmp_path}/run",
        "logger=none",
        "data.train_size=50",
        "data.val_size=5",
        "data.test_size=5",
    )
    assert code == 2 and "already holds checkpoints; continue it with resume=" in err
    assert (checkpoints / "last.ckpt").read_bytes() == b"good"


def test_missing_resume_checkpoint(capsys, tmp_path):
    code, _, err = run_main(capsys, DATES, f"resume={tmp_path}/nothing.ckpt")
    assert code == 2 and "checkpoint not found" in err


def test_real_command_line_prints_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "train.py", "configs/translation/nope.yaml"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error: config file not found: configs/translation/nope.yaml, and no shipped config is named "
        "'configs/translation/nope.yaml'; did you mean translation/"
    )
    assert result.stderr.endswith("('eeap configs' lists them)\n") and result.stderr.count("\n") == 1


def test_early_stopping_fires_on_reaching_the_threshold(tmp_path):
    from eeap.config.loader import RunConfig, validate
    from eeap.training.run import build_trainer

    class Task:
        monitor = ("val/exact_match", "max")

    cfg = {"name": "x", "data": {}, "model": {}, "logger": {"use": []}, "early_stopping": {"stopping_threshold": 1.0}}
    trainer = build_trainer(validate(cfg, RunConfig), tmp_path, Task(), [])
    stopper = trainer.early_stopping_callback
    import torch

    should_stop, reason = stopper._evaluate_stopping_criteria(torch.tensor(1.0))
    assert should_stop and "Stopping threshold reached" in reason
    assert not stopper._evaluate_stopping_criteria(torch.tensor(0.999))[0]


def test_a_run_folder_below_a_file_is_refused_before_training(capsys, tmp_path):
    (tmp_path / "afile").write_text("")
    code, _, err = run_main(capsys, DATES, f"run_dir={tmp_path}/afile/run", "logger=none")
    assert (
        code == 2
        and err
        == f"error: run_dir {tmp_path}/afile/run: {tmp_path}/afile is a file, not a folder; give another run_dir\n"
    )


def test_predict_batch_size_must_be_positive(capsys, tmp_path):
    from eeap.serving.inference import main as predict_main

    assert predict_main([str(tmp_path / "any.ckpt"), "--batch-size", "0"]) == 2
    assert capsys.readouterr().err == "error: --batch-size must be at least 1, got 0\n"


def test_eeap_debug_shows_the_traceback_above_the_error_line():
    command = [sys.executable, "train.py", str(DATES), "model.attend.type=addtive", "logger=none"]
    plain = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    debug = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "EEAP_DEBUG": "1"})
    line = "error: model.attend.type: unknown attend type 'addtive'"
    assert plain.returncode == debug.returncode == 2
    assert plain.stderr.startswith(line) and "Traceback" not in plain.stderr
    assert debug.stderr.startswith("Traceback (most recent call last):") and "ConfigError" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith(line)


def test_lightning_trainer_arguments_beyond_eeaps_are_checked_by_lightnings_signature_and_passed_on(tmp_path, capsys):
    from eeap.config.loader import RunConfig, validate
    from eeap.config.registry import recording_settings
    from eeap.training.run import build_trainer

    class Task:
        monitor = ("val/exact_match", "max")

    section = {"min_epochs": 3, "detect_anomaly": True, "max_epochs": 5}
    cfg = {"name": "x", "data": {}, "model": {}, "logger": {"use": []}, "trainer": section}
    with recording_settings() as record:
        run = validate(cfg, RunConfig)
    trainer = build_trainer(run, tmp_path, Task(), [])
    assert trainer.fit_loop.min_epochs == 3 and trainer._detect_anomaly
    assert record["trainer"]["min_epochs"] == 3 and record["trainer"]["max_epochs"] == 5  # the config as built
    profiled = validate({**cfg, "trainer": {"profiler": "simple"}}, RunConfig)
    assert profiled.trainer.profiler == "simple" and not hasattr(profiled.trainer, "passed_on")  # EEAP's own key
    capsys.readouterr()  # Lightning's notes on detect_anomaly
    for overrides, line in [
        (["trainer.benchmark=abc"], "error: trainer.benchmark: expected bool or null for lightning.Trainer, got str"),
        (["trainer.plugins=[]"], "error: trainer.plugins: set by the framework for lightning.Trainer"),
        (["trainer.callbacks=[{type: swa, lr: 1}]"], "error: trainer.callbacks.0.lr: unknown key for callback 'swa'"),
        (["trainer.bogus=1"], "error: trainer.bogus: unknown key for lightning.Trainer. Valid keys: accelerator,"),
    ]:
        code, _, err = run_main(capsys, DATES, *overrides, f"run_dir={tmp_path}/run")
        assert code == 2 and err.startswith(line) and err.count("\n") == 1
