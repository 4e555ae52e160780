"""Batched beam search over any Decoder; greedy decoding is a beam of one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from eeap.predict.base import SequenceDecoder, reorder
from eeap.text import BOS, EOS, PAD


@dataclass
class Hypotheses:
    """The best output per example.

    tokens (batch, steps): ends with EOS then PAD; lengths (batch,): tokens up to and including EOS;
    scores (batch,): log-probability over the length penalty; weights (batch, steps, src_len) or None.
    """

    tokens: Tensor
    lengths: Tensor
    scores: Tensor
    weights: Optional[Tensor]


def length_penalty(lengths: Tensor, alpha: float) -> Tensor:
    """GNMT length penalty ((5 + |y|) / 6)^alpha; alpha = 0 compares plain log-probabilities."""
    return ((5.0 + lengths.to(torch.float32)) / 6.0) ** alpha


@torch.no_grad()
def beam_search(
    decoder: SequenceDecoder,
    memory: Tensor,
    mask: Tensor,
    max_len: int,
    beam_size: int = 1,
    alpha: float = 0.0,
) -> Hypotheses:
    """Decode ``max_len`` steps at most; memory (batch, src_len, dim), mask (batch, src_len).

    Finished beams stay in the beam, extended by PAD at no cost, so every beam ends the same length. The answer is
    the best finished hypothesis by length-normalised score; an unfinished one only where none finished.
    """
    batch, device = memory.shape[0], memory.device
    k = beam_size
    expand = torch.arange(batch, device=device).repeat_interleave(k)  # (batch·k,)
    state = decoder.start(reorder(memory, expand), reorder(mask, expand))
    tokens = torch.full((batch * k, 1), BOS, dtype=torch.long, device=device)  # (batch·k, t)
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live beam at the start
    finished = torch.zeros(batch * k, dtype=torch.bool, device=device)
    lengths = torch.zeros(batch * k, dtype=torch.long, device=device)
    history: list[Tensor] = []
    offsets = (torch.arange(batch, device=device) * k).unsqueeze(1)  # (batch, 1)
    for _ in range(max_len):
        logits, state, weights = decoder.step(tokens, state)
        log_probs = torch.log_softmax(logits.float(), -1)  # (batch·k, vocab)
        vocab = log_probs.shape[-1]
        log_probs[finished] = float("-inf")
        log_probs[finished, PAD] = 0.0
        total = (scores.view(-1, 1) + log_probs).view(batch, k * vocab)
        scores, best = total.topk(k, dim=-1)  # (batch, k)
        source = (offsets + best // vocab).view(-1)  # (batch·k,) rows the new beams come from
        token = (best % vocab).view(-1)  # (batch·k,)
        state = reorder(state, source)
        tokens = torch.cat([tokens[source], token.unsqueeze(1)], 1)
        if weights is not None:
            history = [w[source] for w in history] + [weights[source]]
        lengths = lengths[source] + (~finished[source]).long()
        finished = finished[source] | (token == EOS)
        if bool(finished.all()):
            break
    normalised = scores / length_penalty(lengths.view(batch, k), alpha)  # (batch, k)
    done = finished.view(batch, k)
    normalised = normalised.masked_fill(~done & done.any(-1, keepdim=True), float("-inf"))  # finished ones first
    chosen = offsets.squeeze(1) + normalised.argmax(-1)  # (batch,)
    return Hypotheses(
        tokens=tokens[chosen, 1:],
        lengths=lengths[chosen],
        scores=normalised.max(-1).values,
        weights=torch.stack(history, 1)[chosen] if history else None,
    )
