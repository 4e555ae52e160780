"""The interface every attention shares: ``forward(query, keys, values, mask) -> (context, weights)``."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from eeap.errors import ConfigError


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


class Attention(nn.Module):
    """Attention by a score function: weights = masked softmax of ``score(query, keys)``, context = weights @ values.

    Subclasses implement ``score`` and may override ``project_keys`` (work on keys that does not depend on the
    query; a decoder calls it once per source and then ``attend_projected`` at every step).

    # Parameters
    query_dim, key_dim: sizes of query and key vectors, supplied by the task that wires the model.

    # Shapes
    query (batch, tgt_len, query_dim) or (batch, query_dim); keys (batch, src_len, key_dim);
    values (batch, src_len, value_dim); mask (batch, src_len) or (batch, tgt_len, src_len), True = attend.
    Returns context (batch, tgt_len, value_dim) and weights (batch, tgt_len, src_len), without tgt_len when the
    query had none.
    """

    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__()
        self.query_dim = query_dim
        self.key_dim = key_dim

    def context_dim(self, value_dim: int) -> int:
        """The size of the context vectors for values of size ``value_dim``."""
        return value_dim

    def project_keys(self, keys: Tensor) -> Tensor:
        """Query-independent work on the keys; (batch, src_len, key_dim) -> (batch, src_len, *)."""
        return keys

    def score(self, query: Tensor, keys: Tensor, step: Optional[int] = None) -> Tensor:
        """Unnormalised alignment scores; query (batch, tgt_len, query_dim), projected keys -> (batch, tgt_len, src_len)."""
        raise NotImplementedError

    def normalize(self, scores: Tensor, mask: Optional[Tensor], query: Tensor, step: Optional[int] = None) -> Tensor:
        """Scores (batch, tgt_len, src_len) -> weights of the same shape; query (batch, tgt_len, query_dim)."""
        return masked_softmax(scores, mask)

    def attend_projected(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor,
        mask: Optional[Tensor] = None,
        step: Optional[int] = None,
        need_weights: Optional[bool] = None,
    ) -> tuple[Tensor, Tensor]:
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
    ) -> tuple[Tensor, Tensor]:
        """``need_weights`` matters to attentions whose weights cost extra (multi-head); the others always return them."""
        return self.attend_projected(query, self.project_keys(keys), values, mask, step, need_weights)


def require_same_size(name: str, query_dim: int, key_dim: int) -> None:
    """Dot-product scores need queries and keys of one size."""
    if query_dim != key_dim:
        raise ConfigError(
            f"model.attend: '{name}' attention needs query and key of one size, got {query_dim} and {key_dim}; "
            f"use 'general' or 'additive', which project between sizes"
        )


class WrappedAttention(Attention):
    """An attention that reuses another attention's score and changes how scores become weights.

    # Parameters
    score: the inner attention's section, e.g. ``{type: additive}`` (default ``{type: general}``).
    """

    def __init__(self, query_dim: int, key_dim: int, score: Optional[dict] = None) -> None:
        super().__init__(query_dim, key_dim)
        from eeap.registry import ATTEND

        self.inner = ATTEND.build(score or {"type": "general"}, "model.attend.score", query_dim=query_dim, key_dim=key_dim)
        if type(self.inner).score is Attention.score or isinstance(self.inner, WrappedAttention):
            raise ConfigError(
                f"model.attend.score: '{self.inner.registered_name}' has no score function of its own; "
                "use one of dot, scaled_dot, general, additive, cosine, location"
            )

    def project_keys(self, keys: Tensor) -> Tensor:
        return self.inner.project_keys(keys)

    def score(self, query: Tensor, keys: Tensor, step: Optional[int] = None) -> Tensor:
        return self.inner.score(query, keys, step)

    def auxiliary_loss(self, reward: Tensor) -> Tensor:
        """An extra training loss from what this attention did since the last call; reward (batch,). Default 0."""
        return reward.new_zeros(())
