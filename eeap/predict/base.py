"""The interface of sequence decoders: start from encoder memory, then one step at a time or teacher-forced."""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn

State = dict[str, Any]


def reorder(state: Any, index: Tensor) -> Any:
    """Select batch rows ``index`` from every tensor in a (nested) decoder state; beams use it."""
    if isinstance(state, Tensor):
        return state.index_select(0, index)
    if isinstance(state, dict):
        return {k: reorder(v, index) for k, v in state.items()}
    if isinstance(state, (tuple, list)):
        return type(state)(reorder(v, index) for v in state)
    return state


class Decoder(nn.Module):
    """Predicts target tokens from encoder memory.

    # Shapes
    memory (batch, src_len, encoder_dim), mask (batch, src_len) True = token.
    ``step``: tokens so far (batch, t) -> logits (batch, vocab), new state, weights (batch, src_len) or None.
    ``forward``: teacher-forced inputs (batch, tgt_len) -> logits (batch, tgt_len, vocab), weights
    (batch, tgt_len, src_len) or None.
    """

    def start(self, memory: Tensor, mask: Tensor) -> State:
        raise NotImplementedError

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State, Optional[Tensor]]:
        raise NotImplementedError

    def forward(
        self, tokens: Tensor, memory: Tensor, mask: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Optional[Tensor]]:
        raise NotImplementedError


def masked_mean(memory: Tensor, mask: Tensor) -> Tensor:
    """Mean over source positions where mask is True; (batch, src_len, dim) -> (batch, dim)."""
    mask = mask.unsqueeze(-1).to(memory.dtype)  # (batch, src_len, 1)
    return (memory * mask).sum(1) / mask.sum(1).clamp_min(1.0)


def no_attention(memory: Tensor, mask: Tensor) -> tuple[Tensor, None]:
    """The ``attend: none`` baseline: one fixed context, the mean of the memory; (batch, dim)."""
    return masked_mean(memory, mask), None


def stack_weights(weights: list[Optional[Tensor]]) -> Optional[Tensor]:
    """Per-step weights (batch, src_len) → (batch, steps, src_len), or None without attention."""
    return None if not weights or weights[0] is None else torch.stack(weights, 1)
