"""Captioning: formula rendering, the caption folder, Show, Attend and Tell's decoder pieces, training and predict.py."""

import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from eeap.config.registry import DATA
from eeap.errors import DataError
from eeap.model.task import build_predict
from eeap.predict.base import SequenceDecoder
from eeap.tasks.captioning.data import compact, random_formula, render_formula
from tests.conftest import ROOT

FORMULAS = ROOT / "configs" / "captioning" / "formulas.yaml"
TINY = [
    "data.train_size=64",
    "data.val_size=8",
    "data.test_size=8",
    "data.batch_size=16",
    "model.embed.channels=[8,8,8,16]",
    "model.predict.hidden=16",
    "model.predict.embed_dim=8",
    "model.beam_size=2",
]


def test_compact_markup_for_mathtext():
    assert compact(r"\frac { a _ { 1 } } { 2 }") == r"\frac{a_{1}}{2}"
    assert compact(r"x \times y - \alpha") == r"x\times y-\alpha"


def test_formulas_are_seeded_held_out_and_rendered():
    data = DATA.build(
        {"type": "formulas", "train_size": 60, "val_size": 10, "test_size": 10, "max_len": 12}, "data", seed=0
    )
    data.prepare()
    again = DATA.build(
        {"type": "formulas", "train_size": 60, "val_size": 10, "test_size": 10, "max_len": 12}, "data", seed=0
    )
    again.prepare()
    texts = {split: [e["tgt_text"] for e in data.splits[split]] for split in ("train", "val", "test")}
    assert texts["test"] == [e["tgt_text"] for e in again.splits["test"]]
    assert not set(texts["train"]) & (set(texts["val"]) | set(texts["test"]))  # held-out formulas are new
    info = data.info()
    for e in data.splits["train"]:
        assert e["image"].shape == (1, 32, 128) and 0 < e["image"].max() <= 1.0
        assert info.target.decode(e["tgt"]) == e["tgt_text"] and len(e["tgt"]) <= 12
    # a subscript renders smaller and lower than the same symbol on the line: the markup's structure is in the image
    on_line, subscript = render_formula("a 1", (32, 128), 100), render_formula("a _ { 1 }", (32, 128), 100)
    assert not np.array_equal(on_line, subscript)
    assert subscript.sum() < on_line.sum()


def test_random_formulas_use_the_grammar():
    rng = random.Random(0)
    tokens = [t for _ in range(300) for t in random_formula(rng, 3)]
    assert {r"\frac", r"\sqrt", "^", "_", "(", "+", r"\alpha"} <= set(tokens)
    assert tokens.count("{") == tokens.count("}") and tokens.count("(") == tokens.count(")")


def write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


def test_caption_folder_groups_captions_by_image_and_refuses_bad_files(tmp_path):
    for i in range(5):
        write_png(tmp_path / "images" / f"{i}.png", np.full((8, 12, 3), 50 * i))
    lines = [f"{i}.png\ta picture number {i}" for i in range(5)] + ["0.png\tanother caption of zero"]
    (tmp_path / "captions.tsv").write_text("\n".join(lines) + "\n")
    data = DATA.build({"type": "caption_folder", "root": str(tmp_path)}, "data", seed=0)
    data.prepare()
    splits = {split: [e["name"] for e in examples] for split, examples in data.splits.items()}
    assert sorted(sum(splits.values(), [])) == ["0.png", "0.png", "1.png", "2.png", "3.png", "4.png"]
    owner = [split for split, names in splits.items() if "0.png" in names]
    assert len(owner) == 1 and splits[owner[0]].count("0.png") == 2  # both captions of 0.png in one split
    assert data.info().image_size == (8, 12) and data.info().channels == 3

    (tmp_path / "captions.tsv").write_text("\n".join(lines + ["9.png\tnot there"]) + "\n")
    with pytest.raises(DataError, match=r"1 captioned images are not in .*images, e.g. 9.png"):
        DATA.build({"type": "caption_folder", "root": str(tmp_path)}, "data", seed=0).prepare()
    (tmp_path / "captions.tsv").write_text("\n".join(lines + ["3.png"]) + "\n")
    with pytest.raises(DataError, match=r"captions.tsv line 7 has 1 column \('3.png'\), expected 2"):
        DATA.build({"type": "caption_folder", "root": str(tmp_path)}, "data", seed=0).prepare()
    with pytest.raises(DataError, match="file not found"):
        DATA.build({"type": "caption_folder", "root": str(tmp_path / "no")}, "data", seed=0).prepare()


def test_context_gate_and_lstm_start_by_hand():
    decoder = build_predict(
        {"type": "rnn_decoder", "cell": "lstm", "context_gate": True, "hidden": 8, "embed_dim": 4},
        {"type": "additive"},
        SequenceDecoder,
        vocab_size=10,
        encoder_dim=6,
    )
    memory = torch.randn(2, 5, 6)
    mask = torch.ones(2, 5, dtype=torch.bool)
    state = decoder.start(memory, mask)
    torch.testing.assert_close(state["c"][:, 0], torch.tanh(decoder.cell_bridge(memory.mean(1))))
    with torch.no_grad():
        decoder.context_gate.weight.zero_()
        decoder.context_gate.bias.zero_()  # β = σ(0) = 1/2 everywhere
    query = state["h"][:, -1]
    gated, weights = decoder.attend(query, state)
    decoder.context_gate = None
    plain, _ = decoder.attend(query, state)
    torch.testing.assert_close(gated, plain / 2)
    torch.testing.assert_close(plain, (weights.unsqueeze(-1) * memory).sum(1))


def test_doubly_stochastic_penalty_by_hand(tiny):
    from omegaconf import OmegaConf

    from eeap.config.loader import load_config
    from eeap.config.registry import TASK

    cfg = OmegaConf.to_container(load_config(FORMULAS, ["logger=none", *TINY, "model.attention_penalty=0.5"]))
    data = DATA.build(cfg["data"], "data", seed=0)
    data.prepare()
    task = TASK.build(cfg["model"], "model", info=data.info())
    assert task.seq2seq.attention_penalty == 0.5
    weights = torch.tensor([[[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]])  # (1, tgt 3, src 3)
    target = torch.tensor([[5, 6, 0]])  # the third step is padding
    # received attention: [0.5, 1.0, 0.5] -> mean(0.5², 0, 0.5²) = 1/6, times λ = 0.5
    penalty = task.seq2seq.doubly_stochastic(weights, torch.ones(1, 3, dtype=torch.bool), target)
    assert penalty.item() == pytest.approx(1 / 12)
    mask = torch.tensor([[True, True, False]])  # a padded source position is left out: mean(0.5², 0) = 1/8
    assert task.seq2seq.doubly_stochastic(weights, mask, target).item() == pytest.approx(0.5 / 8)
    # per head (1, heads 2, tgt 3, src 3): each head penalised alone, then averaged. The second head puts all on
    # source 0 in both real steps: received [2, 0, 0] -> mean(1, 1, 1) = 1; the heads' mean (1/6 + 1) / 2, times λ
    second = torch.tensor([[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    heads = torch.stack([weights, second], 1)
    penalty = task.seq2seq.doubly_stochastic(heads, torch.ones(1, 3, dtype=torch.bool), target)
    assert penalty.item() == pytest.approx(0.5 * (1 / 6 + 1) / 2)


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["model.attend={type: hard, score: {type: additive}}"],
        ["model.attend=none"],
        [
            "model.predict={type: transformer_decoder, dim: 16, heads: 2, ff_dim: 32, layers: 1}",
            "model.encode={type: transformer, heads: 2, ff_dim: 32, layers: 1}",
        ],
        ["model.embed={type: image_grid, encoder: {type: smp, name: resnet18, depth: 3}, dim: 16}"],
        ["model.embed={type: image_grid, encoder: {type: smp, name: tu-mobilenetv3_small_050, depth: 3}, dim: 16}"],
    ],
    ids=["soft", "hard", "none", "transformer", "smp_grid", "timm_grid"],
)
def test_captioning_trains_with_each_attention(tiny, tmp_path, overrides):
    from eeap.training.run import train

    metrics = train(tiny(*TINY, "trainer.max_epochs=1", *overrides, config=FORMULAS))
    assert 0.0 <= metrics["test/bleu"] <= 1.0 and metrics["steps"] == 4


def test_train_plot_then_predict_captions(tiny, tmp_path):
    from eeap.training.run import train

    metrics = train(tiny(*TINY, "trainer.max_epochs=1", "model.plot_examples=1", config=FORMULAS))
    assert list((tmp_path / "run" / "figures").glob("val_attention_0-*.png"))
    image = render_formula(r"a + \frac { 1 } { b }", (40, 160), 100)[0] * 255
    write_png(tmp_path / "f.png", image)
    write_png(tmp_path / "small.png", image[:16, :64])
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'f.png'}\n{tmp_path / 'small.png'}\n")
    result = subprocess.run(
        [
            sys.executable,
            "predict.py",
            metrics["best_checkpoint"],
            "--input",
            str(tmp_path / "list.txt"),
            "--plot-attention",
            str(tmp_path / "att"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 2 and result.stdout.splitlines()[1] == ""
    assert "line 2:" in result.stderr and "image is 16×64 (H×W), expected 40×160" in result.stderr
    assert (tmp_path / "att" / "line00001.png").is_file()


def test_image_grid_needs_sides_divisible_by_the_stride(tiny):
    from eeap.errors import ConfigError
    from eeap.training.run import train

    with pytest.raises(ConfigError, match="images of 40×160 do not divide by the encoder's stride 16"):
        train(
            tiny(
                *TINY, "model.embed={type: image_grid, encoder: {type: smp, name: resnet18, depth: 4}}", config=FORMULAS
            )
        )


def test_caption_folder_config_trains_on_a_users_folder(tiny, tmp_path):
    from eeap.training.run import train

    words = ["red square", "blue square", "red dot", "blue dot"]
    lines = []
    for i in range(8):
        image = np.zeros((20, 30, 3))
        image[5:15, 5:15, 0 if "red" in words[i % 4] else 2] = 255
        write_png(tmp_path / "data" / "images" / f"{i}.png", image)
        lines.append(f"{i}.png\t{words[i % 4]}")
    (tmp_path / "data" / "captions.tsv").write_text("\n".join(lines) + "\n")
    metrics = train(
        tiny(
            f"data.root={tmp_path / 'data'}",
            "data.image_size=[32,32]",
            "trainer.max_epochs=1",
            "model.embed.encoder.depth=3",
            "model.embed.dim=16",
            "model.predict.hidden=16",
            config=ROOT / "configs" / "captioning" / "caption_folder.yaml",
        )
    )
    assert metrics["steps"] == 1 and 0.0 <= metrics["test/bleu"] <= 1.0
