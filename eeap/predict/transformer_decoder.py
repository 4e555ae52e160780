"""Transformer decoder (pre-norm): causal self-attention, cross-attention to the memory, feed-forward."""

from __future__ import annotations

from typing import Any, Optional, Sequence, cast

import torch
from torch import Tensor, nn

from eeap.attend.base import Attention
from eeap.attend.multihead import MultiHeadAttention
from eeap.config.registry import PREDICT, Fraction, PositiveInt
from eeap.embed.token import TokenEmbedding
from eeap.encode.transformer import FeedForward
from eeap.predict.base import SequenceDecoder, State


class DecoderLayer(nn.Module):
    """x + SelfAttn(LN x) (causal); x + W·Cross(LN x, memory); x + FF(LN x). (batch, len, dim) -> same."""

    def __init__(
        self, dim: int, encoder_dim: int, heads: int, ff_dim: int, dropout: float, cross_attention: Attention
    ) -> None:
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))
        self.self_attention = MultiHeadAttention(dim, dim, num_heads=heads, dropout=dropout, causal=True)
        self.cross_attention = cross_attention
        self.cross_out = nn.Linear(self.cross_attention.context_dim(encoder_dim), dim)
        self.ff = FeedForward(dim, ff_dim, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, memory: Tensor, mask: Tensor, need_weights: bool) -> tuple[Tensor, Optional[Tensor]]:
        h = self.norms[0](x)
        x = x + self.dropout(self.self_attention(h, h, h)[0])
        context, weights = self.cross_attention(self.norms[1](x), memory, memory, mask, need_weights=need_weights)
        x = x + self.dropout(self.cross_out(context))
        return x + self.dropout(self.ff(self.norms[2](x))), weights

    def step(
        self,
        x: Tensor,
        cache: tuple[Tensor, Tensor],
        memory: Tensor,
        keys: Any,
        mask: Tensor,
        t: int,
        need_weights: bool,
    ) -> tuple[Tensor, tuple[Tensor, Tensor], Optional[Tensor]]:
        """``forward`` for one new position t, given the self-attention keys and values of positions 0..t-1: the same
        function (checked against ``forward`` in tests/translation/test_decoders.py), without recomputing the prefix.
        x (batch, 1, dim); cache: keys and values (batch, heads, t, head_dim) each; ``keys``: the cross-attention's
        projected memory (for multi-head attention its keys and values in heads, projected once per source). Returns the new x, the cache grown to t + 1 positions, and the cross-attention weights."""
        attention = self.self_attention
        h = self.norms[0](x)  # (batch, 1, dim)
        k, v = attention.project_memory(h, h)  # (batch, heads, 1, head_dim) each
        k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)  # (batch, heads, t + 1, head_dim)
        x = x + self.dropout(attention.attend_memory(h, k, v, need_weights=False)[0])  # (batch, 1, dim): sees 0..t
        query = self.norms[1](x)  # (batch, 1, dim)
        if isinstance(self.cross_attention, MultiHeadAttention):  # keys: its projected keys and values, per head
            context, weights = self.cross_attention.attend_memory(query, keys[0], keys[1], mask, need_weights)
        else:
            context, weights = self.cross_attention.attend_projected(query, keys, memory, mask, t, need_weights)
        x = x + self.dropout(self.cross_out(context))
        return x + self.dropout(self.ff(self.norms[2](x))), (k, v), weights


@PREDICT.register("transformer_decoder")
class TransformerDecoder(SequenceDecoder):
    """A stack of Transformer decoder layers; each layer's cross-attention is built by the task from
    ``model.attend`` (``{type: multihead, num_heads: 4}``, or any other attention).

    Weights returned are the last layer's cross-attention, averaged over heads.

    # Parameters
    vocab_size, encoder_dim: supplied by the task.
    attention: one cross-attention module per layer, built by the task.
    dim, layers, heads, ff_dim, dropout: the usual sizes.
    max_len: longest target.
    tie_embeddings: share the target embedding with the output projection.
    cache: decode with a key-value cache: each step runs the new position through the layers, attending to the
        earlier positions' stored self-attention keys and values (time linear in the output's length). ``false``
        runs ``forward`` over the whole prefix at every step (quadratic): the reference path, which the cached one
        is checked against, and what ``eeap export`` exports.
    """

    def __init__(
        self,
        vocab_size: int,
        encoder_dim: int,
        attention: Sequence[Attention] = (),
        dim: PositiveInt = 128,
        layers: PositiveInt = 2,
        heads: PositiveInt = 4,
        ff_dim: PositiveInt = 256,
        dropout: Fraction = 0.1,
        max_len: PositiveInt = 256,
        tie_embeddings: bool = True,
        cache: bool = True,
    ) -> None:
        super().__init__()
        self.cache = cache
        if len(attention) != layers:
            raise ValueError(
                f"a transformer decoder of {layers} layers needs {layers} cross-attention modules, got {len(attention)}"
            )
        self.embedding = TokenEmbedding(
            vocab_size, dim, positions="sinusoidal", max_len=max_len, dropout=dropout, scale=True
        )
        self.layers = nn.ModuleList(
            DecoderLayer(dim, encoder_dim, heads, ff_dim, dropout, cross) for cross in attention
        )
        self.norm = nn.LayerNorm(dim)
        self.output = nn.Linear(dim, vocab_size)
        if tie_embeddings:
            self.output.weight = self.embedding.tokens.weight

    requires_attention = True

    @classmethod
    def attention_slots(cls, settings: dict[str, Any], encoder_dim: int = 0, **sizes: Any) -> list[dict[str, Any]]:
        """A cross-attention per layer, queried by the layer's states (size ``dim``) over the encoder's memory."""
        return [{"query_dim": settings["dim"], "key_dim": encoder_dim}] * settings["layers"]

    def forward(
        self, tokens: Tensor, memory: Tensor, mask: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Optional[Tensor]]:
        x = self.embedding(tokens)  # (batch, tgt_len, dim)
        weights = None
        for i, layer in enumerate(self.layers):
            x, weights = layer(x, memory, mask, need_weights and i == len(self.layers) - 1)
        return self.output(self.norm(x)), weights  # (batch, tgt_len, vocab), (batch, tgt_len, src_len)

    @property
    def attention_layers(self) -> int:
        return len(self.layers)

    def layer_weights(self, tokens: Tensor, memory: Tensor, mask: Tensor) -> list[Tensor]:
        """Every layer's cross-attention weights, as ``forward`` computes them: (batch, [heads,] tgt_len, src_len)."""
        x = self.embedding(tokens)  # (batch, tgt_len, dim)
        every = []
        for layer in self.layers:
            x, weights = layer(x, memory, mask, True)
            if weights is not None:
                every.append(weights)
        return every

    @property
    def needs_prefix(self) -> bool:  # type: ignore[override]
        """With the cache, a step reads the last token only; the rest is in the state."""
        return not self.cache

    def start(self, memory: Tensor, mask: Tensor) -> State:
        """The memory and its mask; with the cache also an empty key-value cache per layer and t = 0."""
        if not self.cache:
            return {"memory": memory, "mask": mask}
        batch, layers = memory.shape[0], cast("list[DecoderLayer]", list(self.layers))
        empty = []
        for layer in layers:
            attention = layer.self_attention
            none = memory.new_zeros(batch, attention.num_heads, 0, attention.head_dim)  # (batch, heads, 0, head_dim)
            empty.append((none, none))
        keys = [  # fixed per source: multi-head attention's keys and values in heads, or the attention's own keys
            layer.cross_attention.project_memory(memory, memory)
            if isinstance(layer.cross_attention, MultiHeadAttention)
            else layer.cross_attention.project_keys(memory)
            for layer in layers
        ]
        return {"memory": memory, "mask": mask, "keys": keys, "cache": empty, "t": 0}

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State, Optional[Tensor]]:
        """The next token's logits. Without the cache: ``forward`` over the whole prefix tokens (batch, t), its last
        position. With it: tokens (batch, 1), the last token, run through every layer at position t, attending to
        the cached keys and values of positions 0..t-1."""
        if not self.cache:
            logits, weights = self(tokens, state["memory"], state["mask"], need_weights=True)
            return logits[:, -1], state, None if weights is None else weights[..., -1, :]
        t = state["t"]
        x = self.embedding(tokens[:, -1:], offset=t)  # (batch, 1, dim)
        cache, weights = [], None
        for i, layer in enumerate(cast("list[DecoderLayer]", list(self.layers))):
            last = i == len(self.layers) - 1
            x, grown, w = layer.step(
                x, state["cache"][i], state["memory"], state["keys"][i], state["mask"], t, need_weights=last
            )
            cache.append(grown)
            weights = w if last else weights
        logits = self.output(self.norm(x))[:, 0]  # (batch, vocab)
        new = {**state, "cache": cache, "t": t + 1}
        return logits, new, None if weights is None else weights[..., 0, :]  # weights (batch, [heads,] src_len)
