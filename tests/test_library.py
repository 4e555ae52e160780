"""EEAP as a library: the ``eeap`` command, the Python API, a light ``import eeap``, and the demo-data extra."""

import json
import subprocess
import sys

import lightning
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
    for kind, registry in eeap.config.registry.REGISTRIES.items():
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
        == "error: unknown command 'trian'. Valid commands: train, test, prepare, predict, export, explore, sweep, components, "
        "configs\n"
    )
    assert main(["--help"]) == 0 and "eeap COMMAND" in capsys.readouterr().out


def test_console_script_is_installed():
    result = subprocess.run(["eeap", "components", "task"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("captioning  (task)")


def test_build_train_test_and_load_through_the_api(tiny, tmp_path, capsys):
    from eeap.tasks.translation.module import TranslationTask
    from eeap.training.module import TrainingModule

    cfg = tiny("trainer.max_epochs=1")
    module, data = eeap.build(cfg)  # the task wrapped for Lightning
    task = module.model
    assert isinstance(module, TrainingModule) and isinstance(task, TranslationTask) and data.info() is task.info
    assert task.eeap_config["model"]["predict"]["type"] == "rnn_decoder"
    metrics = eeap.train(cfg)
    checkpoint = metrics["best_checkpoint"]
    loaded = eeap.load(checkpoint)
    again = TranslationTask.load_from_checkpoint(checkpoint)
    wrapped = TrainingModule.load_from_checkpoint(checkpoint)  # Lightning's own classmethod, to test or fine-tune
    assert not loaded.training and type(again) is TranslationTask and type(wrapped.model) is TranslationTask
    assert isinstance(loaded, torch.nn.Module) and not isinstance(loaded, lightning.LightningModule)
    for a, b, c in zip(loaded.state_dict().values(), again.state_dict().values(), wrapped.model.state_dict().values()):
        assert torch.equal(a, b) and torch.equal(a, c)
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


@pytest.mark.parametrize("name", ["translation-rnn", "classification-text", "captioning", "segmentation"])
def test_a_trained_model_loads_predicts_and_exports_without_lightning(tmp_path, name):
    """A checkpoint loads to a plain ``nn.Module`` that predicts (and a translator exports, and ``eeap predict``
    runs) in a process that never imports Lightning, torchmetrics or the data modules."""
    from tests.test_export import checkpoint

    path, data = checkpoint(tmp_path, name)
    text = data.splits["test"][0]["text"] if name == "classification-text" else "March 3, 1999"
    code = f"""
import sys
import eeap
model = eeap.load({str(path)!r})
import torch
print(isinstance(model, torch.nn.Module), any("lightning" in c.__module__ for c in type(model).__mro__))
if {name!r} == "translation-rnn":
    outputs, problems = model.predict_lines([{text!r}, ""])
    assert outputs[0]["output"] and outputs[1] is None and problems.skipped == 1
    from eeap.cli import main
    assert main(["predict", {str(path)!r}, "--input", {str(tmp_path / "in.txt")!r}]) == 0
    from eeap.serving.export import export
    export({str(path)!r}, "onnx", {str(tmp_path / "onnx")!r})
if {name!r} == "classification-text":
    outputs, _ = model.predict_lines([{text!r}])
    assert outputs[0]["output"] in model.info.classes
print(sorted(m for m in sys.modules if m.split(".")[0] in ("lightning", "pytorch_lightning", "torchmetrics")
             or m.startswith(("eeap.training.module", "eeap.training.experiment", "eeap.data.prepared")) or m == "eeap.data.base"
             or (m.startswith("eeap.tasks.") and m.endswith(".data"))))
"""
    (tmp_path / "in.txt").write_text("March 3, 1999\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "True False" and lines[-1] == "[]"


def test_a_reader_that_stops_early_ends_the_command_quietly():
    """``eeap components attend | head -1``: when the pipe's reader has gone, the command ends with no error line and
    exits as a Unix tool does, 128 + SIGPIPE (it printed ``error: Broken pipe`` and exited 2)."""
    import signal

    code = "import sys; sys.stdin.readline(); from eeap.cli import main; sys.exit(main(['components', 'attend']))"
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader goes away before the command writes
    process.stdin.write(b"go\n")
    process.stdin.close()
    assert process.wait(timeout=120) == 128 + signal.SIGPIPE
    assert process.stderr.read() == b""
