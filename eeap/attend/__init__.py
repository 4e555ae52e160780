"""Attend: alignment functions, each returning ``(context, weights)``."""

from eeap.attend import additive, cosine, dot, gate, gated, general, hard, local, location, multihead, scaled_dot
from eeap.attend.base import Attention, WrappedAttention, masked_softmax

__all__ = ["Attention", "WrappedAttention", "masked_softmax", "additive", "cosine", "dot", "gate", "gated", "general",
           "hard", "local", "location", "multihead", "scaled_dot"]
