"""Model folders (``eeap export CHECKPOINT --format folder``): safetensors weights, the config, the data state and a
model card; ``eeap.load`` and ``eeap predict`` read them without Lightning's pickle, for every task."""

import json
import subprocess
import sys

import pytest
import torch
import yaml

import eeap
from eeap.cli import main
from eeap.errors import DataError
from eeap.model.checkpoints import load_task
from tests.conftest import ROOT
from tests.test_export import MODELS, checkpoint


@pytest.mark.parametrize("name", list(MODELS))
def test_a_model_folder_loads_the_same_model_for_every_task(tmp_path, name, capsys):
    from safetensors import safe_open

    path, data = checkpoint(tmp_path, name)
    folder = tmp_path / "folder"
    assert main(["export", str(path), "--format", "folder", "--out", str(folder)]) == 0
    assert capsys.readouterr().out == f"exported a model folder to {folder}\n"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.yaml", "data.json", "model.safetensors"]
    trained, loaded = load_task(path), eeap.load(folder)
    assert type(loaded) is type(trained) and not loaded.training
    ours, theirs = trained.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert loaded.eeap_data_state == trained.eeap_data_state == json.loads((folder / "data.json").read_text())
    assert yaml.safe_load((folder / "config.yaml").read_text()) == trained.eeap_config
    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        assert weights.metadata()["task"] == trained.registered_name
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: eeap\n") and f"A {trained.registered_name} model" in card
    assert f"{sum(p.numel() for p in trained.parameters()):,} parameters" in card
    for part in ("embed", "encode", "attend", "predict"):
        if isinstance(trained.eeap_config["model"].get(part), dict):
            assert f"| {part} | {trained.eeap_config['model'][part]['type']} |" in card
    assert 'eeap.load("THIS_FOLDER")' in card and "eeap predict THIS_FOLDER" in card


def test_eeap_predict_reads_a_model_folder_as_it_reads_the_checkpoint(tmp_path):
    path, _ = checkpoint(tmp_path, "translation-transformer")  # tied embeddings: stored once, loaded into both
    folder = tmp_path / "folder"
    assert main(["export", str(path), "--format", "folder", "--out", str(folder)]) == 0
    lines = "4th of July, 1776\n12.03.2001\nMarch 3, 1999\n"
    outputs = [
        subprocess.run(
            [sys.executable, "-m", "eeap.cli", "predict", str(model), "--beam", "2"],
            input=lines,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        for model in (path, folder)
    ]
    assert outputs[0].returncode == outputs[1].returncode == 0, outputs[1].stderr
    assert outputs[0].stdout == outputs[1].stdout and outputs[1].stdout.count("\n") == 3


def test_loading_a_model_folder_imports_no_lightning_and_unpickles_nothing(tmp_path):
    path, _ = checkpoint(tmp_path, "classification-text")
    folder = tmp_path / "folder"
    assert main(["export", str(path), "--format", "folder", "--out", str(folder)]) == 0
    code = (
        "import sys, torch, pickle\n"
        "def refuse(*a, **k): raise AssertionError('unpickled')\n"
        "torch.load = refuse; pickle.load = pickle.loads = refuse\n"
        f"import eeap; model = eeap.load({str(folder)!r})\n"
        "print(type(model).__name__, 'lightning' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.stdout.strip() == "ClassificationTask False", result.stderr


def test_a_broken_model_folder_is_refused_in_one_line(tmp_path, capsys):
    path, _ = checkpoint(tmp_path, "segmentation")
    folder = tmp_path / "folder"
    assert main(["export", str(path), "--format", "folder", "--out", str(folder)]) == 0
    with pytest.raises(DataError, match=r"not a model folder \(no model.safetensors\); give a .ckpt"):
        eeap.load(tmp_path)
    (folder / "data.json").write_text("{not json")
    with pytest.raises(DataError, match=r"a file of the model folder cannot be read \(JSONDecodeError\)"):
        eeap.load(folder)
    (folder / "data.json").unlink()
    with pytest.raises(DataError, match=r"the model folder has no data.json"):
        eeap.load(folder)
    assert main(["export", str(path), "--format", "folder", "--out", str(folder)]) == 0
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(DataError, match=r"model.safetensors is not readable"):
        eeap.load(folder)
    other, _ = checkpoint(tmp_path / "o" if (tmp_path / "o").mkdir() is None else tmp_path, "classification-image")
    assert main(["export", str(other), "--format", "folder", "--out", str(tmp_path / "other")]) == 0
    (folder / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    with pytest.raises(DataError, match=r"the checkpoint holds another model than this config builds"):
        eeap.load(folder)
    capsys.readouterr()
    assert main(["predict", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
