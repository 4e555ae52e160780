"""Decoders: teacher-forced forward agrees with step-by-step decoding; causality; attention plugs in."""

import pytest
import torch

from eeap import kernels
from eeap.attend.base import Attention
from eeap.config.registry import ATTEND
from eeap.errors import ConfigError
from eeap.model.task import build_predict
from eeap.predict.base import SequenceDecoder


def build(section, attend):
    """A decoder with its attention, as the translation task's builder wires them."""
    return build_predict(section, attend or "none", SequenceDecoder, vocab_size=10, encoder_dim=16)


# Every attention by its defaults, and variants.
ATTENDS = [{"type": name} for name in ATTEND.filling(Attention)] + [
    {"type": "local", "mode": "monotonic", "window": 2},
    {"type": "location", "max_len": 8},
    {"type": "hard", "score": {"type": "additive"}},
    None,
]


def memory(batch=3, src=6, dim=16):
    torch.manual_seed(0)
    mask = torch.ones(batch, src, dtype=torch.bool)
    mask[1, 4:] = False
    return torch.randn(batch, src, dim), mask


@pytest.mark.parametrize("attend", ATTENDS)
@pytest.mark.parametrize(
    "section",
    [
        {"type": "rnn_decoder", "hidden": 16, "embed_dim": 8},
        {"type": "rnn_decoder", "style": "luong", "cell": "lstm", "layers": 2, "hidden": 16, "embed_dim": 8},
        {
            "type": "rnn_decoder",
            "cell": "lstm",
            "context_gate": True,
            "hidden": 16,
            "embed_dim": 8,
        },  # Show, Attend, Tell
        {"type": "rnn_decoder", "style": "luong", "input_feeding": False, "layers": 2, "hidden": 16, "embed_dim": 8},
        {"type": "rnn_decoder", "style": "luong", "input_feeding": False, "cell": "lstm", "hidden": 16, "embed_dim": 8},
        {"type": "transformer_decoder", "dim": 16, "heads": 2, "ff_dim": 32, "dropout": 0.0},  # key-value cache
        {"type": "transformer_decoder", "dim": 16, "heads": 2, "ff_dim": 32, "dropout": 0.0, "cache": False},
    ],
)
@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_forward_equals_stepwise_decoding(section, attend, backend):
    """The teacher-forced forward (the parallel path where nothing feeds back, the fused kernels where they
    apply) computes what the reference step-by-step equations compute."""
    kernels.use(backend)
    if attend is None and section["type"] == "transformer_decoder":
        with pytest.raises(ConfigError, match="model.attend: predict 'transformer_decoder' needs an attention"):
            build(section, attend)
        return
    decoder = build(section, attend).eval()
    mem, mask = memory()
    tokens = torch.randint(4, 10, (3, 5))
    logits, weights = decoder(tokens, mem, mask, need_weights=True)
    state = decoder.start(mem, mask)
    for t in range(5):
        step_logits, state, step_weights = decoder.step(tokens[:, : t + 1], state)
        assert torch.allclose(step_logits, logits[:, t], atol=1e-5)
        if weights is not None:
            assert torch.allclose(step_weights, weights[:, t], atol=1e-5)
    if weights is not None:
        assert torch.all(weights[1, :, 4:] == 0)  # padding gets no attention


@pytest.mark.parametrize("attend", [{"type": "multihead", "num_heads": 2}, {"type": "additive"}])
def test_transformer_cache_decodes_as_the_prefix_path(attend):
    """Beam search (beams reordered every step) and greedy decoding give the same hypotheses, scores and weights with
    the key-value cache as with the reference, which recomputes the whole prefix at every step."""
    from eeap.predict.search import beam_search

    section = {"type": "transformer_decoder", "dim": 16, "heads": 2, "ff_dim": 32, "dropout": 0.0}
    decoder = build(section, attend).eval()
    mem, mask = memory()
    for beam in (1, 3):
        decoder.cache = True
        assert not decoder.needs_prefix
        cached = beam_search(decoder, mem, mask, max_len=7, beam_size=beam, alpha=1.0, n_best=beam)
        decoder.cache = False
        assert decoder.needs_prefix
        plain = beam_search(decoder, mem, mask, max_len=7, beam_size=beam, alpha=1.0, n_best=beam)
        assert torch.equal(cached.tokens, plain.tokens) and torch.equal(cached.lengths, plain.lengths)
        assert torch.allclose(cached.scores, plain.scores, atol=1e-5)
        assert torch.allclose(cached.weights, plain.weights, atol=1e-5)
        if beam > 1:
            assert torch.equal(cached.ranked_tokens, plain.ranked_tokens)


def test_transformer_decoder_is_causal():
    decoder = build(
        {"type": "transformer_decoder", "dim": 16, "heads": 2, "dropout": 0.0}, {"type": "multihead", "num_heads": 2}
    ).eval()
    mem, mask = memory()
    tokens = torch.randint(4, 10, (3, 5))
    changed = tokens.clone()
    changed[:, 3:] = 4
    a, _ = decoder(tokens, mem, mask)
    b, _ = decoder(changed, mem, mask)
    assert torch.allclose(a[:, :3], b[:, :3], atol=1e-6) and not torch.allclose(a[:, 3:], b[:, 3:])


def test_teacher_forcing_zero_feeds_own_predictions():
    decoder = build(
        {"type": "rnn_decoder", "hidden": 16, "embed_dim": 8, "teacher_forcing": 0.0}, {"type": "additive"}
    ).train()
    mem, mask = memory()
    tokens = torch.randint(4, 10, (3, 5))
    other = tokens.clone()
    other[:, 1:] = torch.randint(4, 10, (3, 4))
    a, _ = decoder(tokens, mem, mask)
    b, _ = decoder(other, mem, mask)
    assert torch.allclose(a, b)  # only the first (BOS) input is read


def test_no_attention_baseline_uses_mean_memory():
    decoder = build({"type": "rnn_decoder", "hidden": 16, "embed_dim": 8}, None).eval()
    mem, mask = memory()
    shuffled = mem[:, torch.tensor([1, 0, 2, 3, 5, 4])]
    shuffled_mask = mask[:, torch.tensor([1, 0, 2, 3, 5, 4])]
    tokens = torch.randint(4, 10, (3, 4))
    a, weights = decoder(tokens, mem, mask)
    b, _ = decoder(tokens, shuffled, shuffled_mask)
    assert weights is None and torch.allclose(a, b, atol=1e-6)  # order of the source cannot matter
