"""Sparsemax attention: the CONTRIBUTING.md example of a new attention in one file, checked by hand here and by the
contract tests (tests/test_contracts.py) without an edit anywhere else."""

import torch

from eeap.attend.sparsemax import sparsemax
from eeap.config.registry import ATTEND


def test_sparsemax_by_hand():
    # z = [1, 0.5, -1]: sorted cumulative sums 1, 1.5, 0.5; k = 2 (1 + 2·0.5 > 1.5, 1 + 3·(-1) < 0.5);
    # τ = (1.5 − 1) / 2 = 0.25, so the weights are [0.75, 0.25, 0]
    torch.testing.assert_close(sparsemax(torch.tensor([1.0, 0.5, -1.0])), torch.tensor([0.75, 0.25, 0.0]))
    torch.testing.assert_close(sparsemax(torch.tensor([3.0, 0.0, 0.0])), torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(sparsemax(torch.zeros(4)), torch.full((4,), 0.25))  # ties: uniform
    # a masked position is left out: [1, 0.5] alone gives τ = 0.25 again
    mask = torch.tensor([True, False, True])
    torch.testing.assert_close(sparsemax(torch.tensor([1.0, 7.0, 0.5]), mask), torch.tensor([0.75, 0.0, 0.25]))


def test_sparsemax_gradient_by_hand():
    # On the support S, ∂p_i/∂z_j = δ_ij − 1/|S|; off it, 0.
    z = torch.tensor([1.0, 0.5, -1.0], requires_grad=True)
    p = sparsemax(z)
    p[0].backward()
    torch.testing.assert_close(z.grad, torch.tensor([0.5, -0.5, 0.0]))


def test_sparsemax_attention_uses_its_inner_score():
    attention = ATTEND.build({"type": "sparsemax", "score": {"type": "dot"}}, "model.attend", query_dim=2, key_dim=2)
    keys = torch.tensor([[[1.0, 0.0], [0.5, 0.0], [-1.0, 0.0]]])  # dot scores 1, 0.5, -1 for the query [1, 0]
    values = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])
    context, weights = attention(torch.tensor([[1.0, 0.0]]), keys, values)
    torch.testing.assert_close(weights, torch.tensor([[0.75, 0.25, 0.0]]))
    torch.testing.assert_close(context, torch.tensor([[0.75, 0.25]]))
