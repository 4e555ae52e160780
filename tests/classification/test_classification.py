"""Classification: pooling and embeddings by hand, the data sources, real training on the digits, predict."""

import json

import numpy as np
import polib
import pytest
import torch
from PIL import Image

import eeap  # noqa: F401
from eeap.config.registry import DATA, EMBED
from eeap.errors import ConfigError, DataError
from eeap.model.checkpoints import load_task
from eeap.model.task import build_predict
from eeap.predict.base import ClassifierHead
from eeap.serving.inference import main as predict_main
from eeap.tasks.classification.module import ClsToken
from eeap.training.run import train
from tests.conftest import ROOT

CONFIGS = ROOT / "configs" / "classification"


def test_attention_pooling_by_hand():
    head = build_predict({"type": "classifier"}, {"type": "dot"}, ClassifierHead, input_dim=2, num_classes=2)
    with torch.no_grad():
        head.query.copy_(torch.tensor([1.0, 0.0]))
        head.output[-1].weight.copy_(torch.eye(2))
        head.output[-1].bias.zero_()
    x = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True, False]])
    logits, weights = head.eval()(x, mask)
    w = float(np.exp(2) / (np.exp(2) + 1))  # scores q·x = 2, 0; the third position is padding
    assert torch.allclose(weights, torch.tensor([[w, 1 - w, 0.0]]), atol=1e-6)
    assert torch.allclose(logits, torch.tensor([[2 * w, 1 - w]]), atol=1e-6)


def test_mean_and_cls_pooling():
    x, mask = torch.randn(2, 4, 3), torch.tensor([[True, True, False, False], [True] * 4])
    mean = build_predict(
        {"type": "classifier", "pool": "mean"}, "none", ClassifierHead, input_dim=3, num_classes=2
    ).eval()
    with torch.no_grad():
        mean.output[-1].weight.copy_(torch.eye(2, 3))
        mean.output[-1].bias.zero_()
    logits, weights = mean(x, mask)
    assert weights is None and torch.allclose(logits[0], x[0, :2, :2].mean(0))
    head = build_predict({"type": "classifier", "pool": "cls"}, "none", ClassifierHead, input_dim=5, num_classes=2)
    assert head.prepends_token and not mean.prepends_token
    cls = ClsToken(3)
    y, new_mask = cls(x, mask)
    assert torch.equal(y[:, 0], cls.token[0].expand(2, 3)) and torch.equal(y[:, 1:], x)
    assert new_mask[:, 0].all() and torch.equal(new_mask[:, 1:], mask)
    with pytest.raises(ConfigError, match="^model.predict: pool: attention needs an attention"):
        build_predict({"type": "classifier"}, "none", ClassifierHead, input_dim=5, num_classes=2)


def test_patch_embedding_is_a_linear_map_of_each_patch():
    embed = EMBED.build({"type": "patch", "patch_size": 2, "dim": 5}, "e", in_channels=1, image_size=[4, 6])
    images = torch.randn(3, 1, 4, 6)
    out = embed(images)
    assert embed.grid == (2, 3) and out.shape == (3, 6, 5)
    patches = images.unfold(2, 2, 2).unfold(3, 2, 2).reshape(3, 6, 4)  # row-major patches, each 2×2 flattened
    manual = patches @ embed.project.weight.reshape(5, 4).T + embed.project.bias + embed.positions[0]
    assert torch.allclose(out, manual, atol=1e-6)
    with pytest.raises(ConfigError, match="^model.embed: patch_size 4 does not divide the image size 4×6"):
        EMBED.build({"type": "patch", "patch_size": 4}, "model.embed", in_channels=1, image_size=[4, 6])


def test_cnn_grid_shape():
    embed = EMBED.build({"type": "cnn", "channels": [8, 16, 32]}, "e", in_channels=3, image_size=[16, 16])
    assert embed.grid == (4, 4) and embed(torch.randn(2, 3, 16, 16)).shape == (2, 16, 32)


def test_digits_split_is_stratified_and_disjoint():
    data = DATA.build({"type": "digits"}, "data", seed=0)
    data.prepare()
    sizes = {k: len(v) for k, v in data.splits.items()}
    assert sum(sizes.values()) == 1797 and abs(sizes["test"] - 0.2 * 1797) < 10
    labels = [y for _, y in data.splits["test"]]
    assert all(30 <= labels.count(c) <= 40 for c in range(10))
    train_images = {x.tobytes() for x, _ in data.splits["train"]}
    assert sum(x.tobytes() in train_images for x, _ in data.splits["test"]) < 5  # only true duplicate digits


def write_images(root, size=(8, 8), per_class=6):
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray((rng.random(size) * 255).astype(np.uint8)).save(root / c / f"{i}.png")


def test_image_folder_reads_checks_sizes_and_resizes(tmp_path):
    write_images(tmp_path / "imgs")
    Image.fromarray(np.zeros((5, 7), dtype=np.uint8)).save(tmp_path / "imgs" / "dog" / "odd.png")
    data = DATA.build({"type": "image_folder", "root": str(tmp_path / "imgs")}, "data", seed=0)
    with pytest.raises(
        DataError,
        match=r"odd.png: image is 5×7 \(H×W\), expected 8×8; resize the images or set "
        r"data.resize=true",
    ):
        data.prepare()
    data = DATA.build({"type": "image_folder", "root": str(tmp_path / "imgs"), "resize": True}, "data", seed=0)
    data.prepare()
    assert data.info().classes == ["cat", "dog"] and data.info().image_size == (8, 8)
    assert sum(len(v) for v in data.splits.values()) == 13
    with pytest.raises(DataError, match="data.root: folder not found"):
        DATA.build({"type": "image_folder", "root": str(tmp_path / "none")}, "data", seed=0).prepare()


def test_text_file_and_its_errors(tmp_path):
    (tmp_path / "t.csv").write_text(
        "text,label\n" + "".join(f"good thing {i},pos\nbad thing {i},neg\n" for i in range(20))
    )
    data = DATA.build(
        {"type": "text_file", "path": str(tmp_path / "t.csv"), "header": True, "tokenizer": "word"}, "data", seed=0
    )
    data.prepare()
    assert data.info().classes == ["neg", "pos"] and sum(len(v) for v in data.splits.values()) == 40
    (tmp_path / "bad.tsv").write_text("only text\n")
    with pytest.raises(DataError, match=r"bad.tsv line 1 has 1 column \('only text'\), expected 2"):
        DATA.build({"type": "text_file", "path": str(tmp_path / "bad.tsv")}, "data", seed=0).prepare()


def write_locale(root):
    for lang, words in (("de", "Das ist ein deutscher Satz Nummer"), ("fr", "Ceci est une phrase française numéro")):
        folder = root / lang / "LC_MESSAGES"
        folder.mkdir(parents=True)
        catalog = polib.POFile()
        for i in range(40):
            catalog.append(polib.POEntry(msgid=f"Sentence {i}", msgstr=f"{words} {i}"))
        catalog.append(polib.POEntry(msgid="Short", msgstr="Kurz"))  # under min_chars: left out
        catalog.save(str(folder / "app.po"))


def test_po_language_reads_translations(tmp_path):
    write_locale(tmp_path / "locale")
    data = DATA.build(
        {"type": "po_language", "locale_dirs": [str(tmp_path / "locale")], "languages": ["de", "fr"]}, "data", seed=0
    )
    data.prepare()
    texts = [e["text"] for split in data.splits.values() for e in split]
    assert len(texts) == 80 and "Kurz" not in texts
    with pytest.raises(DataError, match="no it/LC_MESSAGES/\\*.po"):
        DATA.build(
            {"type": "po_language", "locale_dirs": [str(tmp_path / "locale")], "languages": ["it"]}, "data", seed=0
        ).prepare()


def test_digits_config_reaches_97_percent_and_predicts_images(tmp_path, capsys):
    from eeap.config.loader import load_config

    metrics = train(
        load_config(
            CONFIGS / "digits.yaml", [f"run_dir={tmp_path}/run", "logger=none", "trainer.enable_progress_bar=false"]
        )
    )
    assert metrics["test/accuracy"] >= 0.97 and metrics["test/f1"] >= 0.97
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test/accuracy"] == metrics["test/accuracy"]
    from sklearn.datasets import load_digits

    digits = load_digits()
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"d{i}.png")
        Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8)).save(paths[-1])
    Image.fromarray(np.zeros((9, 9), dtype=np.uint8)).save(tmp_path / "big.png")
    (tmp_path / "list.txt").write_text("".join(f"{p}\n" for p in paths) + f"{tmp_path / 'big.png'}\n")
    code = predict_main(
        [metrics["best_checkpoint"], "--input", str(tmp_path / "list.txt"), "--plot-attention", str(tmp_path / "plots")]
    )
    out, err = capsys.readouterr()
    assert code == 1 and out.splitlines()[:5] == [str(d) for d in digits.target[:5]] and out.splitlines()[5] == ""
    assert "line 6: " in err and "image is 9×9 (H×W), expected 8×8" in err
    assert len(list((tmp_path / "plots").glob("*.png"))) == 5
    assert load_task(metrics["best_checkpoint"]).info.classes == [str(i) for i in range(10)]


@pytest.mark.parametrize(
    "config, extra",
    [
        ("digits_vit.yaml", ["model.plot_examples=2", "logger.use=[csv]"]),
        ("langid.yaml", ["model.predict.pool=mean", "model.attend=none"]),
        ("text_file.yaml", ["model.predict.pool=cls", "model.attend=none"]),
    ],
)
def test_other_classification_configs(tmp_path, config, extra):
    from eeap.config.loader import load_config

    write_locale(tmp_path / "locale")
    (tmp_path / "t.tsv").write_text("".join(f"nice day {i}\tpos\nawful day {i}\tneg\n" for i in range(40)))
    data = {
        "langid.yaml": [f"data.locale_dirs=[{tmp_path / 'locale'}]", "data.languages=[de, fr]"],
        "text_file.yaml": [f"data.path={tmp_path / 't.tsv'}"],
    }.get(config, [])
    cfg = load_config(
        CONFIGS / config,
        [
            f"run_dir={tmp_path}/run",
            "logger=none",
            "trainer.enable_progress_bar=false",
            "trainer.max_epochs=1",
            *data,
            *extra,
        ],
    )
    metrics = train(cfg)
    assert 0.0 <= metrics["test/accuracy"] <= 1.0
    if config == "digits_vit.yaml":
        assert len(list((tmp_path / "run" / "figures").glob("val_attention_*.png"))) == 2


def test_text_predict_lines(tmp_path):
    from eeap.config.loader import load_config
    from eeap.model.prediction import DecodeOptions

    (tmp_path / "t.tsv").write_text("".join(f"nice day {i}\tpos\nawful day {i}\tneg\n" for i in range(40)))
    cfg = load_config(
        CONFIGS / "text_file.yaml",
        [
            f"run_dir={tmp_path}/run",
            "logger=none",
            f"data.path={tmp_path / 't.tsv'}",
            "trainer.enable_progress_bar=false",
            "trainer.max_epochs=8",
        ],
    )
    task = load_task(train(cfg)["best_checkpoint"])
    outputs, problems = task.predict_lines(["nice day 3", "", "awful zebra day"])
    assert [o and o["output"] for o in outputs] == ["pos", None, "neg"] and problems.skipped == 1
    assert any("not in the vocabulary, read as <unk>: 'zebra'" in m for m in problems.messages)
    ranked, _ = task.predict_lines(["nice day 3"], DecodeOptions(n_best=2, attention=True))
    record = ranked[0]
    assert [h["output"] for h in record["n_best"]] == ["pos", "neg"] and record["score"] == record["n_best"][0]["score"]
    assert abs(sum(h["score"] for h in record["n_best"]) - 1) < 1e-4  # two classes: the probabilities sum to 1
    assert len(record["attention"]) == 3 + task.head.prepends_token  # a weight per token of "nice day 3"
