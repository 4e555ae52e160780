"""Multi-head attention against nn.MultiheadAttention and F.scaled_dot_product_attention."""

import torch
import torch.nn.functional as F
from torch import nn

import eeap  # noqa: F401
from eeap.config.registry import ATTEND


def pair(dim=16, heads=4, causal=False):
    torch.manual_seed(0)
    ours = ATTEND.build({"type": "multihead", "num_heads": heads, "causal": causal}, query_dim=dim, key_dim=dim)
    ref = nn.MultiheadAttention(dim, heads, batch_first=True)
    with torch.no_grad():
        wq, wk, wv = ref.in_proj_weight.chunk(3)
        bq, bk, bv = ref.in_proj_bias.chunk(3)
        for proj, w, b in ((ours.q_proj, wq, bq), (ours.k_proj, wk, bk), (ours.v_proj, wv, bv)):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        ours.out_proj.weight.copy_(ref.out_proj.weight)
        ours.out_proj.bias.copy_(ref.out_proj.bias)
    return ours.eval(), ref.eval()


def test_equals_nn_multihead_with_padding_both_paths():
    ours, ref = pair()
    q, kv = torch.randn(3, 5, 16), torch.randn(3, 7, 16)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 4:] = False
    ref_out, ref_w = ref(q, kv, kv, key_padding_mask=~mask, need_weights=True, average_attn_weights=True)
    fast, none = ours(q, kv, kv, mask)
    slow, weights = ours(q, kv, kv, mask, need_weights=True)
    assert none is None
    assert torch.allclose(fast, ref_out, atol=1e-5)
    assert torch.allclose(slow, ref_out, atol=1e-5)
    assert torch.allclose(weights, ref_w, atol=1e-6)


def test_per_head_weights():
    ours, ref = pair()
    ours.average_heads = False
    x = torch.randn(2, 4, 16)
    _, weights = ours(x, x, x, need_weights=True)
    _, ref_w = ref(x, x, x, need_weights=True, average_attn_weights=False)
    assert weights.shape == (2, 4, 4, 4) and torch.allclose(weights, ref_w, atol=1e-6)


def test_causal_self_attention_equals_reference_and_incremental():
    ours, ref = pair(causal=True)
    x = torch.randn(2, 6, 16)
    causal_block = torch.triu(torch.ones(6, 6, dtype=torch.bool), 1)  # True = blocked (torch's convention)
    ref_out, _ = ref(x, x, x, attn_mask=causal_block)
    out, _ = ours(x, x, x)
    assert torch.allclose(out, ref_out, atol=1e-5)
    step, _ = ours(x[:, 3:4], x[:, :4], x[:, :4])  # one new query over the keys so far
    assert torch.allclose(step[:, 0], out[:, 3], atol=1e-5)
    with_pad, _ = ours(x, x, x, torch.ones(2, 6, dtype=torch.bool))
    assert torch.allclose(with_pad, ref_out, atol=1e-5)


def test_head_split_matches_raw_sdpa():
    ours, _ = pair(dim=8, heads=2)
    with torch.no_grad():
        for proj in (ours.q_proj, ours.k_proj, ours.v_proj, ours.out_proj):
            proj.weight.copy_(torch.eye(8))
            proj.bias.zero_()
    q, k, v = torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    heads = lambda t: t.view(2, -1, 2, 4).transpose(1, 2)  # noqa: E731
    raw = F.scaled_dot_product_attention(heads(q), heads(k), heads(v)).transpose(1, 2).reshape(2, 3, 8)
    assert torch.allclose(ours(q, k, v)[0], raw, atol=1e-6)


def test_fully_masked_batch_gives_no_nan():
    ours, _ = pair()
    x = torch.randn(2, 3, 16, requires_grad=True)
    mask = torch.tensor([[True, True, True], [False, False, False]])
    out, _ = ours(x, x, x, mask)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert torch.allclose(out[1], ours.out_proj.bias.expand(3, 16))  # nothing attended: zero context, then bias
