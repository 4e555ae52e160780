"""Gated attention (Xue et al. 2019, "Not All Attention Is Needed"): a gate network opens or closes positions."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eeap.attend.base import DEFAULT_SCORE, ScoreAttention, WrappedAttention
from eeap.config.registry import ATTEND, NonNegativeFloat, PositiveFloat, PositiveInt, Probability


@ATTEND.register("gated")
class GatedAttention(WrappedAttention):
    """Softmax over the positions an auxiliary gate network leaves open.

    Gate probability g = σ(w^T tanh(A k + B q) + b) per (query, key). Training draws binary gates by Gumbel-sigmoid
    (straight-through: 0/1 forward, the relaxed gradient backward); evaluation opens g > ``threshold``. A row whose
    gates are all shut opens its most probable position. ``auxiliary_loss`` = sparsity_weight · mean(g) over valid
    positions, pushing gates shut.

    # Parameters
    score: the attention whose score is used, from its section (default ``{type: general}``).
    gate_dim: hidden size of the gate network (default query_dim).
    temperature: Gumbel-sigmoid temperature.
    threshold: gate probability above which a position is open at evaluation.
    sparsity_weight: weight of the density penalty.

    Returns weights (batch, tgt_len, src_len), zero on shut positions; ``last_gates`` holds the gates used. Its
    notes: ``gate`` (batch, tgt_len, src_len), the gate probabilities g, and ``open``, the gates used (1 open, 0 shut).
    """

    notes = ("gate", "open")

    def __init__(
        self,
        query_dim: int,
        key_dim: int,
        score: ScoreAttention = DEFAULT_SCORE,  # type: ignore[assignment]
        gate_dim: Optional[PositiveInt] = None,
        temperature: PositiveFloat = 0.5,
        threshold: Probability = 0.5,
        sparsity_weight: NonNegativeFloat = 0.01,
    ) -> None:
        super().__init__(query_dim, key_dim, score)
        gate_dim = gate_dim or query_dim
        self.gate_key = nn.Linear(key_dim, gate_dim)  # A k + b_A
        self.gate_query = nn.Linear(query_dim, gate_dim, bias=False)  # B q
        self.gate_out = nn.Linear(gate_dim, 1)  # w, b
        self.temperature, self.threshold, self.sparsity_weight = temperature, threshold, sparsity_weight
        self.densities: list[Tensor] = []
        self.last_gates: Optional[Tensor] = None

    def project_keys(self, keys: Tensor) -> tuple[Tensor, Tensor]:
        return self.inner.project_keys(keys), self.gate_key(keys)  # scoring keys, (batch, src_len, gate_dim)

    def gate_logits(self, query: Tensor, gate_keys: Tensor) -> Tensor:
        """query (batch, tgt_len, query_dim), gate_keys (batch, src_len, gate_dim) -> (batch, tgt_len, src_len)."""
        hidden = torch.tanh(gate_keys.unsqueeze(1) + self.gate_query(query).unsqueeze(2))  # (batch, tgt, src, gate)
        return self.gate_out(hidden).squeeze(-1)

    def attend_projected(
        self,
        query: Tensor,
        keys: tuple[Tensor, Tensor],
        values: Tensor,
        mask: Optional[Tensor] = None,
        step: Optional[int] = None,
        need_weights: Optional[bool] = None,
    ) -> tuple[Tensor, Tensor]:
        single = query.dim() == 2
        if single:
            query = query.unsqueeze(1)  # (batch, 1, query_dim)
        score_keys, gate_keys = keys
        scores = self.inner.score(query, score_keys, step)  # (batch, tgt_len, src_len)
        logits = self.gate_logits(query, gate_keys)  # (batch, tgt_len, src_len)
        valid = (
            torch.ones_like(scores, dtype=torch.bool)
            if mask is None
            else mask.view(mask.shape[0], -1, mask.shape[-1]).expand_as(scores)
        )
        probs = torch.sigmoid(logits)
        if self.training:
            u = torch.rand_like(logits).clamp(1e-6, 1 - 1e-6)
            soft = torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / self.temperature)
            gates = (soft > 0.5).to(soft.dtype) + soft - soft.detach()  # straight-through
            self.densities.append(probs[valid].mean())
        else:
            gates = (probs > self.threshold).to(scores.dtype)
        gates = gates * valid
        shut = (gates.detach() == 0).all(-1, keepdim=True) & valid.any(-1, keepdim=True)  # rows with no open gate
        best = F.one_hot(probs.masked_fill(~valid, -1).argmax(-1), scores.shape[-1]).to(scores.dtype)
        gates = torch.where(shut, best, gates)  # (batch, tgt_len, src_len)
        self.last_gates = gates.detach()
        self.note(gate=probs * valid, open=gates)
        masked = scores.masked_fill(~valid, torch.finfo(scores.dtype).min)
        exp = torch.exp(masked - masked.amax(-1, keepdim=True))  # (batch, tgt_len, src_len), shut rows stay finite
        weighted = exp * gates  # (batch, tgt_len, src_len)
        weights = weighted / weighted.sum(-1, keepdim=True).clamp_min(torch.finfo(scores.dtype).tiny)
        context = torch.bmm(weights, values)  # (batch, tgt_len, value_dim)
        if single:
            return context.squeeze(1), weights.squeeze(1)
        return context, weights

    def auxiliary_loss(self, reward: Tensor) -> Tensor:
        """Sparsity penalty on the gate probabilities seen since the last call."""
        if not self.densities:
            return reward.new_zeros(())
        density = torch.stack(self.densities).mean()
        self.densities = []
        return self.sparsity_weight * density
