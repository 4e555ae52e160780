"""Callbacks by name (``trainer.callbacks``) and the profiler by name, on the tiny date translator."""

import json

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from eeap.errors import ConfigError
from eeap.training.run import train


class EpochWeights(Callback):
    """The weights at the end of each training epoch."""

    def __init__(self):
        self.weights = []

    def on_train_epoch_end(self, trainer, pl_module):
        self.weights.append({k: v.detach().clone() for k, v in pl_module.state_dict().items()})


def test_swa_ends_with_the_mean_of_the_epochs_weights_and_tests_them(tiny, tmp_path):
    epochs = EpochWeights()
    keys = ["trainer.max_epochs=3", "early_stopping.stopping_threshold=null"]
    swa = "trainer.callbacks=[{type: swa, swa_epoch_start: 2, swa_lrs: 0.0005, annealing_epochs: 1}]"
    metrics = train(tiny(*keys, swa), callbacks=[epochs])
    averaged = torch.load(metrics["tested_checkpoint"], map_location="cpu", weights_only=True)["state_dict"]
    assert (
        metrics["tested_checkpoint"].endswith("swa.ckpt") and metrics["tested_checkpoint"] != metrics["best_checkpoint"]
    )
    # Lightning counts swa_epoch_start from 1 and averages the weights each averaged epoch starts from: epochs 1 and
    # 2 (from 0) start from the ends of epochs 0 and 1
    name = "encoder.rnn.weight_hh_l0"
    key = next(k for k in averaged if k.endswith(name))
    expected = (epochs.weights[0][key] + epochs.weights[1][key]) / 2
    assert torch.allclose(averaged[key], expected, atol=1e-6)
    assert not torch.allclose(averaged[key], epochs.weights[2][key])


def test_an_accumulation_schedule_makes_fewer_optimizer_steps(tiny):
    # 300 examples in batches of 32: 10 batches an epoch; 2 per step in epoch 0 (5 steps), 1 from epoch 1 (10 steps)
    keys = ["trainer.max_epochs=2", "early_stopping.stopping_threshold=null", "test=false"]
    metrics = train(tiny(*keys, "trainer.callbacks=[{type: accumulate, scheduling: {0: 2, 1: 1}}]"))
    assert metrics["steps"] == 15


def test_the_lr_finder_sets_the_rate_it_suggests_and_keeps_its_curve(tiny, tmp_path):
    class Rate(Callback):
        def on_train_start(self, trainer, pl_module):
            self.rate = trainer.optimizers[0].param_groups[0]["lr"]

    rate = Rate()
    finder = "trainer.callbacks=[{type: lr_finder, num_training_steps: 20, min_lr: 0.0001, max_lr: 0.1}]"
    train(tiny("trainer.max_epochs=1", "test=false", finder), callbacks=[rate])
    found = json.loads((tmp_path / "run" / "lr_finder.json").read_text())
    assert 1e-4 <= found["suggestion"] <= 0.1 and len(found["lr"]) == 20
    assert rate.rate == pytest.approx(found["suggestion"]) and rate.rate != 1e-3  # not the config's rate
    assert (tmp_path / "run" / "figures" / "lr_finder.png").stat().st_size > 1000


def test_the_batch_size_finder_trains_with_the_size_it_found(tiny, tmp_path):
    class Size(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.size = len(batch["src"])

    size = Size()
    finder = "trainer.callbacks=[{type: batch_size_finder, init_val: 4, max_trials: 2, steps_per_trial: 1}]"
    train(tiny("trainer.max_epochs=1", "test=false", "trainer.limit_train_batches=3", finder), callbacks=[size])
    assert json.loads((tmp_path / "run" / "batch_size_finder.json").read_text()) == {
        "batch_size": 8
    }  # tried 4, then 8: two trials
    assert size.size == 8


def test_callback_sections_are_recorded_with_their_defaults(tiny, tmp_path):
    import yaml

    train(tiny("trainer.max_epochs=1", "test=false", "trainer.callbacks=[swa]"))
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["trainer"]["callbacks"] == [
        {"type": "swa", "swa_lrs": 0.001, "swa_epoch_start": 0.8, "annealing_epochs": 10, "annealing_strategy": "cos"}
    ]


def test_the_profiler_by_name_writes_its_report_in_the_run_folder(tiny, tmp_path):
    train(tiny("trainer.max_epochs=1", "test=false", "trainer.limit_train_batches=2", "trainer.profiler=simple"))
    (report,) = (tmp_path / "run").glob("*profile*.txt")
    assert "run_training_epoch" in report.read_text()


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.callbacks=[swaa]", r"^trainer.callbacks.0.type: unknown callback type 'swaa'.*Did you mean 'swa'"),
        (
            "trainer.callbacks=[{type: swa, swa_lr: 0.1}]",
            r"^trainer.callbacks.0.swa_lr: unknown key.*Did you mean 'swa_lrs'",
        ),
        (
            "trainer.callbacks=[{type: swa, swa_epoch_start: 1.5}]",
            r"^trainer.callbacks.0.swa_epoch_start: expected int ≥ 1 or float in \[0, 1\)",
        ),
        ("trainer.callbacks=[{type: swa, swa_epoch_start: 0.0}]", r"^trainer.callbacks.0: swa_epoch_start: a fraction"),
        ("trainer.callbacks=[{type: lr_finder, min_lr: 1, max_lr: 0.1}]", r"^trainer.callbacks.0: min_lr \(1"),
        ("trainer.callbacks=[{type: accumulate, scheduling: {0: 0}}]", r"^trainer.callbacks.0: scheduling: epoch 0"),
        (
            "trainer.callbacks=[{type: accumulate}]",
            r"^trainer.callbacks.0.scheduling: required by callback 'accumulate' and missing",
        ),
        ("trainer.profiler=fancy", r"^trainer.profiler: .*simple"),
    ],
)
def test_bad_callback_sections_fail_in_one_line_before_the_data(tiny, override, message, monkeypatch):
    from eeap.data.base import DataModule

    def never(self):
        raise AssertionError("data prepared before the config was checked")

    monkeypatch.setattr(DataModule, "prepare", never)
    with pytest.raises(ConfigError, match=message):
        train(tiny(override))


def test_accumulation_schedule_and_accumulate_grad_batches_are_refused_together(tiny):
    both = ["trainer.accumulate_grad_batches=2", "trainer.callbacks=[{type: accumulate, scheduling: {0: 2}}]"]
    with pytest.raises(ConfigError, match=r"^trainer.accumulate_grad_batches: a schedule"):
        train(tiny(*both))
