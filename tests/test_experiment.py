"""One assembly for every entry point (``eeap.training.experiment.Experiment``): a config checked once, the process set up in
one place, the named callbacks built once; ``eeap test`` assembles its run as training did."""

import pytest
import torch

import eeap.config.loader
import eeap.training.experiment
from eeap import threads
from eeap.cli import evaluate
from eeap.cli import main as cli_main
from eeap.errors import ConfigError, DataError
from eeap.training.experiment import Experiment
from tests.conftest import DATES, TINY_DATES


def counting(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_eeap_train_checks_the_config_once_and_builds_the_callbacks_once(tmp_path, monkeypatch, capsys):
    checks = counting(monkeypatch, eeap.training.experiment, "check_config")
    loads = counting(monkeypatch, eeap.config.loader, "check_config")  # load_config's check, which a run does not use
    built = counting(monkeypatch, eeap.training.experiment, "build_callbacks")
    argv = ["train", str(DATES), *TINY_DATES, "trainer.max_epochs=1", "test=false", f"run_dir={tmp_path / 'run'}"]
    assert cli_main([*argv, "trainer.callbacks=[swa]"]) == 0
    assert (len(checks), len(loads), len(built)) == (1, 0, 1)


def test_eeap_test_assembles_the_run_as_training_did_and_takes_model_overrides(tmp_path, capsys):
    overrides = [*TINY_DATES, "trainer.max_epochs=1", "test=false", "threads=1", f"run_dir={tmp_path / 'run'}"]
    assert cli_main(["train", str(DATES), *overrides]) == 0
    checkpoint = str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    threads.use(None)  # torch's default (2 threads here, or 1 on a one-core machine)
    metrics = evaluate(checkpoint, ["trainer.enable_progress_bar=false"])
    assert torch.get_num_threads() == 1  # the run's threads key, applied by the one setup
    assert 0 <= metrics["test/exact_match"] <= 1
    experiment = Experiment.from_checkpoint(checkpoint, ["model.beam_size=4"])
    task = experiment.trained_task()
    assert task.seq2seq.beam_size == 4 and not task.training  # the override of the model section applies
    saved = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert all(
        torch.equal(value, saved[f"model.{key}"]) for key, value in task.state_dict().items()
    )  # the trainer's prefix
    threads.use(None)
    assert torch.get_num_threads() == threads._DEFAULT  # a later run in this process gets torch's default back


def test_an_experiment_made_from_a_config_has_no_trained_task():
    with pytest.raises(ConfigError, match="not made from a checkpoint"):
        Experiment.from_config(DATES, TINY_DATES).trained_task()
    with pytest.raises(DataError, match="checkpoint not found"):
        Experiment.from_checkpoint("nothere.ckpt")


def test_a_checkpoint_written_before_the_trainer_wrapped_the_task_loads_and_resumes(tmp_path):
    """Checkpoints keep the task's weights under ``model.``; one written before (unprefixed keys) still loads to the
    same model and resumes training."""
    import eeap

    overrides = [*TINY_DATES, "trainer.max_epochs=1", "test=false", f"run_dir={tmp_path / 'run'}"]
    assert cli_main(["train", str(DATES), *overrides]) == 0
    new = tmp_path / "run" / "checkpoints" / "last.ckpt"
    saved = torch.load(new, weights_only=True)
    assert saved["state_dict"] and all(key.startswith("model.") for key in saved["state_dict"])
    saved["state_dict"] = {key.removeprefix("model."): value for key, value in saved["state_dict"].items()}
    old = tmp_path / "old" / "checkpoints" / "last.ckpt"
    old.parent.mkdir(parents=True)
    torch.save(saved, old)
    a, b = eeap.load(new).state_dict(), eeap.load(old).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
    resumed = [*TINY_DATES, "trainer.max_epochs=2", "test=false", f"resume={tmp_path / 'old'}"]
    assert cli_main(["train", str(DATES), *resumed]) == 0
    after = torch.load(old, weights_only=True)  # the resumed run's own last checkpoint, written over the old one
    assert after["epoch"] == 1 and all(key.startswith("model.") for key in after["state_dict"])
