"""Linear attention: its weights by hand, and the linear-memory path against the reference path."""

import torch
import torch.nn.functional as F

from eeap.config.registry import ATTEND


def build(dim=2):
    attention = ATTEND.build({"type": "linear"}, "model.attend", query_dim=dim, key_dim=dim)
    with torch.no_grad():
        attention.key_layer.weight.copy_(torch.eye(dim))  # W = I: the keys as they are
    return attention


def test_weights_by_hand():
    # φ(x) = elu(x) + 1: φ([0, 0]) = [1, 1], φ([1, 0]) = [2, 1], φ([-1, 0]) = [e⁻¹, 1]
    keys = torch.tensor([[[1.0, 0.0], [0.0, 0.0], [-1.0, 0.0]]])
    values = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [3.0, 3.0]]])
    context, weights = build()(torch.tensor([[1.0, 0.0]]), keys, values)  # φ(q) = [2, 1]
    similarities = torch.tensor([2 * 2 + 1, 2 + 1, 2 * torch.e**-1 + 1])  # 5, 3, 1.7358
    expected = similarities / similarities.sum()
    torch.testing.assert_close(weights, expected[None])
    torch.testing.assert_close(context, (expected[:, None] * values[0]).sum(0)[None])


def test_linear_path_equals_the_reference_with_padding_and_gradients():
    torch.manual_seed(0)
    attention = ATTEND.build({"type": "linear"}, "model.attend", query_dim=6, key_dim=5)
    query, keys, values = torch.randn(3, 4, 6), torch.randn(3, 7, 5), torch.randn(3, 7, 3)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 5:] = False
    mask[2] = False
    reference, weights = attention(query, keys, values, mask, need_weights=True)
    fast, none = attention(query, keys, values, mask, need_weights=False)
    assert none is None and (weights[1, :, 5:] == 0).all() and (fast[2] == 0).all()
    torch.testing.assert_close(fast, reference)
    single, _ = attention(query[:, 0], keys, values, mask, need_weights=False)
    torch.testing.assert_close(single, reference[:, 0])
    grads = [
        torch.autograd.grad(out.sum(), attention.key_layer.weight)[0]
        for out in (attention(query, keys, values, mask, need_weights=flag)[0] for flag in (True, False))
    ]
    torch.testing.assert_close(grads[0], grads[1])
    assert F.elu(torch.tensor(-1.0)) + 1 > 0  # φ stays positive, so no division by zero on real positions
