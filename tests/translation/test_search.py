"""Beam search against exhaustive search on a decoder whose probabilities are known."""

import itertools

import torch

from eeap.predict.base import SequenceDecoder
from eeap.predict.search import beam_search, length_penalty
from eeap.text import BOS, EOS

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
