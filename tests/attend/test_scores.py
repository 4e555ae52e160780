"""Score-based attentions against values worked out by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

import eeap  # noqa: F401
from eeap.attend.base import Attention, masked_softmax
from eeap.config.registry import ATTEND
from eeap.errors import ConfigError


def build(name, query_dim=2, key_dim=2, **kw):
    return ATTEND.build({"type": name, **kw}, query_dim=query_dim, key_dim=key_dim)


Q = torch.tensor([[[1.0, 0.0]]])  # (1, 1, 2)
K = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (1, 2, 2)
V = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # (1, 2, 2)


def softmax2(a, b):
    return math.exp(a) / (math.exp(a) + math.exp(b))


def expect(weights_first):
    """Context for weights (w, 1-w) over V."""
    w = weights_first
    return torch.tensor([[[w * 1 + (1 - w) * 3, w * 2 + (1 - w) * 4]]])


def test_dot_by_hand():
    context, weights = build("dot")(Q, K, V)
    w = softmax2(1, 0)  # scores q·k = [1, 0]
    assert torch.allclose(weights, torch.tensor([[[w, 1 - w]]]))
    assert torch.allclose(context, expect(w))


def test_scaled_dot_by_hand_and_against_torch():
    context, weights = build("scaled_dot")(Q, K, V)
    w = softmax2(1 / math.sqrt(2), 0)
    assert torch.allclose(context, expect(w))
    q, k, v = torch.randn(3, 4, 8), torch.randn(3, 6, 8), torch.randn(3, 6, 5)
    context, _ = build("scaled_dot", 8, 8)(q, k, v)
    assert torch.allclose(context, F.scaled_dot_product_attention(q, k, v), atol=1e-6)


def test_general_by_hand():
    attn = build("general")
    with torch.no_grad():
        attn.weight.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 3.0]]))  # W
    context, weights = attn(Q, K, V)
    w = softmax2(2, 0)  # q^T W k = [2, 0]
    assert torch.allclose(context, expect(w), atol=1e-6)


def test_additive_by_hand():
    attn = build("additive", hidden_dim=2)
    with torch.no_grad():
        attn.query_layer.weight.copy_(torch.eye(2))
        attn.key_layer.weight.copy_(torch.eye(2))
        attn.energy.weight.copy_(torch.tensor([[1.0, -1.0]]))
    context, weights = attn(Q, K, V)
    s0 = math.tanh(2) - math.tanh(0)  # v^T tanh(q + k0), q + k0 = (2, 0)
    s1 = math.tanh(1) - math.tanh(1)  # q + k1 = (1, 1)
    w = softmax2(s0, s1)
    assert torch.allclose(weights, torch.tensor([[[w, 1 - w]]]), atol=1e-6)


def test_cosine_by_hand():
    keys = torch.tensor([[[2.0, 0.0], [0.0, 3.0]]])  # cosines with q: 1 and 0
    context, weights = build("cosine", sharpness=5.0)(Q, keys, V)
    assert torch.allclose(weights, torch.tensor([[[softmax2(5, 0), 1 - softmax2(5, 0)]]]), atol=1e-6)


def test_location_ignores_keys_and_checks_length():
    attn = build("location", max_len=3)
    with torch.no_grad():
        attn.locations.weight.zero_()
        attn.locations.bias.copy_(torch.tensor([1.0, 0.0, 5.0]))
    _, w1 = attn(Q, K, V)
    _, w2 = attn(Q, torch.randn(1, 2, 2), V)
    assert torch.allclose(w1, w2) and torch.allclose(w1, torch.tensor([[[softmax2(1, 0), 1 - softmax2(1, 0)]]]))
    with pytest.raises(Exception, match="longer than max_len=3"):
        attn(Q, torch.randn(1, 4, 2), torch.randn(1, 4, 2))


@pytest.mark.parametrize("name", ATTEND.filling(Attention))
def test_mask_respected_and_gradients_finite(name):
    torch.manual_seed(0)
    attn = build(name, 8, 8)
    attn.eval()  # hard and gated sample in training; eval keeps this check deterministic
    q, k = torch.randn(2, 3, 8, requires_grad=True), torch.randn(2, 5, 8, requires_grad=True)
    v = torch.randn(2, 5, 8, requires_grad=True)
    mask = torch.tensor([[True, True, False, False, False], [False, False, False, False, False]])
    kwargs = {"need_weights": True}
    context, weights = attn(q, k, v, mask, **kwargs)
    assert torch.all(weights[0, :, 2:] == 0)  # padding gets no weight
    assert torch.all(weights[1] == 0)  # a fully masked row: zeros, no NaN
    if attn.normalized:
        assert torch.allclose(weights[0].sum(-1), torch.ones(3))
    changed = v.detach().clone()
    changed[0, 2:] = 100.0  # values under the mask must not leak into the context
    assert torch.allclose(attn(q, k, changed, mask, **kwargs)[0][0], context[0], atol=1e-5)
    context.sum().backward()
    assert torch.isfinite(v.grad).all() and (v.grad[0, 2:] == 0).all()
    for grad in (q.grad, k.grad):  # hard attention's argmax passes none to the query; location never reads keys
        assert grad is None or torch.isfinite(grad).all()


def test_masked_softmax_fully_masked_row_has_finite_gradient():
    scores = torch.randn(2, 4, requires_grad=True)
    mask = torch.tensor([[True, False, True, False], [False] * 4])
    weights = masked_softmax(scores, mask)
    weights.sum().backward()
    assert torch.all(weights[1] == 0) and torch.isfinite(scores.grad).all()


def test_single_query_drops_target_axis():
    context, weights = build("dot")(Q[:, 0], K, V)
    assert context.shape == (1, 2) and weights.shape == (1, 2)


@pytest.mark.parametrize("name", ["dot", "scaled_dot", "cosine"])
def test_dot_family_needs_equal_sizes(name):
    with pytest.raises(ConfigError, match="needs query and key of one size, got 4 and 6"):
        build(name, 4, 6)


def test_project_keys_once_equals_forward():
    torch.manual_seed(1)
    attn = build("additive", 4, 6)
    q, k = torch.randn(2, 4), torch.randn(2, 7, 6)
    c1, w1 = attn(q, k, k)
    c2, w2 = attn.attend_projected(q, attn.project_keys(k), k)
    assert torch.allclose(c1, c2) and torch.allclose(w1, w2)
