"""Token embedding: positions and the scaled (Transformer) initialisation."""

import math

import pytest
import torch

import eeap  # noqa: F401
from eeap.config.registry import EMBED
from eeap.embed.token import sinusoidal_positions
from eeap.errors import DataError


def test_sinusoidal_table_by_hand():
    table = sinusoidal_positions(4, 6)
    position, i = 3, 1  # dims 2 and 3 use rate 10000^(-2/6)
    rate = 10000 ** (-2 * i / 6)
    assert math.isclose(table[position, 2], math.sin(position * rate), rel_tol=1e-5)
    assert math.isclose(table[position, 3], math.cos(position * rate), rel_tol=1e-5)


def test_scaled_embedding_has_unit_scale_vectors_and_zero_padding():
    torch.manual_seed(0)
    embed = EMBED.build({"type": "token", "dim": 256, "scale": True}, "e", vocab_size=500)
    vectors = embed(torch.arange(1, 500).unsqueeze(0))[0]  # (499, 256), times sqrt(256)
    assert abs(vectors.std().item() - 1.0) < 0.05
    assert torch.all(embed(torch.zeros(1, 1, dtype=torch.long)) == 0)


def test_positions_add_and_limit():
    embed = EMBED.build({"type": "token", "dim": 4, "positions": "sinusoidal", "max_len": 3}, "e", vocab_size=5)
    tokens = torch.tensor([[1, 2]])
    assert torch.allclose(embed(tokens) - embed.tokens(tokens), sinusoidal_positions(3, 4)[:2])
    assert torch.allclose(embed(tokens[:, 1:], offset=1)[0, 0], embed(tokens)[0, 1])
    with pytest.raises(DataError, match="longer than the embedding's max_len=3"):
        embed(torch.ones(1, 4, dtype=torch.long))
