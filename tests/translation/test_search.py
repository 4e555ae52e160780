"""Beam search against exhaustive search on a decoder whose probabilities are known."""

import itertools

import pytest
import torch

from eeap.data.text import BOS, EOS
from eeap.predict.base import SequenceDecoder
from eeap.predict.search import beam_search, length_penalty

VOCAB = 6  # 0 pad, 1 unk, 2 bos, 3 eos, 4 and 5 words


class MarkovDecoder(SequenceDecoder):
    """log p(next | last token) from a fixed table; the source is ignored."""

    def __init__(self, table):
        super().__init__()
        self.table = table  # (vocab, vocab) logits

    def start(self, memory, mask):
        return {"memory": memory}

    def step(self, tokens, state):
        return self.table[tokens[:, -1]], state, torch.softmax(state["memory"][..., 0], -1)

    def forward(self, tokens, memory, mask, need_weights=False):
        return self.table[tokens], None  # (batch, len, vocab): the same table at every position


def log_probs_of(table, sequence):
    log_p = torch.log_softmax(table, -1)
    total, last = 0.0, BOS
    for token in sequence:
        total += float(log_p[last, token])
        last = token
    return total


def best_by_enumeration(table, max_len, alpha):
    best, best_score = None, float("-inf")
    for length in range(max_len):
        for words in itertools.product([1, 4, 5], repeat=length):
            sequence = list(words) + [EOS]
            score = log_probs_of(table, sequence) / float(length_penalty(torch.tensor(len(sequence)), alpha))
            if score > best_score:
                best, best_score = sequence, score
    return best, best_score


def test_wide_beam_finds_the_exhaustive_best():
    torch.manual_seed(3)
    for trial in range(5):
        table = torch.randn(VOCAB, VOCAB) * 2
        table[:, [0, 2]] = -1e4  # never pad or bos
        for alpha in (0.0, 1.0):
            expected, score = best_by_enumeration(table, 5, alpha)
            hyps = beam_search(
                MarkovDecoder(table),
                torch.randn(1, 3, 2),
                torch.ones(1, 3, dtype=torch.bool),
                max_len=5,
                beam_size=40,
                alpha=alpha,
            )
            length = int(hyps.lengths[0])
            assert hyps.tokens[0, :length].tolist() == expected, (trial, alpha)
            assert abs(float(hyps.scores[0]) - score) < 1e-4


def test_greedy_is_the_argmax_chain_and_batches_independently():
    torch.manual_seed(0)
    table = torch.randn(VOCAB, VOCAB)
    table[:, [0, 2]] = -1e4
    chain, last = [], BOS
    for _ in range(6):
        last = int(table[last].argmax())
        chain.append(last)
        if last == EOS:
            break
    memory = torch.randn(3, 4, 2)
    hyps = beam_search(MarkovDecoder(table), memory, torch.ones(3, 4, dtype=torch.bool), max_len=6)
    for row in range(3):
        assert hyps.tokens[row, : int(hyps.lengths[row])].tolist() == chain
    expected_weights = torch.softmax(memory[..., 0], -1)  # the toy decoder's weights for every step
    assert torch.allclose(hyps.weights[:, 0], expected_weights)


def test_finished_beams_are_padded():
    table = torch.full((VOCAB, VOCAB), -1e4)
    table[BOS, 4] = 0.0
    table[4, EOS] = 0.0
    hyps = beam_search(
        MarkovDecoder(table), torch.randn(2, 3, 2), torch.ones(2, 3, dtype=torch.bool), max_len=8, beam_size=3
    )
    assert hyps.tokens[0].tolist() == [4, EOS] + [0] * 6 and hyps.lengths.tolist() == [2, 2]


def previous_beam_search(decoder, memory, mask, max_len, beam_size=1, alpha=0.0):
    """The beam search before back-pointers (it re-indexed the whole token and weight history every step and
    reordered the memory): the reference the new one must equal, output for output."""
    from eeap.data.text import PAD
    from eeap.predict.base import reorder

    batch, k = memory.shape[0], beam_size
    expand = torch.arange(batch).repeat_interleave(k)
    state = decoder.start(reorder(memory, expand), reorder(mask, expand))
    tokens = torch.full((batch * k, 1), BOS, dtype=torch.long)
    scores = torch.full((batch, k), float("-inf"))
    scores[:, 0] = 0.0
    finished = torch.zeros(batch * k, dtype=torch.bool)
    lengths = torch.zeros(batch * k, dtype=torch.long)
    history = []
    offsets = (torch.arange(batch) * k).unsqueeze(1)
    for _ in range(max_len):
        logits, state, weights = decoder.step(tokens, state)
        log_probs = torch.log_softmax(logits.float(), -1)
        vocab = log_probs.shape[-1]
        log_probs[finished] = float("-inf")
        log_probs[finished, PAD] = 0.0
        total = (scores.view(-1, 1) + log_probs).view(batch, k * vocab)
        scores, best = total.topk(k, dim=-1)
        source = (offsets + best // vocab).view(-1)
        token = (best % vocab).view(-1)
        state = reorder(state, source)
        tokens = torch.cat([tokens[source], token.unsqueeze(1)], 1)
        if weights is not None:
            history = [w[source] for w in history] + [weights[source]]
        lengths = lengths[source] + (~finished[source]).long()
        finished = finished[source] | (token == EOS)
        if bool(finished.all()):
            break
    normalised = scores / length_penalty(lengths.view(batch, k), alpha)
    done = finished.view(batch, k)
    normalised = normalised.masked_fill(~done & done.any(-1, keepdim=True), float("-inf"))
    chosen = offsets.squeeze(1) + normalised.argmax(-1)
    weights = torch.stack(history, 1)[chosen] if history else None
    return tokens[chosen, 1:], lengths[chosen], normalised.max(-1).values, weights


@pytest.mark.parametrize(
    "predict",
    [
        {"type": "rnn_decoder", "style": "bahdanau", "hidden": 16, "embed_dim": 8},
        {"type": "rnn_decoder", "style": "luong", "cell": "lstm", "input_feeding": True, "hidden": 16, "embed_dim": 8},
        {"type": "transformer_decoder", "layers": 2, "dim": 16, "heads": 2, "ff_dim": 32},
    ],
    ids=["gru-bahdanau", "lstm-luong-feeding", "transformer"],
)
@pytest.mark.parametrize("beam", [1, 4])
def test_outputs_equal_the_previous_search_on_real_decoders(predict, beam):
    from eeap.model.task import build_predict
    from eeap.predict.base import SequenceDecoder

    torch.manual_seed(beam)
    attend = {"type": "multihead", "num_heads": 2} if predict["type"] == "transformer_decoder" else {"type": "additive"}
    decoder = build_predict(predict, attend, SequenceDecoder, vocab_size=12, encoder_dim=16).eval()
    memory = torch.randn(5, 7, 16)
    mask = torch.arange(7).expand(5, 7) < torch.tensor([[7], [3], [5], [1], [6]])
    for alpha in (0.0, 1.0):
        new = beam_search(decoder, memory, mask, max_len=9, beam_size=beam, alpha=alpha)
        tokens, lengths, scores, weights = previous_beam_search(decoder, memory, mask, 9, beam, alpha)
        assert torch.equal(new.tokens, tokens) and torch.equal(new.lengths, lengths)
        assert torch.allclose(new.scores, scores, atol=1e-6)
        assert (new.weights is None) == (weights is None)
        assert new.weights is None or torch.allclose(new.weights, weights, atol=1e-6)


def ranked_by_enumeration(table, max_len, alpha, beta=0.0, memory=None):
    """Every finished sequence shorter than max_len with its score, best first."""
    scored = []
    for length in range(max_len):
        for words in itertools.product([1, 4, 5], repeat=length):
            sequence = list(words) + [EOS]
            score = log_probs_of(table, sequence) / float(length_penalty(torch.tensor(len(sequence)), alpha))
            if beta:
                # the toy decoder attends with the same weights at every step
                weights = torch.softmax(memory[0, :, 0], -1) * len(sequence)
                score += beta * float(weights.clamp(1e-6, 1.0).log().sum())
            scored.append((score, sequence))
    return sorted(scored, key=lambda x: -x[0])


def test_n_best_are_the_exhaustive_top_n_with_their_scores():
    torch.manual_seed(5)
    table = torch.randn(VOCAB, VOCAB) * 2
    table[:, [0, 2]] = -1e4
    expected = ranked_by_enumeration(table, 4, 1.0)[:3]
    hyps = beam_search(
        MarkovDecoder(table), torch.randn(1, 3, 2), torch.ones(1, 3, dtype=torch.bool), 4, 60, 1.0, n_best=3
    )
    for rank, (score, sequence) in enumerate(expected):
        length = int(hyps.ranked_lengths[0, rank])
        assert hyps.ranked_tokens[0, rank, :length].tolist() == sequence
        assert abs(float(hyps.ranked_scores[0, rank]) - score) < 1e-4
    assert torch.equal(hyps.tokens, hyps.ranked_tokens[:, 0])


def test_coverage_penalty_prefers_hypotheses_that_cover_the_source():
    """With the toy decoder's constant weights, coverage grows with length: the penalty (Wu et al. 2016) moves the
    choice to the exhaustive best of log-probability plus β Σ_i log(min(Σ_t α_ti, 1))."""
    torch.manual_seed(1)
    table = torch.randn(VOCAB, VOCAB) * 2
    table[:, [0, 2]] = -1e4
    table[BOS, EOS] = 3.0  # stopping at once is likely, and covers least
    memory = torch.randn(1, 3, 2)
    for beta in (0.0, 2.0):
        score, sequence = ranked_by_enumeration(table, 5, 0.0, beta, memory)[0]
        hyps = beam_search(MarkovDecoder(table), memory, torch.ones(1, 3, dtype=torch.bool), 5, 60, coverage=beta)
        assert hyps.tokens[0, : int(hyps.lengths[0])].tolist() == sequence, beta
        assert abs(float(hyps.scores[0]) - score) < 1e-4
    assert ranked_by_enumeration(table, 5, 0.0)[0][1] != sequence  # the penalty changed the answer
