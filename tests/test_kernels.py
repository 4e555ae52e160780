"""EEAP's fused CPU kernels against torch's own modules: the same outputs and gradients, and the plain path where the
kernels do not apply."""

import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

import eeap  # noqa: F401
from eeap import kernels
from eeap.config.registry import ATTEND, ENCODE
from eeap.errors import ConfigError
from eeap.kernels import gru as fused_gru
from eeap.kernels.additive import additive_scores
from eeap.model.task import build_predict
from eeap.predict.base import SequenceDecoder

pytestmark = pytest.mark.skipif(kernels.extension() is None, reason="the fused kernels could not be built here")

LENGTHS = torch.tensor([7, 3, 1, 5, 7, 2])


def gradients(loss, *tensors):
    """d loss / d each tensor."""
    return torch.autograd.grad(loss, tensors)


def weighted_sum(*outputs):
    """A loss that weights every output element differently, so a wrong gradient anywhere shows."""
    return sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in outputs)


@pytest.mark.parametrize("layers, bidirectional", [(1, True), (2, True), (1, False), (3, False)])
def test_gru_matches_torch_gru_on_packed_sequences(layers, bidirectional):
    torch.manual_seed(0)
    module = nn.GRU(5, 8, num_layers=layers, batch_first=True, bidirectional=bidirectional)
    x = torch.randn(len(LENGTHS), 7, 5, requires_grad=True)
    mask = torch.arange(7)[None] < LENGTHS[:, None]  # (batch, len)
    packed = nn.utils.rnn.pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
    expected, _ = nn.utils.rnn.pad_packed_sequence(module(packed)[0], batch_first=True, total_length=7)
    got = fused_gru.gru(module, x, mask)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert (got[~mask] == 0).all()
    params = [x, *module.parameters()]
    for g, e in zip(gradients(weighted_sum(got), *params), gradients(weighted_sum(expected), *params)):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5)


def test_gru_cell_matches_torch_gru_cell_and_its_state_gradient():
    torch.manual_seed(1)
    cell = nn.GRUCell(6, 4)
    x, h = torch.randn(3, 6, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    expected, got = cell(x, h), fused_gru.gru_cell(cell, x, h)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # two steps, so the gradient also flows through the state into the first step
    params = [x, h, *cell.parameters()]
    e = gradients(weighted_sum(cell(x, cell(x, h))), *params)
    g = gradients(weighted_sum(fused_gru.gru_cell(cell, x, fused_gru.gru_cell(cell, x, h))), *params)
    for a, b in zip(g, e):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_gru_by_hand_one_step():
    """h' = (1 − z) n + z h with every weight 0 but the biases: r = σ(1), z = σ(0) = ½, n = tanh(b_in + r b_hn)."""
    cell = nn.GRUCell(1, 1)
    with torch.no_grad():
        cell.weight_ih.zero_(), cell.weight_hh.zero_()
        cell.bias_ih.copy_(torch.tensor([1.0, 0.0, 0.5])), cell.bias_hh.copy_(torch.tensor([0.0, 0.0, 2.0]))
    r = 1 / (1 + torch.exp(torch.tensor(-1.0)))
    n = torch.tanh(0.5 + r * 2.0)
    out = fused_gru.gru_cell(cell, torch.zeros(1, 1), torch.full((1, 1), 0.4))
    assert out.item() == pytest.approx((0.5 * n + 0.5 * 0.4).item(), abs=1e-6)


@pytest.mark.parametrize("queries", [None, 4])
def test_additive_scores_match_the_plain_formula(queries):
    torch.manual_seed(2)
    q = torch.randn(3, queries or 1, 8, requires_grad=True)
    k = torch.randn(3, 5, 8, requires_grad=True)
    v = torch.randn(8, requires_grad=True)
    expected = (torch.tanh(q.unsqueeze(2) + k.unsqueeze(1)) * v).sum(-1)  # (batch, queries, keys)
    got = additive_scores(q, k, v)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    for g, e in zip(gradients(weighted_sum(got), q, k, v), gradients(weighted_sum(expected), q, k, v)):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("style", ["bahdanau", "luong"])
def test_components_give_the_same_results_fused_or_reference(style):
    torch.manual_seed(3)
    encoder = ENCODE.build({"type": "rnn", "hidden": 8}, "model.encode", input_dim=5)
    decoder = build_predict(
        {"type": "rnn_decoder", "hidden": 8, "embed_dim": 4, "style": style, "input_feeding": False},
        {"type": "additive"},
        SequenceDecoder,
        vocab_size=11,
        encoder_dim=16,
    )
    x = torch.randn(len(LENGTHS), 7, 5)
    mask = torch.arange(7)[None] < LENGTHS[:, None]
    tokens = torch.randint(4, 11, (len(LENGTHS), 6))
    results = []
    for backend in ("fused", "reference"):
        kernels.use(backend)
        encoder.zero_grad(), decoder.zero_grad()
        logits, weights = decoder(tokens, encoder(x, mask), mask)
        weighted_sum(logits).backward()
        results.append([logits, weights] + [p.grad for p in [*encoder.parameters(), *decoder.parameters()]])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_kernels_apply_to_float32_on_cpu_outside_autocast_only():
    x = torch.zeros(2, 3)
    assert kernels.applies(x)
    assert not kernels.applies(x.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not kernels.applies(x)
    attention = ATTEND.build({"type": "additive"}, "model.attend", query_dim=3, key_dim=3).double()
    context, weights = attention(
        x.double()[:, None].expand(2, 4, 3) + 1, torch.rand(2, 5, 3).double(), torch.rand(2, 5, 3).double()
    )  # the plain path, in float64
    assert context.dtype == torch.float64 and torch.allclose(weights.sum(-1), torch.ones(2, 4).double())


def test_without_the_extension_components_use_plain_torch(monkeypatch):
    monkeypatch.setattr(kernels, "_extension", None)
    monkeypatch.setattr(kernels, "_tried", True)
    assert not kernels.applies(torch.zeros(1))
    encoder = ENCODE.build({"type": "rnn", "hidden": 4}, "model.encode", input_dim=3)
    out = encoder(torch.randn(2, 3, 3), torch.tensor([[True, True, True], [True, False, False]]))
    assert out.shape == (2, 3, 8) and (out[1, 1:] == 0).all()


def test_reference_mode_switches_them_off_and_unknown_modes_are_refused():
    kernels.use("reference")
    assert kernels.extension() is None and not kernels.applies(torch.zeros(1))
    with pytest.raises(ConfigError, match="kernels: unknown mode 'fast'. Valid options: auto, fused, reference"):
        kernels.use("fast")


def test_auto_without_a_compiler_uses_the_reference_silently(monkeypatch, recwarn):
    monkeypatch.setattr(kernels, "_tried", False)
    monkeypatch.setattr(kernels, "_extension", None)
    monkeypatch.setenv("CXX", "no-such-compiler")
    assert not kernels.can_build()
    assert kernels.extension() is None and not kernels.applies(torch.zeros(1))
    assert not recwarn.list


def test_fused_stops_the_run_when_the_build_fails(monkeypatch):
    import torch.utils.cpp_extension

    def fail(*args, **kwargs):
        raise RuntimeError("Error building extension 'eeap_kernels'")

    monkeypatch.setattr(torch.utils.cpp_extension, "load", fail)
    monkeypatch.setattr(kernels, "_tried", False)
    monkeypatch.setattr(kernels, "_extension", None)
    with pytest.raises(ConfigError, match="kernels=fused: EEAP's fused CPU kernels could not be built"):
        kernels.use("fused")
    kernels.use("auto")  # auto falls back to the reference, with one warning
    monkeypatch.setattr(kernels, "_tried", False)
    with pytest.warns(UserWarning, match="could not be built .Error building extension"):
        assert kernels.extension() is None


def test_one_build_per_set_of_sources_whatever_the_checkout(monkeypatch, tmp_path):
    here = Path(kernels.__file__).parent
    flags = kernels.build_flags()
    original = kernels.build_directory(flags)
    for name in kernels.SOURCES:  # the same sources in another checkout
        shutil.copyfile(here / name, tmp_path / name)
    monkeypatch.setattr(kernels, "__file__", str(tmp_path / "__init__.py"))
    assert kernels.build_directory(flags) == original
    assert kernels.build_directory(flags + ["-g"]) != original
    (tmp_path / "gru.cpp").write_text((here / "gru.cpp").read_text() + "\n// changed\n")
    assert kernels.build_directory(flags) != original
