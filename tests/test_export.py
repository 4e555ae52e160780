"""``eeap export``: each task's graphs in ONNX (run with onnxruntime) and as torch.export programs give the eager
model's outputs."""

import json
import warnings

import pytest
import torch

from eeap import build
from eeap.config.loader import load_config
from eeap.errors import DataError
from eeap.serving.export import Runner, export
from tests.conftest import QUIET, ROOT

MODELS = {  # shipped configs, shrunk
    "translation-rnn": ("translation/dates.yaml", ["data.train_size=64", "data.val_size=8", "data.test_size=8"]),
    "translation-transformer": (
        "translation/dates_transformer.yaml",
        ["data.train_size=64", "data.val_size=8", "data.test_size=8"],
    ),
    "classification-image": ("classification/digits.yaml", []),
    "classification-text": ("classification/langid.yaml", ["data.languages=[de, fr]"]),
    "captioning": (
        "captioning/formulas.yaml",
        ["data.train_size=16", "data.val_size=4", "data.test_size=4", "model.embed.channels=[8,8,8,16]"],
    ),
    "segmentation": (
        "segmentation/shapes.yaml",
        ["data.train_size=8", "data.val_size=4", "data.test_size=4", "data.image_size=32"],
    ),
}


def checkpoint(tmp_path, name):
    config, overrides = MODELS[name]
    task, data = build(load_config(ROOT / "configs" / config, [*QUIET, *overrides]))
    path = tmp_path / "model.ckpt"
    torch.save(
        {"state_dict": task.state_dict(), "eeap": {"config": task.eeap_config, "data_state": task.eeap_data_state}},
        path,
    )
    return path, data


@pytest.mark.parametrize("form", ["export", "onnx"])
@pytest.mark.parametrize("name", list(MODELS))
def test_exported_graphs_give_the_eager_outputs(tmp_path, name, form):
    from eeap.model.checkpoints import load_task

    path, data = checkpoint(tmp_path, name)
    task = load_task(path)
    export(path, form, tmp_path / "out")
    runner = Runner(tmp_path / "out")
    batch = data.collate(data.splits["test"][:4])
    if hasattr(task, "seq2seq"):
        for inputs, beam in ((batch["src"], 1), (batch["src"], 3), (batch["src"][:1], 2)):  # one sentence alone too
            eager = task.decode(inputs, beam)
            ran = runner.decode(inputs, beam)
            assert torch.equal(eager.tokens, ran.tokens)
            assert torch.allclose(eager.scores, ran.scores, atol=1e-4)
            if eager.weights is not None:
                assert torch.allclose(eager.weights, ran.weights, atol=1e-4)
    else:
        inputs = batch["inputs"] if "inputs" in batch else batch["images"]
        for part in (inputs, inputs[:1]):
            with torch.no_grad():
                eager = task(part)
            ran = runner(part)
            assert torch.allclose(eager[0], ran[0], atol=1e-4)
            if len(ran) > 1:
                assert torch.allclose(eager[1], ran[1], atol=1e-4)


@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_unpacked_encoder_path_equals_the_packed_one(cell, layers):
    """What ONNX export traces (no packed sequences) gives the packed path's outputs at every real position."""
    from eeap.encode.rnn import RNNEncoder

    torch.manual_seed(0)
    encoder = RNNEncoder(input_dim=5, hidden=6, cell=cell, layers=layers).eval()
    x = torch.randn(4, 7, 5)
    mask = torch.arange(7).expand(4, 7) < torch.tensor([[7], [3], [1], [5]])
    from eeap import kernels

    kernels.use("reference")
    with torch.no_grad():
        packed = encoder(x, mask)
        unpacked = encoder.unpacked(x, mask) * mask.unsqueeze(-1)
    assert torch.allclose(packed, unpacked, atol=1e-6)


def test_eeap_export_command_and_its_refusals(tmp_path, capsys):
    from eeap.cli import main

    path, _ = checkpoint(tmp_path, "translation-rnn")
    with warnings.catch_warnings(record=True) as caught:  # nothing deprecated in EEAP's own calls
        warnings.simplefilter("always")
        export(path, "export", tmp_path / "ts")
        Runner(tmp_path / "ts")
    deprecations = {str(w.message) for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))}
    # torch's while-loop decompositions call its own _check_is_size, which it deprecates: torch's, not EEAP's call
    assert {m for m in deprecations if not m.startswith("_check_is_size will be removed")} == set()
    assert main(["export", str(path), "--format", "export", "--out", str(tmp_path / "ts")]) == 0
    assert sorted(p.name for p in (tmp_path / "ts").iterdir()) == [
        "encoder.pt2",
        "export.json",
        "start.pt2",
        "step.pt2",
    ]
    assert main(["export", str(path), "--format", "torchscript", "--out", str(tmp_path / "old")]) == 2
    assert capsys.readouterr().err.endswith(
        "error: --format torchscript: torch.jit.trace is deprecated in this torch; use --format export "
        "(torch.export, .pt2)\n"
    )
    meta = json.loads((tmp_path / "ts" / "export.json").read_text())
    (tmp_path / "ts" / "export.json").write_text(json.dumps({**meta, "format": "torchscript"}))
    with pytest.raises(DataError, match="exported as torchscript, which EEAP no longer runs; .* use --format export"):
        Runner(tmp_path / "ts")
    assert main(["export", str(path), "--format", "tflite", "--out", str(tmp_path / "x")]) == 2
    assert "argument --format: invalid choice: 'tflite'" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.startswith("error: checkpoint not found:")
    config, overrides = MODELS["translation-rnn"]
    task, _ = build(
        load_config(ROOT / "configs" / config, [*QUIET, *overrides, "model.attend={type: local, mode: monotonic}"])
    )
    local = tmp_path / "local.ckpt"
    torch.save(
        {"state_dict": task.state_dict(), "eeap": {"config": task.eeap_config, "data_state": task.eeap_data_state}},
        local,
    )
    assert main(["export", str(local), "--format", "onnx", "--out", str(tmp_path / "local")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: export: this model's attention depends on the decoding step's number (local-m)")
    assert err.count("\n") == 1


def test_a_deep_bidirectional_encoder_exports_to_onnx(tmp_path):
    from eeap.model.checkpoints import load_task

    config, overrides = MODELS["translation-rnn"]
    task, data = build(load_config(ROOT / "configs" / config, [*QUIET, *overrides, "model.encode.layers=2"]))
    path = tmp_path / "deep.ckpt"
    torch.save(
        {"state_dict": task.state_dict(), "eeap": {"config": task.eeap_config, "data_state": task.eeap_data_state}},
        path,
    )
    export(path, "onnx", tmp_path / "out")
    src = data.collate(data.splits["test"][:5])["src"]
    eager, ran = load_task(path).decode(src, 2), Runner(tmp_path / "out").decode(src, 2)
    assert torch.equal(eager.tokens, ran.tokens) and torch.allclose(eager.scores, ran.scores, atol=1e-4)
