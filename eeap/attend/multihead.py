"""Multi-head attention (Vaswani et al. 2017), self or cross, on torch's fused scaled_dot_product_attention."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eeap.attend.base import Attention, expand_mask, masked_softmax
from eeap.config.registry import ATTEND, Fraction, PositiveInt


@ATTEND.register("multihead")
class MultiHeadAttention(Attention):
    """Multi-head scaled dot-product attention.

    Without weights asked for, it runs ``F.scaled_dot_product_attention`` (flash / memory-efficient kernels), so no
    (tgt_len × src_len) tensor is made when there is no mask or only a causal one; a key-padding mask adds a
    (batch, 1, 1, src_len) mask only. With ``need_weights`` it computes the weights explicitly and returns them.

    # Parameters
    dim: model size (default query_dim); must divide by ``num_heads``.
    num_heads: number of heads.
    dropout: dropout on the attention weights while training.
    causal: position i attends to keys 0..i only (self-attention in decoders).
    need_weights: return weights by default (``forward(..., need_weights=...)`` overrides per call).
    average_heads: weights averaged over heads (batch, tgt_len, src_len), else per head (batch, heads, tgt, src).
    bias: biases on the projections.

    # Shapes
    query (batch, tgt_len, query_dim); keys (batch, src_len, key_dim); values (batch, src_len, key_dim);
    mask (batch, src_len) or (batch, tgt_len, src_len), True = attend. Returns context (batch, tgt_len, dim) and
    weights or None.
    """

    def __init__(
        self,
        query_dim: int,
        key_dim: int,
        num_heads: PositiveInt = 4,
        dim: Optional[PositiveInt] = None,
        dropout: Fraction = 0.0,
        causal: bool = False,
        need_weights: bool = False,
        average_heads: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__(query_dim, key_dim)
        dim = dim or query_dim
        if dim % num_heads:
            raise ValueError(f"multihead dim {dim} is not divisible by num_heads {num_heads}")
        self.dim, self.num_heads, self.head_dim = dim, num_heads, dim // num_heads
        self.dropout, self.causal = dropout, causal
        self.need_weights, self.average_heads = need_weights, average_heads
        self.q_proj = nn.Linear(query_dim, dim, bias=bias)
        self.k_proj = nn.Linear(key_dim, dim, bias=bias)
        self.v_proj = nn.Linear(key_dim, dim, bias=bias)
        self.out_proj = nn.Linear(dim, dim, bias=bias)

    def context_dim(self, value_dim: int) -> int:
        return self.dim

    def _heads(self, x: Tensor) -> Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)  # (batch, heads, len, head_dim)

    def attend_projected(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor,
        mask: Optional[Tensor] = None,
        step: Optional[int] = None,
        need_weights: Optional[bool] = None,
    ) -> tuple[Tensor, Optional[Tensor]]:
        return self.attend_memory(query, *self.project_memory(keys, values), mask, need_weights)

    def project_memory(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Keys (batch, src_len, key_dim) and values projected into heads, (batch, heads, src_len, head_dim) each.
        They do not depend on the query: a decoder projects its memory once and calls ``attend_memory`` each step."""
        return self._heads(self.k_proj(keys)), self._heads(self.v_proj(values))

    def attend_memory(
        self, query: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor] = None, need_weights: Optional[bool] = None
    ) -> tuple[Tensor, Optional[Tensor]]:
        """``attend_projected`` with keys and values from ``project_memory``; query (batch, [tgt_len,] query_dim)."""
        single = query.dim() == 2
        if single:
            query = query.unsqueeze(1)
        need_weights = self.need_weights if need_weights is None else need_weights
        batch, tgt_len, _ = query.shape
        q = self._heads(self.q_proj(query))  # (batch, heads, tgt_len, head_dim)
        out, weights = attend_heads(
            q, k, v, expand_mask(mask), self.causal, self.dropout if self.training else 0.0, need_weights
        )  # (batch, heads, tgt_len, head_dim)
        if weights is not None and self.average_heads:
            weights = weights.mean(1)  # (batch, tgt_len, src_len)
        context = self.out_proj(out.transpose(1, 2).reshape(batch, tgt_len, self.dim))  # (batch, tgt_len, dim)
        if single:
            return context.squeeze(1), None if weights is None else weights.squeeze(-2)
        return context, weights


def attend_heads(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Optional[Tensor] = None,
    causal: bool = False,
    dropout: float = 0.0,
    need_weights: bool = False,
) -> tuple[Tensor, Optional[Tensor]]:
    """Scaled dot-product attention over heads, on ``F.scaled_dot_product_attention`` unless weights are asked for.

    # Shapes
    q (batch, heads, tgt_len, d); k, v (batch, heads, src_len, d); mask (batch, 1 | tgt_len, src_len), True = attend.
    Returns out (batch, heads, tgt_len, d) and weights (batch, heads, tgt_len, src_len) or None. A causal mask is
    aligned to the last query (query i of tgt_len sees keys up to src_len - tgt_len + i); a query with nothing to
    attend to gets a zero output, never NaN.
    """
    tgt_len, src_len = q.shape[-2], k.shape[-2]
    if causal and (mask is not None or need_weights or tgt_len != src_len):
        allowed = torch.ones(tgt_len, src_len, dtype=torch.bool, device=q.device).tril(src_len - tgt_len)
        mask = allowed if mask is None else mask & allowed  # (batch?, tgt_len, src_len)
        causal = False
    if mask is not None:
        mask = mask.unsqueeze(-3) if mask.dim() == 3 else mask  # (batch, 1, tgt_len | 1, src_len)
    if need_weights:
        scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5  # (batch, heads, tgt_len, src_len)
        weights = masked_softmax(scores, mask)
        return F.dropout(weights, dropout, dropout > 0) @ v, weights
    empty = None
    if mask is not None:
        empty = ~mask.any(-1, keepdim=True)  # rows with nothing to attend to
        mask = mask | empty
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=causal)
    return (out if empty is None else out.masked_fill(empty, 0.0)), None
