"""Batched beam search over any Decoder; greedy decoding is a beam of one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor

from eeap.attend.base import head_mean
from eeap.data.text import BOS, EOS, PAD
from eeap.predict.base import SequenceDecoder, reorder


@dataclass
class Hypotheses:
    """The best output per example, and the ``n`` best (``n_best``; the best is the first).

    tokens (batch, steps): ends with EOS then PAD; lengths (batch,): tokens up to and including EOS;
    scores (batch,): log-probability over the length penalty, plus the coverage penalty; weights (batch, steps,
    src_len), per head (batch, heads, steps, src_len), or None. ranked_tokens (batch, n, steps), ranked_lengths and
    ranked_scores (batch, n): the n best, finished ones first; ranked_weights (batch, n, [heads,] steps, src_len): the
    weights each of them computed, or None.
    """

    tokens: Tensor
    lengths: Tensor
    scores: Tensor
    weights: Optional[Tensor]
    ranked_tokens: Optional[Tensor] = None
    ranked_lengths: Optional[Tensor] = None
    ranked_scores: Optional[Tensor] = None
    ranked_weights: Optional[Tensor] = None


def length_penalty(lengths: Tensor, alpha: float) -> Tensor:
    """GNMT length penalty ((5 + |y|) / 6)^alpha; alpha = 0 compares plain log-probabilities."""
    return ((5.0 + lengths.to(torch.float32)) / 6.0) ** alpha


def coverage_penalty(coverage: Tensor, mask: Tensor, beta: float) -> Tensor:
    """GNMT coverage penalty β · Σ_i log(min(Σ_t α_ti, 1)) over the real source positions i (Wu et al. 2016, eq. 14);
    coverage (rows, src_len) = Σ_t α_ti, mask (rows, src_len). A position no step attended to counts as 1e-6
    (sparse attentions give exact zeros, whose log would rule the hypothesis out)."""
    covered = coverage.clamp(1e-6, 1.0).log().masked_fill(~mask, 0.0)  # (rows, src_len)
    return beta * covered.sum(-1)


@torch.no_grad()
def beam_search(
    decoder: SequenceDecoder,
    memory: Tensor,
    mask: Tensor,
    max_len: int,
    beam_size: int = 1,
    alpha: float = 0.0,
    n_best: int = 1,
    coverage: float = 0.0,
    progress: Optional[Callable[[Tensor], None]] = None,
) -> Hypotheses:
    """Decode ``max_len`` steps at most; memory (batch, src_len, dim), mask (batch, src_len). ``alpha``: the length
    penalty; ``coverage``: the coverage penalty's β (0: none); ``n_best`` ≤ ``beam_size`` hypotheses are ranked;
    ``progress``: called after each step with each example's leading beam so far (batch, steps), for showing the
    output as it decodes (the final answer can differ: a beam that finishes later may overtake it).

    Every example's ``beam_size`` beams advance together as rows of one batch. Finished beams stay in the beam,
    extended by PAD at no cost, so every beam ends the same length. The answer is the best finished hypothesis by
    length-normalised score (plus the coverage penalty); an unfinished one only where none finished.

    A step costs the same whatever came before: only the recurrent state is reordered when beams change places
    (the memory, its mask and projected keys are fixed per source); chosen tokens, the rows they came from and the
    attention weights are kept per step, and the outputs are read back along those pointers at the end. The loop
    stops once every beam of every example has finished.
    """
    batch, device = memory.shape[0], memory.device
    k = beam_size
    expand = torch.arange(batch, device=device).repeat_interleave(k)  # (batch·k,)
    rows_mask = reorder(mask, expand)  # (batch·k, src_len)
    state = reorder(decoder.start(memory, mask), expand)  # once per source (projected keys too), copied to its beams
    keep = decoder.static_state
    last = torch.full((batch * k, 1), BOS, dtype=torch.long, device=device)  # (batch·k, 1)
    prefix = last if decoder.needs_prefix else None  # (batch·k, t): the whole prefix, for decoders that read it
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live beam at the start
    finished = torch.zeros(batch * k, dtype=torch.bool, device=device)
    lengths = torch.zeros(batch * k, dtype=torch.long, device=device)
    covered: Optional[Tensor] = None  # (batch·k, src_len) Σ_t α_ti of each beam, for the coverage penalty
    offsets = (torch.arange(batch, device=device) * k).unsqueeze(1)  # (batch, 1)
    chosen_tokens: list[Tensor] = []  # per step: (batch·k,) the token each new beam took
    parents: list[Tensor] = []  # per step: (batch·k,) the row each new beam came from
    step_weights: list[Tensor] = []  # per step: (batch·k, src_len) the weights each old row computed
    for _ in range(max_len):
        logits, state, weights = decoder.step(prefix if prefix is not None else last, state)
        log_probs = torch.log_softmax(logits.float(), -1)  # (batch·k, vocab)
        vocab = log_probs.shape[-1]
        log_probs[finished] = float("-inf")
        log_probs[finished, PAD] = 0.0
        total = (scores.view(-1, 1) + log_probs).view(batch, k * vocab)
        scores, best = total.topk(k, dim=-1)  # (batch, k)
        source = (offsets + best // vocab).view(-1)  # (batch·k,) rows the new beams come from
        token = (best % vocab).view(-1)  # (batch·k,)
        state = reorder(state, source, keep)
        last = token.unsqueeze(1)
        if prefix is not None:
            prefix = torch.cat([prefix[source], last], 1)
        if weights is not None:
            step_weights.append(weights)
            if coverage:  # GNMT's penalty, over the mean of the heads' weights where there are several
                live = (~finished[source]).unsqueeze(1).to(weights.dtype)  # (batch·k, 1) EOS's step counts
                covered = (0 if covered is None else covered[source]) + head_mean(weights[source], 2).float() * live
        chosen_tokens.append(token)
        parents.append(source)
        if progress is not None:  # topk sorts: each example's first beam leads
            progress(trace(offsets.view(-1), chosen_tokens, parents, [])[0])
        lengths = lengths[source] + (~finished[source]).long()
        finished = finished[source] | (token == EOS)
        if bool(finished.all()):
            break
    normalised = scores / length_penalty(lengths.view(batch, k), alpha)  # (batch, k)
    if coverage and covered is not None:
        normalised = normalised + coverage_penalty(covered, rows_mask, coverage).view(batch, k)
    done = finished.view(batch, k)
    ranked = normalised.masked_fill(~done & done.any(-1, keepdim=True), float("-inf"))  # finished ones first
    n = min(n_best, k)
    order = (
        ranked.argmax(-1, keepdim=True)
        if n == 1
        else torch.sort(ranked, dim=-1, descending=True, stable=True)[1][:, :n]
    )
    rows = (offsets + order).view(-1)  # (batch·n,) the final rows of the n best, best first
    tokens, picked = trace(rows, chosen_tokens, parents, step_weights)
    steps = tokens.shape[1]
    ranked_tokens = tokens.view(batch, n, steps)
    ranked_lengths = lengths[rows].view(batch, n)
    ranked_scores = normalised.gather(1, order)  # (batch, n)
    ranked_weights = picked.view(batch, n, *picked.shape[1:]) if picked is not None else None
    return Hypotheses(
        tokens=ranked_tokens[:, 0],
        lengths=ranked_lengths[:, 0],
        scores=ranked_scores[:, 0],
        weights=ranked_weights[:, 0] if ranked_weights is not None else None,
        ranked_tokens=ranked_tokens,
        ranked_lengths=ranked_lengths,
        ranked_scores=ranked_scores,
        ranked_weights=ranked_weights,
    )


def trace(
    rows: Tensor, tokens: list[Tensor], parents: list[Tensor], weights: list[Tensor]
) -> tuple[Tensor, Optional[Tensor]]:
    """Follow final ``rows`` (m,) back through the steps: their tokens (m, steps) and, if the decoder gave them,
    the attention weights each step computed for them (m, steps, src_len), or per head (m, heads, steps, src_len)."""
    out_tokens, out_weights = [], []
    for t in reversed(range(len(tokens))):
        out_tokens.append(tokens[t][rows])  # (m,)
        rows = parents[t][rows]  # the rows these came from, which computed step t
        if weights:
            out_weights.append(weights[t][rows])  # (m, src_len)
    picked = torch.stack(out_weights[::-1], -2) if out_weights else None  # steps before src_len, after any heads
    return torch.stack(out_tokens[::-1], 1), picked
