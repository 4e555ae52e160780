"""The roles of the predict kind: sequence decoders (start from encoder memory, then one step at a time or
teacher-forced), classifier heads and segmentation heads; and helpers the decoders share."""

from __future__ import annotations

import abc
from typing import Any, Optional, cast

import torch
from torch import Tensor, nn

from eeap.attend.base import Attention, SkipGate
from eeap.config.registry import Role

State = dict[str, Any]


def reorder(state: Any, index: Tensor, keep: tuple[str, ...] = ()) -> Any:
    """Select batch rows ``index`` from every tensor in a (nested) decoder state, but for the top-level entries named
    in ``keep``; beams use it."""
    if isinstance(state, Tensor):
        return state.index_select(0, index)
    if isinstance(state, dict):
        return {k: v if k in keep else reorder(v, index) for k, v in state.items()}
    if isinstance(state, (tuple, list)):
        return type(state)(reorder(v, index) for v in state)
    return state


class PredictPart(nn.Module, Role):
    """What the predict roles share: they may take attention modules, which the task's builder makes from the
    ``model.attend`` section and hands in built. ``attention_slots`` says how many and with which sizes, from the
    part's settings (its config section with defaults filled in) and the sizes the task supplies; each slot is the
    keyword arguments one attention module is built with. ``attention_role`` is the role those modules fill."""

    registry_kind = "predict"
    attention_role: type = Attention
    requires_attention = False  # True: ``model.attend: none`` is refused

    @classmethod
    def attention_slots(cls, settings: dict[str, Any], **sizes: Any) -> list[dict[str, Any]]:
        """The keyword arguments of each attention module this part takes (none by default)."""
        return []


class SequenceDecoder(PredictPart):
    """The sequence decoder role: predicts target tokens from encoder memory.

    # Shapes
    memory (batch, src_len, encoder_dim), mask (batch, src_len) True = real position.
    ``start(memory, mask)`` → the decoding state; ``step(tokens, state)``: tokens so far (batch, t) → logits
    (batch, vocab), the new state, weights (batch, src_len) or None. ``forward`` (teacher forcing): inputs
    (batch, tgt_len) → logits (batch, tgt_len, vocab), weights (batch, tgt_len, src_len) or None.
    Built with ``vocab_size``, ``encoder_dim`` and ``attention`` (the modules ``attention_slots`` asked for).
    """

    role_name = "sequence decoder"
    supplied = ("vocab_size", "encoder_dim", "attention")
    # What beam search may rely on: state entries that are fixed per source (every beam of a source shares them, so
    # they are never reordered), and whether ``step`` reads the whole prefix or only its last token.
    static_state: tuple[str, ...] = ("memory", "mask", "keys")
    needs_prefix = True

    @abc.abstractmethod
    def start(self, memory: Tensor, mask: Tensor) -> State:
        """The state before the first step."""

    @abc.abstractmethod
    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State, Optional[Tensor]]:
        """One step: the logits of the next token after ``tokens``."""

    @abc.abstractmethod
    def forward(
        self, tokens: Tensor, memory: Tensor, mask: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Optional[Tensor]]:
        """Teacher-forced logits for every position."""

    @property
    def attention_layers(self) -> int:
        """How many layers attend over the memory (``forward`` and ``step`` give the last one's weights)."""
        return 1

    def layer_weights(self, tokens: Tensor, memory: Tensor, mask: Tensor) -> list[Tensor]:
        """Teacher-forced, each attending layer's weights over the memory, first layer first: (batch, [heads,]
        tgt_len, src_len) each; one decoder layer's, ``forward``'s, unless the decoder has several."""
        weights = self(tokens, memory, mask, need_weights=True)[1]
        return [] if weights is None else [weights]


class ClassifierHead(PredictPart):
    """The classifier head role: ``forward(x, mask)`` with x (batch, len, input_dim) → logits (batch, classes) and
    the pooling weights (batch, len) or None. ``prepends_token``: the head reads a learned token that the task puts
    before the sequence (a CLS token), at position 0. Built with ``input_dim``, ``num_classes`` and ``attention``."""

    role_name = "classifier head"
    supplied = ("input_dim", "num_classes", "attention")
    prepends_token = False

    @abc.abstractmethod
    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        """Logits and pooling weights."""


class SegmentationHead(PredictPart):
    """The segmentation head role: an image pyramid (finest first) → per-pixel logits at ``size``, the skip gates'
    coefficient maps, and deep-supervision logits. Built with the encoder's ``encoder_channels`` and
    ``encoder_strides``, ``num_classes``, ``attention`` (one skip gate per level, or none) and ``spatial_dims`` (2 for
    images, 3 for volumes)."""

    role_name = "segmentation head"
    supplied = ("encoder_channels", "encoder_strides", "num_classes", "attention", "spatial_dims")
    attention_role = SkipGate

    @abc.abstractmethod
    def forward(
        self, features: list[Tensor], size: Optional[tuple[int, int]] = None
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """Logits (batch, classes, H, W), gate maps [(batch, 1, h, w)], aux logits [(batch, classes, H, W)]."""


def masked_mean(memory: Tensor, mask: Tensor) -> Tensor:
    """Mean over source positions where mask is True; (batch, src_len, dim) -> (batch, dim)."""
    mask = mask.unsqueeze(-1).to(memory.dtype)  # (batch, src_len, 1)
    return (memory * mask).sum(1) / mask.sum(1).clamp_min(1.0)


def no_attention(memory: Tensor, mask: Tensor) -> tuple[Tensor, None]:
    """The ``attend: none`` baseline: one fixed context, the mean of the memory; (batch, dim)."""
    return masked_mean(memory, mask), None


def stack_weights(weights: list[Optional[Tensor]]) -> Optional[Tensor]:
    """Per-step weights (batch, [heads,] src_len) → (batch, [heads,] steps, src_len), or None without attention."""
    return None if not weights or weights[0] is None else torch.stack(cast(list[Tensor], weights), -2)
