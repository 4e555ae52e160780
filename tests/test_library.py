"""EEAP as a library: the ``eeap`` command, the Python API, a light ``import eeap``, and the demo-data extra."""

import json
import subprocess
import sys

import pytest
import torch

import eeap
from eeap.cli import describe, main
from eeap.errors import DataError
from tests.conftest import ROOT


def test_import_eeap_loads_no_framework_and_no_component():
    code = (
        "import sys, eeap; eeap.ATTEND.names(); eeap.TASK.names(); "
        "print(sorted(m for m in ('torch', 'lightning', 'segmentation_models_pytorch', 'timm', 'wandb', "
        "'matplotlib', 'eeap.attend.additive', 'eeap.tasks.translation.module') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0 and result.stdout.strip() == "[]"


def test_components_lists_every_kind_and_each_components_keys(capsys):
    overview = describe()
    for kind, registry in eeap.registry.REGISTRIES.items():
        assert f"{kind}:" in overview and all(f"  {name} " in overview for name in registry.names())
    attend = describe("attend")
    assert len([line for line in attend.splitlines() if line and not line.startswith(" ")]) == len(eeap.ATTEND.names())
    assert "additive  (score attention)" in attend and "    hidden_dim: int ≥ 1 or null = null" in attend
    one = describe("attend", "hard")
    assert "    estimator: one of 'reinforce', 'gumbel' = \"reinforce\"" in one
    assert "supplied by the task: key_dim, query_dim" in one and "# Parameters" in one  # the whole docstring
    assert main(["components", "attend", "addtive"]) == 2
    assert "unknown attend type 'addtive'" in capsys.readouterr().err
    assert main(["components", "attnd"]) == 2
    assert capsys.readouterr().err == (
        "error: unknown kind 'attnd'. Valid kinds: embed, encode, attend, predict, task, data, callback\n"
    )


def test_unknown_command_and_help(capsys):
    assert main(["trian"]) == 2
    assert (
        capsys.readouterr().err
        == "error: unknown command 'trian'. Valid commands: train, test, prepare, predict, export, sweep, components, "
        "configs\n"
    )
    assert main(["--help"]) == 0 and "eeap COMMAND" in capsys.readouterr().out


def test_console_script_is_installed():
    result = subprocess.run(["eeap", "components", "task"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("captioning  (task)")


def test_build_train_test_and_load_through_the_api(tiny, tmp_path, capsys):
    from eeap.tasks.translation.module import TranslationTask

    cfg = tiny("trainer.max_epochs=1")
    task, data = eeap.build(cfg)
    assert isinstance(task, TranslationTask) and data.info() is task.info
    assert task.eeap_config["model"]["predict"]["type"] == "rnn_decoder"
    metrics = eeap.train(cfg)
    checkpoint = metrics["best_checkpoint"]
    loaded = eeap.load(checkpoint)
    again = TranslationTask.load_from_checkpoint(checkpoint)  # Lightning's own classmethod
    assert not loaded.training and type(again) is TranslationTask
    for a, b in zip(loaded.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    from eeap.tasks.segmentation.module import SegmentationTask

    with pytest.raises(DataError, match="holds a TranslationTask, not a SegmentationTask"):
        SegmentationTask.load_from_checkpoint(checkpoint)
    # eeap test: the same test metrics from the checkpoint alone, without training
    assert main(["test", checkpoint, "trainer.enable_progress_bar=false"]) == 0
    tested = json.loads(capsys.readouterr().out)
    assert tested["test/exact_match"] == pytest.approx(metrics["test/exact_match"])
    assert tested["test/loss"] == pytest.approx(metrics["test/loss"], rel=1e-5)
    assert main(["test", checkpoint, "data.train_size=100"]) == 2  # other training data: other vocabularies
    assert "other vocabularies or classes than the model was trained with" in capsys.readouterr().err


def test_a_demo_source_without_its_extra_says_which(monkeypatch):
    import builtins

    real = builtins.__import__

    def without_babel(name, *args, **kwargs):
        if name == "babel" or name.startswith("babel."):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_babel)
    monkeypatch.delitem(sys.modules, "babel", raising=False)
    data = eeap.DATA.build({"type": "dates", "train_size": 10}, "data", seed=0)
    with pytest.raises(DataError) as e:
        data.prepare()
    assert str(e.value) == (
        "data 'dates' needs the package 'babel', which comes with EEAP's demo data extra: pip install 'eeap[demos]'"
    )
