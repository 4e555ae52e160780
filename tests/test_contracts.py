"""Contract tests: every registered component fills its role, over ``registry.names()`` (no hand-kept lists), so a
component added as one new file is checked here without an edit."""

import inspect

import pytest
import torch

from eeap.attend.base import Attention, SkipGate
from eeap.config.registry import ATTEND, DATA, EMBED, ENCODE, PREDICT, REGISTRIES, TASK, Registry
from eeap.data.base import DataInfo, DataModule
from eeap.embed.base import ImageEmbedder, TokenEmbedder
from eeap.encode.base import PyramidEncoder, SequenceEncoder
from eeap.errors import ConfigError
from eeap.model.task import Task, build_predict
from eeap.predict.base import ClassifierHead, SegmentationHead, SequenceDecoder
from eeap.training.callbacks import RunCallback

DIM = 8
ROLES = {
    "embed": (TokenEmbedder, ImageEmbedder),
    "encode": (SequenceEncoder, PyramidEncoder),
    "attend": (Attention, SkipGate),
    "predict": (SequenceDecoder, ClassifierHead, SegmentationHead),
    "task": (Task,),
    "data": (DataModule,),
    "callback": (RunCallback,),
}


def names(registry, role=None):
    return [n for n in registry.names() if role is None or issubclass(registry.get(n), role)]


@pytest.mark.parametrize("kind, name", [(k, n) for k, r in REGISTRIES.items() for n in r.names()])
def test_every_component_fills_a_role_of_its_kind_and_is_documented(kind, name):
    cls = REGISTRIES[kind].get(name)
    assert issubclass(cls, ROLES[kind]) and not inspect.isabstract(cls), f"{kind} '{name}' fills no role"
    assert cls.registered_name == name and REGISTRIES[kind].summary(name), "a docstring says what it is"


def test_the_sources_name_every_component_without_importing_them(tmp_path, monkeypatch):
    package = tmp_path / "plugins_for_test"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "thing.py").write_text(
        'from tests.test_contracts import THINGS\n\n\n@THINGS.register("widget")\n'
        'class Widget:\n    """A widget. More words."""\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("thing", "THINGS", ("plugins_for_test",))
    globals()["THINGS"] = registry
    assert registry.names() == ["widget"] and registry.summary("widget") == "A widget."
    import sys

    assert "plugins_for_test.thing" not in sys.modules
    assert registry.get("widget").__name__ == "Widget" and "plugins_for_test.thing" in sys.modules


@pytest.mark.parametrize("name", names(ATTEND, Attention))
def test_attention_contract(name):
    """Shapes, weights in [0, 1] summing to 1 (where the attention normalises), no weight on padding, a fully
    masked row gives zeros and no NaN, gradients reach query, keys and values; one query or many."""
    torch.manual_seed(0)
    attention = ATTEND.build({"type": name}, "model.attend", role=Attention, query_dim=DIM, key_dim=DIM).train()
    query = torch.randn(3, 4, DIM, requires_grad=True)
    keys = torch.randn(3, 6, DIM, requires_grad=True)
    values = torch.randn(3, 6, DIM, requires_grad=True)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[1, 4:] = False
    mask[2] = False  # nothing to attend to
    context, weights = attention(query, keys, values, mask, need_weights=True)
    assert context.shape == (3, 4, attention.context_dim(DIM)) and weights.shape[-2:] == (4, 6)
    weights = weights if weights.dim() == 3 else weights.mean(1)  # per-head weights, averaged
    assert torch.isfinite(context).all() and torch.isfinite(weights).all()
    assert (weights >= 0).all() and (weights <= 1 + 1e-6).all()
    assert (weights[1, :, 4:] == 0).all() and (weights[2] == 0).all()
    sums = weights[:2].sum(-1)
    if attention.normalized:
        torch.testing.assert_close(sums, torch.ones_like(sums))
    else:
        assert (sums <= 1 + 1e-6).all()
    (context[:2].sum() + attention.auxiliary_loss(torch.randn(3))).backward()
    for tensor in (query, values):
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all()
    attention.eval()
    single, single_weights = attention(query[:, 0].detach(), keys.detach(), values.detach(), mask, need_weights=True)
    full, _ = attention(query[:, :1].detach(), keys.detach(), values.detach(), mask, need_weights=True)
    torch.testing.assert_close(single, full[:, 0])


@pytest.mark.parametrize("name", names(ATTEND, SkipGate))
def test_skip_gate_contract(name):
    gate = ATTEND.build({"type": name}, "model.attend", role=SkipGate, in_channels=4, gating_channels=6).eval()
    x = torch.randn(2, 4, 8, 8)
    out, alpha = gate(x, torch.randn(2, 6, 4, 4))
    assert out.shape == x.shape and alpha.shape == (2, 1, 8, 8) and ((alpha >= 0) & (alpha <= 1)).all()


@pytest.mark.parametrize("name", names(EMBED, TokenEmbedder))
def test_token_embedding_contract(name):
    embed = EMBED.build({"type": name}, "model.embed", role=TokenEmbedder, vocab_size=11)
    assert embed(torch.randint(0, 11, (2, 5))).shape == (2, 5, embed.output_dim)


@pytest.mark.parametrize("name", names(EMBED, ImageEmbedder))
def test_image_embedding_contract(name):
    embed = EMBED.build({"type": name}, "model.embed", role=ImageEmbedder, in_channels=3, image_size=[32, 64])
    height, width = embed.grid
    assert embed(torch.rand(2, 3, 32, 64)).shape == (2, height * width, embed.output_dim)


@pytest.mark.parametrize("name", names(ENCODE, SequenceEncoder))
def test_sequence_encoder_contract(name):
    encoder = ENCODE.build({"type": name}, "model.encode", role=SequenceEncoder, input_dim=DIM).eval()
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    x = torch.randn(2, 5, DIM)
    out = encoder(x, mask)
    assert out.shape == (2, 5, encoder.output_dim)
    if name != "identity":  # the identity passes its input through as it is
        assert (out[1, 2:] == 0).all()
        changed = x.clone()
        changed[1, 2:] = 9.0  # what stands at padding cannot change what a real position reads
        torch.testing.assert_close(encoder(changed, mask)[1, :2], out[1, :2])


@pytest.mark.parametrize("name", names(ENCODE, PyramidEncoder))
def test_pyramid_encoder_contract(name):
    encoder = ENCODE.build({"type": name}, "model.encode", role=PyramidEncoder, in_channels=3).eval()
    features = encoder(torch.rand(1, 3, 64, 96))
    assert len(features) == len(encoder.out_channels) == len(encoder.strides)
    for feature, channels, stride in zip(features, encoder.out_channels, encoder.strides):
        assert feature.shape == (1, channels, 64 // stride, 96 // stride)
    assert encoder.size_divisibility == encoder.strides[-1]


@pytest.mark.parametrize("name", names(PREDICT, SequenceDecoder))
def test_sequence_decoder_contract(name):
    decoder = build_predict({"type": name}, {"type": "additive"}, SequenceDecoder, vocab_size=9, encoder_dim=DIM).eval()
    memory, mask = torch.randn(2, 5, DIM), torch.ones(2, 5, dtype=torch.bool)
    logits, weights = decoder(torch.randint(4, 9, (2, 3)), memory, mask, need_weights=True)
    assert logits.shape == (2, 3, 9) and weights.shape == (2, 3, 5)
    step_logits, _, step_weights = decoder.step(torch.full((2, 1), 2), decoder.start(memory, mask))
    assert step_logits.shape == (2, 9) and step_weights.shape == (2, 5)


PER_HEAD = {"type": "multihead", "num_heads": 2, "need_weights": True, "average_heads": False}


def per_head_pair(build):
    """A part built twice with one set of parameters: its multi-head attention giving per-head weights, and their
    mean (``average_heads: true``)."""
    torch.manual_seed(0)
    per_head, averaged = build(PER_HEAD), build({**PER_HEAD, "average_heads": True})
    averaged.load_state_dict(per_head.state_dict())
    return per_head.eval(), averaged.eval()


@pytest.mark.parametrize("name", names(PREDICT, SequenceDecoder))
def test_sequence_decoders_and_search_carry_per_head_weights(name):
    """Per-head weights (batch, heads, tgt_len, src_len) flow through teacher forcing, a step and beam search (with
    its coverage penalty) unchanged but for the head axis: their mean is what averaged heads give."""
    from eeap.predict.search import beam_search

    per_head, averaged = per_head_pair(
        lambda attend: build_predict({"type": name}, attend, SequenceDecoder, vocab_size=9, encoder_dim=DIM)
    )
    memory, mask = torch.randn(2, 5, DIM), torch.ones(2, 5, dtype=torch.bool)
    mask[1, 3:] = False
    tokens = torch.randint(4, 9, (2, 3))
    logits, weights = per_head(tokens, memory, mask, need_weights=True)
    reference_logits, reference = averaged(tokens, memory, mask, need_weights=True)
    assert weights.shape == (2, 2, 3, 5)
    torch.testing.assert_close(logits, reference_logits)
    torch.testing.assert_close(weights.mean(1), reference)
    _, _, step = per_head.step(torch.full((2, 1), 2), per_head.start(memory, mask))
    _, _, reference_step = averaged.step(torch.full((2, 1), 2), averaged.start(memory, mask))
    assert step.shape == (2, 2, 5)
    torch.testing.assert_close(step.mean(1), reference_step)
    hyps = beam_search(per_head, memory, mask, 6, beam_size=3, alpha=0.6, coverage=0.4)
    expected = beam_search(averaged, memory, mask, 6, beam_size=3, alpha=0.6, coverage=0.4)
    assert torch.equal(hyps.tokens, expected.tokens) and hyps.weights.shape == (2, 2, hyps.tokens.shape[1], 5)
    torch.testing.assert_close(hyps.scores, expected.scores)
    torch.testing.assert_close(hyps.weights.mean(1), expected.weights)


@pytest.mark.parametrize("name", names(PREDICT, ClassifierHead))
def test_classifier_heads_carry_per_head_weights(name):
    per_head, averaged = per_head_pair(
        lambda attend: build_predict({"type": name}, attend, ClassifierHead, input_dim=DIM, num_classes=3)
    )
    x, mask = torch.randn(2, 5, DIM), torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    (logits, weights), (reference_logits, reference) = per_head(x, mask), averaged(x, mask)
    torch.testing.assert_close(logits, reference_logits)
    if reference is not None:  # attention pooling
        assert weights.shape == (2, 2, 5) and (weights[1, :, 3:] == 0).all()
        torch.testing.assert_close(weights.mean(1), reference)


@pytest.mark.parametrize("name", names(PREDICT, ClassifierHead))
def test_classifier_head_contract(name):
    head = build_predict({"type": name}, {"type": "additive"}, ClassifierHead, input_dim=DIM, num_classes=3)
    logits, _ = head(torch.randn(2, 5, DIM), torch.ones(2, 5, dtype=torch.bool))
    assert logits.shape == (2, 3)


@pytest.mark.parametrize("name", names(PREDICT, SegmentationHead))
def test_segmentation_head_contract(name):
    head = build_predict(
        {"type": name},
        {"type": "attention_gate"},
        SegmentationHead,
        encoder_channels=[4, 8, 16],
        encoder_strides=[1, 2, 4],
        num_classes=2,
    ).eval()
    logits, gates, _ = head([torch.randn(1, 4, 16, 16), torch.randn(1, 8, 8, 8), torch.randn(1, 16, 4, 4)])
    assert logits.shape == (1, 2, 16, 16) and [g.shape[-1] for g in gates] == [16, 8]


@pytest.mark.parametrize("name", TASK.names())
def test_every_task_says_what_export_traces(name):
    """``eeap export`` asks the task for its example inputs (and a task exported whole for its outputs): it never
    branches on a task's name."""
    import eeap.serving.export

    assert TASK.get(name).example_inputs is not Task.example_inputs
    assert f'"{name}"' not in inspect.getsource(eeap.serving.export)


@pytest.mark.parametrize("name", TASK.names())
def test_task_contract(name):
    cls = TASK.get(name)
    assert callable(cls.from_config) and cls.monitor[1] in ("min", "max")
    assert "info" in inspect.signature(cls.from_config).parameters


@pytest.mark.parametrize("name", DATA.names())
def test_data_contract(name):
    cls = DATA.get(name)
    assert issubclass(cls.info_class, DataInfo) and "seed" in inspect.signature(cls.__init__).parameters


@pytest.mark.parametrize(
    "kind, section, role, wired, message",
    [
        (
            "encode",
            {"type": "unet_conv"},
            SequenceEncoder,
            {"input_dim": 4},
            "model.encode.type: 'unet_conv' is an image pyramid encoder, but here a sequence encoder is needed. "
            "Valid options: identity, rnn, transformer",
        ),
        (
            "embed",
            {"type": "patch"},
            TokenEmbedder,
            {"vocab_size": 4},
            "model.embed.type: 'patch' is an image embedding (images → a grid of vectors), but here a token embedding "
            "(token ids → vectors) is needed. Valid options: token",
        ),
        (
            "predict",
            {"type": "classifier"},
            SequenceDecoder,
            {"vocab_size": 4, "encoder_dim": 4},
            "model.predict.type: 'classifier' is a classifier head, but here a sequence decoder is needed. "
            "Valid options: rnn_decoder, transformer_decoder",
        ),
    ],
)
def test_a_part_of_another_role_is_refused_in_one_line(kind, section, role, wired, message):
    with pytest.raises(ConfigError) as e:
        REGISTRIES[kind].build(section, f"model.{kind}", role=role, **wired)
    assert str(e.value) == message


def test_nested_parts_report_their_own_path():
    with pytest.raises(ConfigError) as e:
        EMBED.build(
            {"type": "image_grid", "encoder": {"type": "unet_conv", "channels": [8, 0]}},
            "model.embed",
            in_channels=1,
            image_size=[16, 16],
        )
    assert (
        str(e.value)
        == "model.embed.encoder.channels: expected a list of int ≥ 1 for encode 'unet_conv', got list [8, 0]"
    )
    with pytest.raises(ConfigError, match=r"^model.embed.encoder.type: 'rnn' is a sequence encoder, but here an image"):
        EMBED.build(
            {"type": "image_grid", "encoder": {"type": "rnn"}}, "model.embed", in_channels=1, image_size=[16, 16]
        )


SMALL_RUNS = {  # a shipped config of each task, shrunk; a new task adds its own here
    "translation": ("translation/dates.yaml", ["data.train_size=64", "data.val_size=8", "data.test_size=8"]),
    "classification": ("classification/langid.yaml", ["data.languages=[de, fr]"]),
    "captioning": (
        "captioning/formulas.yaml",
        ["data.train_size=16", "data.val_size=4", "data.test_size=4", "model.embed.channels=[8,8,8,16]"],
    ),
    "segmentation": (
        "segmentation/shapes.yaml",
        ["data.train_size=8", "data.val_size=4", "data.test_size=4", "data.image_size=32"],
    ),
}


@pytest.mark.parametrize("name", TASK.names())
def test_a_task_logs_the_metrics_it_declares(name):
    """``metric_names`` is what a run checks a ``monitor`` against before training: it must be what validation logs."""
    import lightning as L

    from eeap import build
    from eeap.config.loader import load_config
    from tests.conftest import QUIET, ROOT

    config, overrides = SMALL_RUNS[name]
    task, data = build(load_config(ROOT / "configs" / config, [*QUIET, *overrides]))
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, limit_val_batches=1)
    trainer.validate(task, datamodule=data, verbose=False)
    logged = {key for key in trainer.callback_metrics if key.startswith("val/")}
    assert logged == {f"val/{metric}" for metric in task.model.metric_names()}
    assert task.monitor[0] in task.logged_metrics()


@pytest.mark.parametrize("name", TASK.names())
def test_every_task_logs_a_table_of_examples_with_attention_images(name, tmp_path):
    """Each validation's W&B table: input, output and reference of a few fixed examples, and the attention figure."""
    from eeap.config.loader import load_config
    from eeap.training.run import train
    from tests.conftest import QUIET, ROOT
    from tests.translation.test_train import history, logged_tables

    config, overrides = SMALL_RUNS[name]
    keys = [*QUIET, *overrides, "logger.use=[wandb]", "model.plot_examples=2", "test=false", f"run_dir={tmp_path}"]
    keys += ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]
    train(load_config(ROOT / "configs" / config, keys))
    (table,) = logged_tables(tmp_path, "val/examples")
    assert table["columns"] == ["example", "input", "output", "reference", "attention"]
    assert [row[0] for row in table["data"]] == [0, 1]
    image_input = name in ("captioning", "segmentation")
    for _, shown, output, reference, attention in table["data"]:
        assert (shown["_type"] == "image-file") if image_input else isinstance(shown, str) and shown
        if name == "segmentation":  # masks as images
            assert output["_type"] == reference["_type"] == "image-file"
        else:
            assert isinstance(output, str) and isinstance(reference, str) and reference
        assert attention["_type"] == "image-file"
    rows = history(tmp_path)
    (metrics_step,) = [row["trainer/global_step"] for row in rows if f"val/{task_metric(name)}" in row]
    assert [row["trainer/global_step"] for row in rows if "val/examples" in row] == [metrics_step]


def task_metric(name):
    return TASK.get(name).monitor[0].split("/")[1]


@pytest.mark.parametrize("name", [n for n in TASK.names() if n != "segmentation"])  # segmentation attends by gates
def test_per_head_attention_trains_plots_and_predicts_in_every_task(name, tmp_path, capsys):
    """``multihead`` with ``average_heads: false`` in every task whose predict part attends: training (with the
    doubly stochastic penalty where the task has it), each validation's figures (the mean over heads), and predict's
    ``--attention`` records: ``attention`` is the mean of ``attention_heads``."""
    import json

    import numpy as np
    from PIL import Image

    from eeap import load
    from eeap.config.loader import load_config
    from eeap.serving.inference import main as predict_main
    from eeap.training.run import train
    from tests.conftest import QUIET, ROOT

    config, overrides = SMALL_RUNS[name]
    keys = [*QUIET, *overrides, "model.plot_examples=2", "test=false", f"run_dir={tmp_path / 'run'}"]
    keys += ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]
    keys += ["model.attend={type: multihead, num_heads: 4, need_weights: true, average_heads: false}"]
    keys += ["model.attention_penalty=1.0"] if name != "classification" else []
    train(load_config(ROOT / "configs" / config, keys))
    assert len(list((tmp_path / "run" / "figures").glob("val_attention_*.png"))) == 2
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    line = {"translation": "4 March 2021", "classification": "Bonjour, le monde entier"}.get(name)
    if line is None:  # an image of the model's size
        info = load(checkpoint).info
        picture = np.random.default_rng(0).integers(0, 255, (*info.image_size, 3), dtype=np.uint8)
        Image.fromarray(picture).convert("L" if info.channels == 1 else "RGB").save(tmp_path / "x.png")
        line = str(tmp_path / "x.png")
    (tmp_path / "in.txt").write_text(line + "\n")
    capsys.readouterr()
    code = predict_main([str(checkpoint), "--input", str(tmp_path / "in.txt"), "--format", "jsonl", "--attention"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    heads, mean = np.array(record["attention_heads"]), np.array(record["attention"])
    assert heads.shape[0] == 4 and heads.shape[1:] == mean.shape
    np.testing.assert_allclose(heads.mean(0), mean, atol=1e-4)  # both rounded to 4 places
