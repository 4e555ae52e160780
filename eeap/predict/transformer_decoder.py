"""Transformer decoder (pre-norm): causal self-attention, cross-attention to the memory, feed-forward."""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from eeap.attend.multihead import MultiHeadAttention
from eeap.embed.token import TokenEmbedding
from eeap.encode.transformer import FeedForward
from eeap.predict.base import Decoder, State
from eeap.registry import ATTEND, PREDICT, Fraction, PositiveInt


class DecoderLayer(nn.Module):
    """x + SelfAttn(LN x) (causal); x + W·Cross(LN x, memory); x + FF(LN x). (batch, len, dim) -> same."""

    def __init__(self, dim: int, encoder_dim: int, heads: int, ff_dim: int, dropout: float, attend: dict) -> None:
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))
        self.self_attention = MultiHeadAttention(dim, dim, num_heads=heads, dropout=dropout, causal=True)
        self.cross_attention = ATTEND.build(attend, "model.attend", query_dim=dim, key_dim=encoder_dim)
        self.cross_out = nn.Linear(self.cross_attention.context_dim(encoder_dim), dim)
        self.ff = FeedForward(dim, ff_dim, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, memory: Tensor, mask: Tensor, need_weights: bool) -> tuple[Tensor, Optional[Tensor]]:
        h = self.norms[0](x)
        x = x + self.dropout(self.self_attention(h, h, h)[0])
        context, weights = self.cross_attention(self.norms[1](x), memory, memory, mask, need_weights=need_weights)
        x = x + self.dropout(self.cross_out(context))
        return x + self.dropout(self.ff(self.norms[2](x))), weights


@PREDICT.register("transformer_decoder")
class TransformerDecoder(Decoder):
    """A stack of Transformer decoder layers; the cross-attention is ``model.attend`` (default 4-head multihead).

    Weights returned are the last layer's cross-attention, averaged over heads.

    # Parameters
    vocab_size, encoder_dim, attend: supplied by the task.
    dim, layers, heads, ff_dim, dropout: the usual sizes.
    max_len: longest target.
    tie_embeddings: share the target embedding with the output projection.
    """

    def __init__(
        self,
        vocab_size: int,
        encoder_dim: int,
        attend: Optional[dict],
        dim: PositiveInt = 128,
        layers: PositiveInt = 2,
        heads: PositiveInt = 4,
        ff_dim: PositiveInt = 256,
        dropout: Fraction = 0.1,
        max_len: PositiveInt = 256,
        tie_embeddings: bool = True,
    ) -> None:
        super().__init__()
        attend = attend or {"type": "multihead", "num_heads": heads}
        self.embedding = TokenEmbedding(vocab_size, dim, positions="sinusoidal", max_len=max_len, dropout=dropout,
                                        scale=True)
        self.layers = nn.ModuleList(
            DecoderLayer(dim, encoder_dim, heads, ff_dim, dropout, attend) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.output = nn.Linear(dim, vocab_size)
        if tie_embeddings:
            self.output.weight = self.embedding.tokens.weight

    def forward(
        self, tokens: Tensor, memory: Tensor, mask: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Optional[Tensor]]:
        x = self.embedding(tokens)  # (batch, tgt_len, dim)
        weights = None
        for i, layer in enumerate(self.layers):
            x, weights = layer(x, memory, mask, need_weights and i == len(self.layers) - 1)
        return self.output(self.norm(x)), weights  # (batch, tgt_len, vocab), (batch, tgt_len, src_len)

    def start(self, memory: Tensor, mask: Tensor) -> State:
        return {"memory": memory, "mask": mask}

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State, Optional[Tensor]]:
        """Recomputes the whole prefix (targets here are short); returns the last position."""
        logits, weights = self(tokens, state["memory"], state["mask"], need_weights=True)
        return logits[:, -1], state, None if weights is None else weights[:, -1]
