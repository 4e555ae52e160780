"""Local (Luong), hard (Show, Attend and Tell) and gated (GA-Net) attention, and the U-Net attention gate."""

import math

import pytest
import torch
import torch.nn.functional as F

import eeap  # noqa: F401
from eeap.config.registry import ATTEND
from eeap.errors import ConfigError


def build(section, dim=4):
    return ATTEND.build(section, "model.attend", query_dim=dim, key_dim=dim)


def test_local_monotonic_window_by_hand():
    attn = build({"type": "local", "mode": "monotonic", "window": 1, "score": {"type": "dot"}})
    keys = torch.zeros(1, 6, 4)  # all scores 0: uniform inside the window
    values = torch.arange(6.0).view(1, 6, 1).expand(1, 6, 4)
    context, weights = attn(torch.ones(1, 4), keys, values, step=3)
    assert torch.allclose(weights, torch.tensor([[0, 0, 1 / 3, 1 / 3, 1 / 3, 0]]))  # positions 2, 3, 4
    assert torch.allclose(context, torch.full((1, 4), 3.0))
    _, all_steps = attn(torch.ones(1, 2, 4), keys, values)  # queries are steps 0 and 1
    assert torch.allclose(all_steps[0, 0], torch.tensor([0.5, 0.5, 0, 0, 0, 0]))


def test_local_predictive_position_and_gaussian_by_hand():
    attn = build({"type": "local", "mode": "predictive", "window": 2, "score": {"type": "dot"}})
    with torch.no_grad():
        for p in attn.position.parameters():
            p.zero_()  # sigmoid(0) = 0.5 -> p_t = S / 2
    keys = torch.zeros(1, 8, 4)
    mask = torch.tensor([[True] * 6 + [False] * 2])  # S = 6 -> p_t = 3
    _, weights = attn(torch.ones(1, 4), keys, keys, mask)
    sigma = 2 / 2
    expected = torch.zeros(8)
    for s in range(1, 6):  # window [1, 5], uniform softmax 1/5 times the Gaussian
        expected[s] = 0.2 * math.exp(-((s - 3) ** 2) / (2 * sigma**2))
    assert torch.allclose(weights[0], expected, atol=1e-6)


def test_wrappers_reject_scoreless_inner_with_the_nested_path_and_the_valid_names():
    with pytest.raises(ConfigError) as e:
        build({"type": "hard", "score": {"type": "multihead", "num_heads": 2}})
    assert str(e.value) == (
        "model.attend.score.type: 'multihead' is an attention (alignment function), but here a "
        "score attention is needed. Valid options: additive, cosine, dot, general, location, "
        "scaled_dot"
    )
    with pytest.raises(ConfigError, match=r"^model.attend.score.type: 'gated' is an attention .alignment function."):
        build({"type": "local", "score": {"type": "gated"}})  # a wrapper wraps a score of its own, not another wrapper
    with pytest.raises(
        ConfigError,
        match=r"^model.attend.score.hidden_dim: expected int ≥ 1 or null for attend "
        r"'additive', got int 0$",
    ):
        build({"type": "gated", "score": {"type": "additive", "hidden_dim": 0}})


def test_hard_eval_is_argmax_of_inner_softmax():
    torch.manual_seed(0)
    attn = build({"type": "hard", "score": {"type": "dot"}}).eval()
    q, k = torch.randn(3, 4), torch.randn(3, 5, 4)
    context, weights = attn(q, k, k)
    choice = torch.einsum("bd,bsd->bs", q, k).argmax(-1)
    assert torch.equal(weights, F.one_hot(choice, 5).float())
    assert torch.allclose(context, k[torch.arange(3), choice])


def test_hard_reinforce_loss_by_hand():
    torch.manual_seed(0)
    attn = build({"type": "hard", "score": {"type": "dot"}, "entropy_weight": 0.5, "baseline_decay": 0.9}).train()
    q = torch.randn(2, 4, requires_grad=True)
    k = torch.randn(2, 3, 4)
    _, weights = attn(q, k, k)
    assert torch.all(weights.sum(-1) == 1) and set(weights.unique().tolist()) == {0.0, 1.0}
    probs = torch.softmax(torch.einsum("bd,bsd->bs", q, k), -1)
    log_p = torch.log((probs * weights).sum(-1))  # log p(sampled)
    entropy = -(probs * probs.log()).sum(-1)
    reward = torch.tensor([1.0, 3.0])
    loss = attn.auxiliary_loss(reward)
    expected = -(reward * log_p).mean() - 0.5 * entropy.mean()  # baseline 0 at first
    assert torch.allclose(loss, expected, atol=1e-6)
    assert torch.isclose(attn.baseline, torch.tensor(0.1 * 2.0))  # moving average of mean reward 2
    loss.backward()
    assert torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0
    assert attn.auxiliary_loss(reward) == 0  # consumed


def test_hard_gumbel_is_one_hot_with_gradient():
    torch.manual_seed(0)
    attn = build({"type": "hard", "score": {"type": "dot"}, "estimator": "gumbel"}).train()
    q, k = torch.randn(2, 4, requires_grad=True), torch.randn(2, 5, 4)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    context, weights = attn(q, k, k, mask)
    assert torch.all(weights.sum(-1) == 1) and torch.all(weights[1, 2:] == 0)
    context.sum().backward()
    assert q.grad.abs().sum() > 0


def test_gated_all_open_equals_inner_softmax_and_all_shut_picks_best():
    torch.manual_seed(0)
    attn = build({"type": "gated", "score": {"type": "dot"}, "sparsity_weight": 0.1}).eval()
    q, k = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    with torch.no_grad():
        attn.gate_out.bias.fill_(50.0)  # every gate open
    context, weights = attn(q, k, k, mask)
    reference = torch.softmax((q @ k.transpose(1, 2)).masked_fill(~mask.unsqueeze(1), -1e9), -1)
    assert torch.allclose(weights, reference, atol=1e-6)
    with torch.no_grad():
        attn.gate_out.bias.fill_(-50.0)  # every gate shut: the most probable valid position opens
    _, weights = attn(q, k, k, mask)
    assert torch.all((weights == 0) | (weights == 1)) and torch.all(weights.sum(-1) == 1)
    assert torch.all(weights[1, :, 3:] == 0)


def test_gated_sparsity_loss_by_hand():
    torch.manual_seed(0)
    attn = build({"type": "gated", "score": {"type": "dot"}, "sparsity_weight": 0.1}).train()
    with torch.no_grad():
        attn.gate_out.weight.zero_()
        attn.gate_out.bias.fill_(math.log(3.0))  # sigmoid = 0.75 everywhere
    q, k = torch.randn(2, 3, 4, requires_grad=True), torch.randn(2, 5, 4)
    context, _ = attn(q, k, k)
    assert torch.isclose(attn.auxiliary_loss(torch.zeros(2)), torch.tensor(0.075))
    context.sum().backward()
    assert torch.isfinite(q.grad).all()


def test_attention_gate_by_hand():
    torch.manual_seed(0)
    gate = ATTEND.build({"type": "attention_gate", "inter_channels": 2}, in_channels=3, gating_channels=5).eval()
    x, g = torch.randn(2, 3, 8, 8), torch.randn(2, 5, 4, 4)
    with torch.no_grad():
        gate.psi.weight.zero_()
        gate.psi.bias.fill_(math.log(4.0))  # alpha = sigmoid(log 4) = 0.8 everywhere
    out, alpha = gate(x, g)
    assert alpha.shape == (2, 1, 8, 8) and torch.allclose(alpha, torch.full_like(alpha, 0.8))
    assert torch.allclose(out, gate.out(0.8 * x), atol=1e-6)
    gate.psi.bias.data.fill_(0.3)
    gate.psi.weight.data.normal_()
    _, alpha = gate(x, g)
    theta = gate.theta(x)
    phi = F.interpolate(gate.phi(g), size=theta.shape[-2:], mode="bilinear", align_corners=False)
    coarse = torch.sigmoid(gate.psi(F.relu(theta + phi)))
    assert torch.allclose(alpha, F.interpolate(coarse, size=(8, 8), mode="bilinear", align_corners=False))


def test_attention_gate_on_the_skips_grid_resamples_nothing(monkeypatch):
    """With the gating signal already on x's grid and ``subsample: 1`` (MONAI's arrangement) the gate is
    α = σ(ψ(ReLU(θx + φg))) pixel by pixel, with no interpolation; on another grid it resamples as before."""
    torch.manual_seed(0)
    gate = ATTEND.build({"type": "attention_gate", "subsample": 1}, in_channels=4, gating_channels=6).eval()
    x, g = torch.randn(2, 4, 8, 8), torch.randn(2, 6, 8, 8)
    calls = []
    interpolate = F.interpolate
    monkeypatch.setattr(F, "interpolate", lambda *a, **k: calls.append(k) or interpolate(*a, **k))
    out, alpha = gate(x, g)
    assert calls == []
    expected = torch.sigmoid(gate.psi(F.relu(gate.theta(x) + gate.phi(g))))  # (2, 1, 8, 8)
    torch.testing.assert_close(alpha, expected)
    torch.testing.assert_close(out, gate.out(expected * x))
    gate(x, torch.randn(2, 6, 4, 4))
    assert len(calls) == 1  # φ(g) to θ(x)'s grid; α is already on x's


def test_attention_gate_without_projection_outputs_alpha_times_x():
    torch.manual_seed(0)
    gate = ATTEND.build({"type": "attention_gate", "project": False}, in_channels=3, gating_channels=5).eval()
    x, g = torch.randn(2, 3, 8, 8), torch.randn(2, 5, 4, 4)
    out, alpha = gate(x, g)
    torch.testing.assert_close(out, alpha * x)
    assert not any("out" in name for name, _ in gate.named_parameters())
