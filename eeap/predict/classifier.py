"""Classifier heads: pool a sequence of vectors (attention with a learned query, mean, or a CLS token), then classify."""

from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import Tensor, nn

from eeap.predict.base import masked_mean
from eeap.registry import ATTEND, PREDICT, Fraction, NonNegativeInt


@PREDICT.register("classifier")
class Classifier(nn.Module):
    """Pooling then a linear layer (or a hidden layer first).

    ``attention``: a learned query attends over the sequence with ``model.attend`` (any registered attention; default
    additive) and the context is classified; its weights say which tokens or patches decided. ``mean``: the masked
    mean. ``cls``: a learned token is put before the sequence (``prepare``), and its encoded vector is classified.

    # Parameters
    input_dim, embed_dim, num_classes, attend: supplied by the task (encoder output and input sizes).
    pool: ``attention``, ``mean`` or ``cls``.
    hidden: size of a hidden layer before the output (0: none).
    dropout: dropout before the output.

    # Shapes
    x (batch, len, input_dim), mask (batch, len) -> logits (batch, num_classes), weights (batch, len) or None.
    """

    def __init__(
        self,
        input_dim: int,
        embed_dim: int,
        num_classes: int,
        attend: Optional[dict],
        pool: Literal["attention", "mean", "cls"] = "attention",
        hidden: NonNegativeInt = 0,
        dropout: Fraction = 0.0,
    ) -> None:
        super().__init__()
        self.pool = pool
        if pool == "attention":
            self.query = nn.Parameter(torch.randn(input_dim) * 0.02)
            self.attention = ATTEND.build(attend or {"type": "additive"}, "model.attend", query_dim=input_dim,
                                          key_dim=input_dim)
            features = self.attention.context_dim(input_dim)
        else:
            features = input_dim
        if pool == "cls":
            self.cls_token = nn.Parameter(torch.randn(1, 1, embed_dim) * 0.02)  # joins the sequence before encoding
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden:
            layers += [nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(dropout)]
        self.output = nn.Sequential(*layers, nn.Linear(hidden or features, num_classes))

    def prepare(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Before encoding: with ``cls`` pooling, put the CLS token first; (batch, len, dim) -> (batch, 1 + len, dim)."""
        if self.pool != "cls":
            return x, mask
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        return torch.cat([cls, x], 1), torch.cat([mask.new_ones(x.shape[0], 1), mask], 1)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        weights = None
        if self.pool == "attention":
            query = self.query.expand(x.shape[0], -1)  # (batch, input_dim)
            pooled, weights = self.attention(query, x, x, mask, need_weights=True)  # (batch, dim), (batch, len)
        elif self.pool == "mean":
            pooled = masked_mean(x, mask)
        else:
            pooled = x[:, 0]
        return self.output(pooled), weights
