"""The roles of the attend kind: attention (``forward(query, keys, values, mask) -> (context, weights)``), score
attention (those whose score others can reuse), and the U-Net skip gate.

Attention weights are (batch, [tgt_len,] src_len), or per head (batch, heads, [tgt_len,] src_len) where an attention
is asked for them (``multihead`` with ``average_heads: false``); the head axis is always the second. Decoders, beam
search and the tasks keep that axis; what each use of them does with it: the doubly stochastic penalty penalises
each head and averages the penalties, GNMT's coverage penalty and every figure and table use the mean over heads
(``head_mean``), and ``predict --attention`` writes the mean (``attention``) and every head (``attention_heads``)."""

from __future__ import annotations

import abc
import contextlib
from typing import Any, Iterator, Optional

import torch
from torch import Tensor, nn

from eeap.config.registry import Role


def masked_softmax(scores: Tensor, mask: Optional[Tensor], dim: int = -1) -> Tensor:
    """Softmax over ``dim`` where ``mask`` is True; masked entries get weight 0, a fully masked row is all 0 (no NaN).

    # Parameters
    scores: (..., src_len)
    mask: bool, broadcastable to ``scores``; True = attend.
    """
    if mask is None:
        return torch.softmax(scores, dim=dim)
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=dim).masked_fill(~mask, 0.0)


def expand_mask(mask: Optional[Tensor]) -> Optional[Tensor]:
    """A key mask (batch, src_len) becomes (batch, 1, src_len); (batch, tgt_len, src_len) stays."""
    if mask is None or mask.dim() == 3:
        return mask
    return mask.unsqueeze(1)


def head_mean(weights: Tensor, dims: int) -> Tensor:
    """Weights as one map: per-head weights (batch, heads, ...) averaged over the heads; weights that have ``dims``
    dimensions, as weights without heads do (batch, ...), returned as they are."""
    return weights if weights.dim() == dims else weights.mean(1)


class Attention(nn.Module, Role):
    """The attention role: ``forward(query, keys, values, mask) -> (context, weights)``.

    The reference path is score → masked softmax (``normalize``) → weighted sum of the values; a subclass gives
    ``score`` (or overrides ``attend_projected`` whole, as multi-head attention does). ``project_keys`` is the work on
    the keys that does not depend on the query: a decoder calls it once per source and then ``attend_projected`` at
    every step. ``auxiliary_loss`` is an extra training loss from what the attention did (hard attention's REINFORCE
    term, gated attention's sparsity); the tasks add it for every attention in the model.

    # Parameters
    query_dim, key_dim: sizes of query and key vectors, supplied by the task that wires the model.

    # Shapes
    query (batch, tgt_len, query_dim) or (batch, query_dim); keys (batch, src_len, key_dim);
    values (batch, src_len, value_dim); mask (batch, src_len) or (batch, tgt_len, src_len), True = attend.
    Returns context (batch, tgt_len, context_dim(value_dim)) and weights (batch, tgt_len, src_len), without tgt_len
    when the query had none; a fully masked row gets zero weights and a zero context, never NaN.
    """

    registry_kind = "attend"
    role_name = "attention (alignment function)"
    supplied = ("query_dim", "key_dim")
    normalized = True  # weights sum to 1 over what a query attends to (local-p's Gaussian leaves them below)
    uses_step = False  # the weights depend on the decoding step's number (local-m), not only on query and keys
    notes: tuple[str, ...] = ()  # what it decides beyond its weights, kept while ``noting`` (hard's choice, ...)
    noted: Optional[list[dict[str, Tensor]]] = None  # the calls' notes while ``noting``, else None

    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__()
        self.query_dim = query_dim
        self.key_dim = key_dim

    def context_dim(self, value_dim: int) -> int:
        """The size of the context vectors for values of size ``value_dim``."""
        return value_dim

    def project_keys(self, keys: Tensor) -> Any:
        """Query-independent work on the keys; (batch, src_len, key_dim) -> (batch, src_len, *)."""
        return keys

    def score(self, query: Tensor, keys: Any, step: Optional[int] = None) -> Tensor:
        """Unnormalised alignment scores; query (batch, tgt_len, query_dim), projected keys -> (batch, tgt_len, src_len)."""
        raise NotImplementedError(f"{type(self).__name__} has no score function; it overrides attend_projected")

    def normalize(self, scores: Tensor, mask: Optional[Tensor], query: Tensor, step: Optional[int] = None) -> Tensor:
        """Scores (batch, tgt_len, src_len) -> weights of the same shape; query (batch, tgt_len, query_dim)."""
        return masked_softmax(scores, mask)

    def attend_projected(
        self,
        query: Tensor,
        keys: Any,
        values: Tensor,
        mask: Optional[Tensor] = None,
        step: Optional[int] = None,
        need_weights: Optional[bool] = None,
    ) -> tuple[Tensor, Optional[Tensor]]:
        """``forward`` with keys already passed through ``project_keys``. ``step``: the decoder step of the query."""
        single = query.dim() == 2
        if single:
            query = query.unsqueeze(1)  # (batch, 1, query_dim)
        scores = self.score(query, keys, step)  # (batch, tgt_len, src_len)
        weights = self.normalize(scores, expand_mask(mask), query, step)  # (batch, tgt_len, src_len)
        context = torch.bmm(weights, values)  # (batch, tgt_len, value_dim)
        if single:
            return context.squeeze(1), weights.squeeze(1)
        return context, weights

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor,
        mask: Optional[Tensor] = None,
        step: Optional[int] = None,
        need_weights: Optional[bool] = None,
    ) -> tuple[Tensor, Optional[Tensor]]:
        """``need_weights`` matters to attentions whose weights cost extra (multi-head); the others always return them."""
        return self.attend_projected(query, self.project_keys(keys), values, mask, step, need_weights)

    def auxiliary_loss(self, reward: Tensor) -> Tensor:
        """An extra training loss from what this attention did since the last call; reward (batch,), e.g. the
        log-likelihood of the target. Zero unless the attention has one."""
        return reward.new_zeros(())

    def note(self, **values: Tensor) -> None:
        """Keep what this call decided beyond its weights (each (batch, tgt_len, ...), named in ``notes``) while
        ``noting`` is on; nothing otherwise."""
        if self.noted is not None:
            self.noted.append({name: value.detach() for name, value in values.items()})


@contextlib.contextmanager
def noting(model: nn.Module) -> Iterator[dict[str, dict[str, Tensor]]]:
    """What the attentions of ``model`` that have ``notes`` decided during the block (hard attention's chosen
    position, local attention's window, gated attention's gates): {module name: {note: (batch, tgt_len, ...)}}, each
    call's notes joined along tgt_len, filled in when the block ends."""
    found = {name: m for name, m in model.named_modules() if isinstance(m, Attention) and m.notes}
    notes: dict[str, dict[str, Tensor]] = {}
    for module in found.values():
        module.noted = []
    try:
        yield notes
    finally:
        for name, module in found.items():
            calls, module.noted = module.noted or [], None
            if calls:
                notes[name] = {key: torch.cat([call[key] for call in calls], 1) for key in calls[0]}


class ScoreAttention(Attention):
    """The role of attentions defined by a score function of their own (dot, general, additive, ...): the ones
    whose score ``local``, ``hard`` and ``gated`` can reuse."""

    role_name = "score attention"

    @abc.abstractmethod
    def score(self, query: Tensor, keys: Any, step: Optional[int] = None) -> Tensor:
        """Unnormalised alignment scores; query (batch, tgt_len, query_dim), projected keys -> (batch, tgt_len, src_len)."""


def require_same_size(name: str, query_dim: int, key_dim: int) -> None:
    """Dot-product scores need queries and keys of one size."""
    if query_dim != key_dim:
        raise ValueError(
            f"'{name}' attention needs query and key of one size, got {query_dim} and {key_dim}; "
            f"use 'general' or 'additive', which project between sizes"
        )


DEFAULT_SCORE = {"type": "general"}  # the score a wrapper reuses when its config names none


class WrappedAttention(Attention):
    """An attention that reuses another attention's score and changes how scores become weights.

    # Parameters
    score: the inner attention, built from its section (``{type: additive}``; default ``{type: general}``).
    """

    def __init__(self, query_dim: int, key_dim: int, score: ScoreAttention = DEFAULT_SCORE) -> None:  # type: ignore[assignment]
        super().__init__(query_dim, key_dim)
        if not isinstance(score, ScoreAttention):
            raise TypeError(f"score: expected a built ScoreAttention, got {type(score).__name__}")
        self.inner = score

    def project_keys(self, keys: Tensor) -> Any:
        return self.inner.project_keys(keys)

    def score(self, query: Tensor, keys: Any, step: Optional[int] = None) -> Tensor:
        return self.inner.score(query, keys, step)


class SkipGate(nn.Module, Role):
    """The role of a U-Net's skip gate: ``forward(x, g) -> (gated x, coefficients)``; x the skip connection's
    features, g the gating signal from the next coarser decoder level.

    # Shapes
    x (batch, in_channels, H, W); g (batch, gating_channels, H', W') -> (batch, in_channels, H, W) and
    α (batch, 1, H, W); in 3D (``spatial_dims`` 3, supplied with the channels) a depth D comes before H.
    """

    registry_kind = "attend"
    role_name = "U-Net skip gate"
    supplied = ("in_channels", "gating_channels", "spatial_dims")

    @abc.abstractmethod
    def forward(self, x: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        """Gate the skip features x with the gating signal g."""
