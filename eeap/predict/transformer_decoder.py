"""Transformer decoder (pre-norm): causal self-attention, cross-attention to the memory, feed-forward."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from torch import Tensor, nn

from eeap.attend.base import Attention
from eeap.attend.multihead import MultiHeadAttention
from eeap.embed.token import TokenEmbedding
from eeap.encode.transformer import FeedForward
from eeap.predict.base import SequenceDecoder, State
from eeap.registry import PREDICT, Fraction, PositiveInt


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
    ) -> None:
        super().__init__()
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

    def start(self, memory: Tensor, mask: Tensor) -> State:
        return {"memory": memory, "mask": mask}

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State, Optional[Tensor]]:
        """Recomputes the whole prefix (targets here are short); returns the last position."""
        logits, weights = self(tokens, state["memory"], state["mask"], need_weights=True)
        return logits[:, -1], state, None if weights is None else weights[:, -1]
