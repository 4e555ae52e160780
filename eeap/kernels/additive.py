"""Fused additive-attention scores (``additive.cpp``): v · tanh(q + k) for every query and key in one loop, with a
hand-written backward pass. See ``eeap.kernels`` for when it applies."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from eeap.kernels import extension


class AdditiveScoreFunction(torch.autograd.Function):
    """q (batch, tgt_len, hidden), k (batch, src_len, hidden), v (hidden) -> scores (batch, tgt_len, src_len)."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        scores, tanh = extension().additive_forward(q, k, v)
        ctx.save_for_backward(tanh, v)
        return scores

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        tanh, v = ctx.saved_tensors
        d_q, d_k, d_v = extension().additive_backward(grad, tanh, v)
        return d_q, d_k, d_v


def additive_scores(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """v^T tanh(q_i + k_j) for q (batch, tgt_len, hidden), k (batch, src_len, hidden), v (hidden)
    -> (batch, tgt_len, src_len)."""
    return AdditiveScoreFunction.apply(q, k, v)
