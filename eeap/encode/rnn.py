"""Recurrent encoders: (bidirectional) GRU or LSTM over padded batches."""

from __future__ import annotations

from typing import Literal, cast

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from eeap import kernels
from eeap.encode.base import SequenceEncoder
from eeap.kernels import gru as fused_gru
from eeap.registry import ENCODE, Fraction, PositiveInt


@ENCODE.register("rnn")
class RNNEncoder(SequenceEncoder):
    """A GRU or LSTM; padding is skipped with packed sequences. ``output_dim`` = hidden · (2 if bidirectional).

    With EEAP's fused CPU kernels on (``eeap.kernels``), a GRU runs as one C++ loop per step with the same results
    (~0.75× the time of torch's GRU on packed sequences on 2 cores); the reference is torch's GRU.

    # Parameters
    input_dim: supplied by the task (the embedding's size).
    hidden: hidden size per direction.
    cell: ``gru`` or ``lstm``.
    layers: stacked layers.
    bidirectional: read both ways and concatenate.
    dropout: between layers and on the output.

    # Shapes
    x (batch, len, input_dim), mask (batch, len) True = token -> (batch, len, output_dim), padding zeroed.
    """

    def __init__(
        self,
        input_dim: int,
        hidden: PositiveInt = 128,
        cell: Literal["gru", "lstm"] = "gru",
        layers: PositiveInt = 1,
        bidirectional: bool = True,
        dropout: Fraction = 0.0,
    ) -> None:
        super().__init__()
        self.cell = cell
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(
            input_dim,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.output_dim = hidden * (2 if bidirectional else 1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        if self.cell == "gru" and kernels.applies(x):
            return self.dropout(fused_gru.gru(cast(nn.GRU, self.rnn), x, mask)) * mask.unsqueeze(
                -1
            )  # (batch, len, output_dim)
        lengths = mask.sum(1).clamp_min(1).cpu()  # (batch,)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])  # (batch, len, output_dim)
        return self.dropout(out) * mask.unsqueeze(-1)
