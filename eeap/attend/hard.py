"""Hard (stochastic) attention, as in Show, Attend and Tell (Xu et al. 2015): attend to one sampled location."""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from eeap.attend.base import DEFAULT_SCORE, ScoreAttention, WrappedAttention, masked_softmax
from eeap.config.registry import ATTEND, NonNegativeFloat, PositiveFloat, Probability


@ATTEND.register("hard")
class HardAttention(WrappedAttention):
    """Picks one source position per query: sampled while training, the most probable one at evaluation.

    Estimators: ``reinforce`` samples from the softmax and records log p(sample) and the entropy; the task adds
    ``auxiliary_loss(reward)`` = -mean((reward - b) Σ log p) - entropy_weight · mean(Σ entropy), b a moving average
    of the reward (Xu et al. §4.1). ``gumbel`` draws a straight-through Gumbel-softmax sample: one-hot forward,
    soft gradient backward; it needs no extra loss.

    # Parameters
    score: the attention whose score is used, from its section (default ``{type: general}``).
    estimator: ``reinforce`` or ``gumbel``.
    temperature: Gumbel-softmax temperature.
    baseline_decay: decay of the reward's moving average.
    entropy_weight: weight of the entropy bonus (reinforce).

    Weights returned are one-hot (batch, tgt_len, src_len): the location actually used. Its notes: ``choice``
    (batch, tgt_len), that location, and ``probability`` (batch, tgt_len, src_len), the softmax it was chosen from.
    """

    notes = ("choice", "probability")

    def __init__(
        self,
        query_dim: int,
        key_dim: int,
        score: ScoreAttention = DEFAULT_SCORE,  # type: ignore[assignment]
        estimator: Literal["reinforce", "gumbel"] = "reinforce",
        temperature: PositiveFloat = 1.0,
        baseline_decay: Probability = 0.9,
        entropy_weight: NonNegativeFloat = 0.01,
    ) -> None:
        super().__init__(query_dim, key_dim, score)
        self.estimator, self.temperature = estimator, temperature
        self.baseline_decay, self.entropy_weight = baseline_decay, entropy_weight
        self.baseline: Tensor
        self.register_buffer("baseline", torch.zeros(()))
        self.log_probs: list[Tensor] = []
        self.entropies: list[Tensor] = []

    def normalize(self, scores: Tensor, mask: Optional[Tensor], query: Tensor, step: Optional[int] = None) -> Tensor:
        valid = torch.ones_like(scores, dtype=torch.bool) if mask is None else mask.expand_as(scores)
        probs = masked_softmax(scores, valid)  # (batch, tgt_len, src_len)
        if not self.training:
            choice = probs.argmax(-1)  # (batch, tgt_len)
        elif self.estimator == "gumbel":
            logits = scores.masked_fill(~valid, torch.finfo(scores.dtype).min)
            sample = F.gumbel_softmax(logits, tau=self.temperature, hard=True) * valid  # (batch, tgt_len, src_len)
            self.note(choice=sample.argmax(-1), probability=probs)
            return sample
        else:
            row_ok = valid.any(-1)  # (batch, tgt_len)
            safe = torch.where(row_ok.unsqueeze(-1), probs, torch.ones_like(probs))  # empty rows: any index
            dist = torch.distributions.Categorical(probs=safe)
            choice = dist.sample()  # (batch, tgt_len)
            self.log_probs.append((dist.log_prob(choice) * row_ok).sum(-1))  # (batch,)
            self.entropies.append((dist.entropy() * row_ok).sum(-1))  # (batch,)
        self.note(choice=choice, probability=probs)
        return F.one_hot(choice, scores.shape[-1]).to(scores.dtype) * valid

    def auxiliary_loss(self, reward: Tensor) -> Tensor:
        """REINFORCE surrogate for the samples drawn since the last call; reward (batch,), e.g. log p(y | x)."""
        if not self.log_probs:
            return reward.new_zeros(())
        log_prob = torch.stack(self.log_probs).sum(0)  # (batch,)
        entropy = torch.stack(self.entropies).sum(0)  # (batch,)
        self.log_probs, self.entropies = [], []
        reward = reward.detach()
        advantage = reward - self.baseline
        self.baseline.mul_(self.baseline_decay).add_((1 - self.baseline_decay) * reward.mean())
        return -(advantage * log_prob).mean() - self.entropy_weight * entropy.mean()
