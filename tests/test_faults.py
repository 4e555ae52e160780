"""Faults a run survives, struck at real processes: kill -9 at any point then resume (bit for bit), SIGINT and SIGTERM
(stop within seconds, a loadable last.ckpt, no test, exit 128 + signal, the command that continues)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from eeap.config.loader import load_config
from eeap.errors import guarded, stopped_line
from eeap.faults import Stopped, stop_on_signals
from eeap.training.run import train
from tests.conftest import DATES, ROOT, TINY_DATES

NOISY = [  # dropout and teacher forcing draw random numbers every step: a resumed run must draw the same ones
    "model.encode.dropout=0.3",
    "model.predict.teacher_forcing=0.5",
    "early_stopping.stopping_threshold=null",
    "trainer.val_check_interval=0.5",  # validation and checkpoints at steps 5, 10, 15, 20 (10 batches an epoch)
    "trainer.max_epochs=2",
    "logger.use=[csv]",  # the metrics a resumed run leaves in csv/metrics.csv must be an unbroken run's
]
ENV = {**os.environ, "WANDB_MODE": "offline"}


def config(*overrides):
    return load_config(DATES, TINY_DATES + NOISY + list(overrides))


def run_worker(fault, run_dir, *overrides, timeout=300):
    return subprocess.run(
        [
            sys.executable,
            "tests/fault_worker.py",
            fault,
            str(DATES),
            *TINY_DATES,
            *NOISY,
            f"run_dir={run_dir}",
            *overrides,
        ],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def weights(run_dir):
    return torch.load(Path(run_dir) / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("unbroken") / "run"
    return train(config(f"run_dir={run_dir}")), weights(run_dir)


@pytest.mark.parametrize(
    "fault, resumes_from",
    [
        ("kill@batch_end=13", 10),  # mid-epoch: three batches after the epoch-end checkpoint
        ("kill@epoch_end=10", 10),  # right after the epoch-end validation and its checkpoints
        ("kill@batch_start=15", 15),  # right after a mid-epoch validation's checkpoints
        ("kill@replace=last.ckpt#3", 10),  # while last.ckpt (step 15) is being written: the step-10 one stays whole
    ],
    ids=["mid-epoch", "after-epoch-checkpoint", "after-validation-checkpoint", "while-writing-last"],
)
def test_kill_9_at_any_point_then_resume_equals_an_unbroken_run_bit_for_bit(unbroken, tmp_path, fault, resumes_from):
    straight, straight_last = unbroken
    run_dir = tmp_path / "run"
    killed = run_worker(fault, run_dir)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert weights(run_dir)["global_step"] == resumes_from
    resumed = train(config(f"resume={run_dir}"))
    assert not list((run_dir / "checkpoints").glob(".*.tmp-*"))  # the killed write's leftover is cleaned up
    assert resumed["steps"] == straight["steps"] == 20
    a, b = straight_last["state_dict"], weights(run_dir)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert {k: v for k, v in resumed.items() if k.startswith("test/")} == {
        k: v for k, v in straight.items() if k.startswith("test/")
    }
    # no row twice: the rows the killed run logged after its checkpoint are replaced by the resumed run's
    assert metrics_rows(run_dir) == metrics_rows(straight["run_dir"])


def metrics_rows(run_dir):
    import csv

    rows = list(csv.DictReader((Path(run_dir) / "csv" / "metrics.csv").open()))
    return [{k: v for k, v in row.items() if v} for row in rows]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_from_outside_stops_the_run_within_seconds_with_a_checkpoint_it_resumes_from(tmp_path, signum):
    run_dir = tmp_path / "run"
    child = subprocess.Popen(
        [
            sys.executable,
            "train.py",
            str(DATES),
            *TINY_DATES,
            f"run_dir={run_dir}",
            "trainer.max_epochs=1000",
            "early_stopping.stopping_threshold=null",
        ],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert child.poll() is None, child.communicate()[1][-2000:]
    sent = time.monotonic()
    child.send_signal(signum)
    _, stderr = child.communicate(timeout=60)
    took = time.monotonic() - sent
    assert child.returncode == 128 + signum and took < 15, (child.returncode, took, stderr[-2000:])
    line = stderr.strip().splitlines()[-1]
    name = signal.Signals(signum).name
    assert line.startswith(f"error: stopped by {name} at epoch ") and "Traceback" not in stderr
    assert line.endswith(f"continue with: python train.py {run_dir / 'config.yaml'} resume={run_dir}")
    assert not (run_dir / "metrics.json").exists()  # no test after a stop
    stopped = weights(run_dir)
    assert stopped["global_step"] > 0 and "eeap" in stopped
    epochs = stopped["epoch"] + 2
    resumed = train(load_config(run_dir / "config.yaml", [f"resume={run_dir}", f"trainer.max_epochs={epochs}"]))
    assert resumed["steps"] > stopped["global_step"] and resumed["epochs"] == epochs


def test_a_second_sigint_stops_at_once_keeping_the_checkpoint_written_before(tmp_path):
    run_dir = tmp_path / "run"
    result = run_worker("sigint2@batch_end=13", run_dir)
    assert result.returncode == 130 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line == (
        f"error: stopped by SIGINT; {run_dir}/checkpoints/last.ckpt holds the run so far; "
        f"continue with: python train.py {run_dir}/config.yaml resume={run_dir}"
    )
    assert weights(run_dir)["global_step"] == 10


def test_a_signal_while_testing_skips_the_test_and_names_the_checkpoint_to_test(tmp_path):
    run_dir = tmp_path / "run"
    result = run_worker("sigterm@test", run_dir, "trainer.max_epochs=1")
    assert result.returncode == 143 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: stopped by SIGTERM while testing, after training finished; test with: eeap test ")
    assert Path(line.rsplit(" ", 1)[1]).is_file() and not (run_dir / "metrics.json").exists()


def test_a_signal_before_training_stops_at_once_in_one_line(capsys):
    def body():
        with stop_on_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises first
        return 0

    assert guarded(body, "eeap train") == 143
    assert capsys.readouterr().err == "error: stopped by SIGTERM before training began; no checkpoint was written\n"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the previous handler is back


def test_stop_lines_say_how_to_continue():
    ckpt = Path("runs/x/1/checkpoints/last.ckpt")
    assert stopped_line(Stopped(2, ckpt, "epoch 3, step 40", "training"), "eeap train") == (
        "stopped by SIGINT at epoch 3, step 40; runs/x/1/checkpoints/last.ckpt holds the run so far; "
        "continue with: eeap train runs/x/1/config.yaml resume=runs/x/1"
    )
    assert stopped_line(Stopped(15, None, "", "training"), "train.py") == (
        "stopped by SIGTERM before its first checkpoint; nothing to continue from, a new run starts over"
    )
    assert stopped_line(Stopped(2), "eeap predict") == "stopped by SIGINT"


def test_resume_mid_epoch_with_random_flips_equals_an_unbroken_run(tmp_path):
    """Segmentation flips its training images at random, here in a DataLoader worker: each example's flips come from
    (seed, epoch, index), so a run resumed mid-epoch draws what the unbroken one drew, whatever process draws them
    and whatever its loader had fetched ahead before stopping."""
    from tests.conftest import QUIET

    shapes = ROOT / "configs" / "segmentation" / "shapes.yaml"
    small = [*QUIET, "data.train_size=16", "data.val_size=4", "data.test_size=4", "data.image_size=32"]
    small += ["data.batch_size=4", "model.encode={type: unet_conv, channels: [8, 16, 32]}", "test=false"]
    small += ["trainer.val_check_interval=0.5", "trainer.max_epochs=2", "early_stopping.patience=null"]
    small += ["model.optim.scheduler=none"]  # a schedule over max_steps would differ between the two runs
    small += ["data.num_workers=1"]  # a worker process draws the flips
    train(load_config(shapes, [*small, f"run_dir={tmp_path}/straight"]))
    train(load_config(shapes, [*small, "trainer.max_steps=6", f"run_dir={tmp_path}/broken"]))
    assert weights(tmp_path / "broken")["global_step"] == 6  # stopped mid-epoch, after a validation checkpoint
    train(load_config(shapes, [*small, f"resume={tmp_path}/broken"]))
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "broken")
    assert a["global_step"] == b["global_step"] == 8
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
