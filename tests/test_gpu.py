"""On a CUDA GPU (skipped where there is none, as on CI): every task trains, validates and tests there in bf16
autocast with its metrics kept on the GPU, and a trained model predicts there what it predicts on the CPU."""

from __future__ import annotations

import json
import math

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

GPU = ["trainer.accelerator=gpu", "trainer.precision=bf16-mixed"]
SHORT = ["trainer.max_epochs=1", "trainer.limit_train_batches=4", "trainer.limit_val_batches=2"]
RUNS = {  # config, overrides: small, one per task and kind of model
    "dates": ("translation/dates.yaml", ["data.train_size=256", "data.val_size=32", "data.test_size=32"]),
    "dates_transformer": (
        "translation/dates_transformer.yaml",
        ["data.train_size=256", "data.val_size=32", "data.test_size=32"],
    ),
    "digits": ("classification/digits.yaml", []),
    "formulas": ("captioning/formulas.yaml", ["data.train_size=64", "data.val_size=16", "data.test_size=16"]),
    "shapes": ("segmentation/shapes.yaml", ["data.train_size=64", "data.val_size=16", "data.test_size=16"]),
}


def test_corpus_bleu_and_chrf_keep_their_statistics_on_the_gpu():
    """The sacrebleu metrics' states follow the module to the GPU; each batch's statistics are added there (a
    translation model's validation failed on a GPU when they were made on the CPU)."""
    from eeap.model.metrics import CorpusBLEU, CorpusChrF

    hypotheses, references = ["the cat sat on the mat", "a dog"], [["the cat sat on a mat"], ["a dog ran"]]
    for kind in (CorpusBLEU, CorpusChrF):
        cpu, gpu = kind(), kind().to("cuda")
        cpu.update(hypotheses, references)
        gpu.update(hypotheses, references)
        assert gpu.stats.device.type == "cuda"
        assert torch.equal(gpu.stats.cpu(), cpu.stats)
        assert gpu.compute().item() == pytest.approx(cpu.compute().item())


@pytest.mark.parametrize("name", RUNS)
def test_every_task_trains_validates_and_tests_on_the_gpu_in_bf16(name, tmp_path):
    from eeap.config.loader import load_config
    from eeap.training.run import train
    from tests.conftest import QUIET, ROOT

    config, overrides = RUNS[name]
    cfg = load_config(ROOT / "configs" / config, [*QUIET, *overrides, *SHORT, *GPU, f"run_dir={tmp_path}"])
    metrics = train(cfg)
    tested = {key: value for key, value in metrics.items() if key.startswith("test/")}
    assert tested, metrics
    assert all(math.isfinite(float(value)) for value in tested.values()), tested
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_a_translator_trained_on_the_gpu_predicts_the_same_on_the_gpu_as_on_the_cpu(tmp_path, capsys):
    """Trained on the GPU, decoded with beam 3 on cuda and on the CPU (float32 both): the same outputs, scores within
    float rounding."""
    from eeap.config.loader import load_config
    from eeap.serving.inference import main as predict_main
    from eeap.training.run import train
    from tests.conftest import ROOT, TINY_DATES

    keys = [*TINY_DATES, "trainer.max_epochs=3", "trainer.accelerator=gpu", "test=false", f"run_dir={tmp_path / 'run'}"]
    train(load_config(ROOT / "configs" / "translation" / "dates.yaml", keys))
    lines = ["4 March 2021", "1976-01-03", "12/25/99", "Sunday, 5 October 1986", "3 mars 2001"]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    checkpoint = str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    records = {}
    for device in ("cuda", "cpu"):
        capsys.readouterr()
        args = [checkpoint, "--input", str(tmp_path / "in.txt"), "--format", "jsonl", "--beam", "3"]
        assert predict_main([*args, "--device", device]) == 0
        records[device] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["output"] for r in records["cuda"]] == [r["output"] for r in records["cpu"]]
    for on_gpu, on_cpu in zip(records["cuda"], records["cpu"]):
        assert on_gpu["score"] == pytest.approx(on_cpu["score"], abs=1e-3)
