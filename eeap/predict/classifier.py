"""Classifier heads: pool a sequence of vectors (attention with a learned query, mean, or a CLS token), then classify."""

from __future__ import annotations

from typing import Any, Literal, Optional, Sequence

import torch
from torch import Tensor, nn

from eeap.attend.base import Attention
from eeap.config.registry import PREDICT, Fraction, NonNegativeInt
from eeap.predict.base import ClassifierHead, masked_mean


@PREDICT.register("classifier")
class Classifier(ClassifierHead):
    """Pooling then a linear layer (or a hidden layer first).

    ``attention``: a learned query attends over the sequence with the attention the task built from
    ``model.attend``, and the context is classified; its weights say which tokens or patches decided. ``mean``: the
    masked mean. ``cls``: the vector at position 0, where the task puts a learned token before encoding.

    # Parameters
    input_dim, num_classes: supplied by the task (the encoder's output size, the data's classes).
    attention: the pooling attention (with ``pool: attention``), built by the task.
    pool: ``attention``, ``mean`` or ``cls``.
    hidden: size of a hidden layer before the output (0: none).
    dropout: dropout before the output.

    # Shapes
    x (batch, len, input_dim), mask (batch, len) -> logits (batch, num_classes), weights (batch, len) or None.
    """

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        attention: Sequence[Attention] = (),
        pool: Literal["attention", "mean", "cls"] = "attention",
        hidden: NonNegativeInt = 0,
        dropout: Fraction = 0.0,
    ) -> None:
        super().__init__()
        self.pool = pool
        self.prepends_token = pool == "cls"
        features = input_dim
        if pool == "attention":
            if not attention:
                raise ValueError("pool: attention needs an attention (model.attend); use pool: mean or cls without one")
            self.query = nn.Parameter(torch.randn(input_dim) * 0.02)
            self.attention = attention[0]
            features = self.attention.context_dim(input_dim)
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden:
            layers += [nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(dropout)]
        self.output = nn.Sequential(*layers, nn.Linear(hidden or features, num_classes))

    @classmethod
    def attention_slots(cls, settings: dict[str, Any], input_dim: int = 0, **sizes: Any) -> list[dict[str, Any]]:
        """With attention pooling, one attention whose learned query and keys have the encoder's size."""
        return [{"query_dim": input_dim, "key_dim": input_dim}] if settings["pool"] == "attention" else []

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        weights = None
        if self.pool == "attention":
            query = self.query.expand(x.shape[0], -1)  # (batch, input_dim)
            pooled, weights = self.attention(query, x, x, mask, need_weights=True)  # (batch, dim), (batch, len)
        elif self.pool == "mean":
            pooled = masked_mean(x, mask)
        else:
            pooled = x[:, 0]  # the token the task put first
        return self.output(pooled), weights
