"""Recurrent attention decoders: Bahdanau style (attend, then update) and Luong style (update, then attend)."""

from __future__ import annotations

from typing import Any, Literal, Optional, Sequence

import torch
from torch import Tensor, nn

from eeap import kernels
from eeap.attend.base import Attention
from eeap.config.registry import PREDICT, Fraction, PositiveInt, Probability
from eeap.data.text import PAD
from eeap.kernels import gru as fused_gru
from eeap.predict.base import SequenceDecoder, State, masked_mean, no_attention, stack_weights


@PREDICT.register("rnn_decoder")
class RNNDecoder(SequenceDecoder):
    """A GRU/LSTM decoder with any attention (or none).

    One step, with y the embedded previous token and s the RNN state:

    - ``bahdanau``: c_i = attend(s_{i-1}); s_i = RNN([y_{i-1}; c_i], s_{i-1}); o_i = tanh(W [s_i; c_i; y_{i-1}]).
    - ``luong``: h_t = RNN([y_{t-1}; h̃_{t-1}], h_{t-1}) (without input feeding: RNN(y_{t-1}, h_{t-1}));
      c_t = attend(h_t); o_t = h̃_t = tanh(W_c [c_t; h_t]).

    Logits = V · dropout(o). The first state is tanh(W · mean(memory)) (an LSTM's cell too, with its own W, as in
    Show, Attend and Tell). ``context_gate`` (Show, Attend and Tell's β): the context is scaled by β = σ(W_β s), s the
    query state. ``teacher_forcing`` < 1 feeds the decoder its own argmax at that share of training steps.

    ``forward`` (teacher forcing) runs these steps one by one: the reference path. Where nothing of a step's output
    feeds the next one (Luong style without input feeding, full teacher forcing: JoeyNMT's recurrent model), it runs
    the RNN over the whole target first and then attends with every state in one call: the same function, checked
    against the steps in tests/translation/test_decoders.py.

    # Parameters
    vocab_size, encoder_dim: supplied by the task.
    attention: the attention module, built by the task from ``model.attend`` (empty for ``attend: none``: the
        decoder sees the mean of the memory).
    style: ``bahdanau`` or ``luong``.
    embed_dim, hidden, cell, layers, dropout: sizes of the target embedding and the RNN.
    input_feeding: Luong's feeding of h̃_{t-1} into the next input.
    teacher_forcing: share of training steps fed the gold previous token.
    context_gate: gate the context with β = σ(W_β · query), one gate per context channel.
    """

    needs_prefix = False  # a step reads the last token; the rest is in the recurrent state

    def __init__(
        self,
        vocab_size: int,
        encoder_dim: int,
        attention: Sequence[Attention] = (),
        style: Literal["bahdanau", "luong"] = "bahdanau",
        embed_dim: PositiveInt = 64,
        hidden: PositiveInt = 128,
        cell: Literal["gru", "lstm"] = "gru",
        layers: PositiveInt = 1,
        dropout: Fraction = 0.0,
        input_feeding: bool = True,
        teacher_forcing: Probability = 1.0,
        context_gate: bool = False,
    ) -> None:
        super().__init__()
        self.style, self.cell_kind, self.layers, self.hidden = style, cell, layers, hidden
        self.input_feeding = input_feeding and style == "luong"
        self.teacher_forcing = teacher_forcing
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.attention = attention[0] if attention else None
        context_dim = self.attention.context_dim(encoder_dim) if self.attention is not None else encoder_dim
        if style == "bahdanau":
            first_input = embed_dim + context_dim
            self.pre_output = nn.Linear(hidden + context_dim + embed_dim, hidden)
        else:
            first_input = embed_dim + (hidden if self.input_feeding else 0)
            self.pre_output = nn.Linear(context_dim + hidden, hidden)  # W_c
        rnn_cell = nn.GRUCell if cell == "gru" else nn.LSTMCell
        self.cells = nn.ModuleList(rnn_cell(first_input if i == 0 else hidden, hidden) for i in range(layers))
        self.bridge = nn.Linear(encoder_dim, hidden * layers)
        self.cell_bridge = nn.Linear(encoder_dim, hidden * layers) if cell == "lstm" else None
        self.context_gate = nn.Linear(hidden, context_dim) if context_gate else None
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, vocab_size)

    @classmethod
    def attention_slots(cls, settings: dict[str, Any], encoder_dim: int = 0, **sizes: Any) -> list[dict[str, Any]]:
        """One attention, queried by the decoder's state (size ``hidden``) over the encoder's memory."""
        return [{"query_dim": settings["hidden"], "key_dim": encoder_dim}]

    def start(self, memory: Tensor, mask: Tensor) -> State:
        batch = memory.shape[0]
        mean = masked_mean(memory, mask)  # (batch, encoder_dim)
        h = torch.tanh(self.bridge(mean)).view(batch, self.layers, self.hidden)
        state: State = {"h": h, "memory": memory, "mask": mask, "step": 0}
        if self.cell_bridge is not None:
            state["c"] = torch.tanh(self.cell_bridge(mean)).view(batch, self.layers, self.hidden)
        if self.attention is not None:
            state["keys"] = self.attention.project_keys(memory)
        if self.input_feeding:
            state["feed"] = memory.new_zeros(batch, self.hidden)
        return state

    def attend(self, query: Tensor, state: State) -> tuple[Tensor, Optional[Tensor]]:
        """query (batch, [tgt_len,] hidden) -> context (batch, [tgt_len,] context_dim), weights or None."""
        if self.attention is None:
            context, weights = no_attention(state["memory"], state["mask"])
            if query.dim() == 3:
                context = context.unsqueeze(1).expand(-1, query.shape[1], -1)  # (batch, tgt_len, encoder_dim)
        else:
            context, weights = self.attention.attend_projected(
                query, state["keys"], state["memory"], state["mask"], step=state["step"], need_weights=True
            )
        if self.context_gate is not None:
            context = torch.sigmoid(self.context_gate(query)) * context  # β ⊙ context
        return context, weights

    def cell_step(self, i: int, x: Tensor, state: State) -> tuple[Tensor, Optional[Tensor]]:
        """Layer i's cell on input x (batch, input) from its state in ``state`` -> its new h (and c)."""
        cell: Any = self.cells[i]
        if self.cell_kind == "lstm":
            h, c = cell(x, (state["h"][:, i], state["c"][:, i]))
            return h, c
        if kernels.applies(x):
            return fused_gru.gru_cell(cell, x, state["h"][:, i]), None
        return cell(x, state["h"][:, i]), None

    def recur(self, x: Tensor, state: State) -> State:
        """The stacked cells, one step: x (batch, input) -> the state with the new h (and c), (batch, layers, hidden)."""
        hs, cs = [], []
        for i in range(self.layers):
            h, c = self.cell_step(i, x, state)
            hs.append(h)
            cs.append(c)
            x = self.dropout(h) if i + 1 < self.layers else h
        new = {**state, "h": torch.stack(hs, 1)}
        if self.cell_kind == "lstm":
            new["c"] = torch.stack(cs, 1)  # type: ignore[arg-type]
        return new

    def output_state(self, top: Tensor, context: Tensor, y: Tensor) -> Tensor:
        """The output before the vocabulary projection, for one step (batch, ·) or all steps (batch, tgt_len, ·):
        Bahdanau's tanh(W[s; c; y]) or Luong's h̃ = tanh(W_c[c; h])."""
        if self.style == "bahdanau":
            return torch.tanh(self.pre_output(torch.cat([top, context, y], -1)))
        return torch.tanh(self.pre_output(torch.cat([context, top], -1)))

    def advance(self, y: Tensor, state: State) -> tuple[Tensor, State, Optional[Tensor]]:
        """One decoder step from y, the embedded previous token (batch, embed_dim) -> the output o (batch, hidden),
        the new state, and the attention weights (batch, src_len) or None."""
        if self.style == "bahdanau":
            context, weights = self.attend(state["h"][:, -1], state)  # c_i from s_{i-1}
            state = self.recur(torch.cat([y, context], -1), state)  # s_i
        else:
            state = self.recur(torch.cat([y, state["feed"]], -1) if self.input_feeding else y, state)  # h_t
            context, weights = self.attend(state["h"][:, -1], state)  # c_t from h_t
        out = self.output_state(state["h"][:, -1], context, y)  # o (batch, hidden)
        state["step"] += 1
        if self.input_feeding:
            state["feed"] = out
        return out, state, weights

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State, Optional[Tensor]]:
        out, state, weights = self.advance(self.embedding(tokens[:, -1]), state)
        return self.output(self.dropout(out)), state, weights

    def forward(
        self, tokens: Tensor, memory: Tensor, mask: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Optional[Tensor]]:
        state = self.start(memory, mask)
        gold = self.embedding(tokens)  # (batch, tgt_len, embed_dim)
        own = None  # steps fed the decoder's own previous prediction
        if self.training and self.teacher_forcing < 1.0:
            own = torch.rand(tokens.shape[1], device=tokens.device) >= self.teacher_forcing
        if own is None and self.style == "luong" and not self.input_feeding:
            return self.forward_parallel(gold, state)
        outputs: list[Tensor] = []
        weights: list[Optional[Tensor]] = []
        for t, y in enumerate(gold.unbind(1)):
            if own is not None and own[t] and t > 0:
                y = self.embedding(self.output(outputs[-1]).argmax(-1))
            out, state, w = self.advance(y, state)
            outputs.append(out)
            weights.append(w)
        logits = self.output(self.dropout(torch.stack(outputs, 1)))  # (batch, tgt_len, vocab)
        return logits, stack_weights(weights)

    def forward_parallel(self, gold: Tensor, state: State) -> tuple[Tensor, Optional[Tensor]]:
        """Luong style without input feeding under teacher forcing: the RNN reads only the gold tokens, so it runs
        over all steps first, then one attention call takes every state as its query."""
        x = gold  # (batch, tgt_len, embed_dim)
        for i, layer in enumerate(self.cells):
            cell: Any = layer
            h = state["h"][:, i]  # (batch, hidden)
            if self.cell_kind == "gru" and kernels.applies(x, h):  # the fused backend: all steps in one call
                params = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
                outputs, _ = fused_gru.gru_layer(x.transpose(0, 1), None, h, [params])  # [(tgt_len, batch, hidden)]
                states = outputs[0].transpose(0, 1)  # (batch, tgt_len, hidden)
            else:
                carry: Any = (h, state["c"][:, i]) if self.cell_kind == "lstm" else h
                steps = []
                for x_t in x.unbind(1):
                    carry = cell(x_t, carry)
                    steps.append(carry[0] if self.cell_kind == "lstm" else carry)
                states = torch.stack(steps, 1)  # (batch, tgt_len, hidden)
            x = self.dropout(states) if i + 1 < self.layers else states
        context, weights = self.attend(x, state)  # (batch, tgt_len, context_dim), (batch, tgt_len, src_len)
        out = self.output_state(x, context, gold)  # (batch, tgt_len, hidden)
        return self.output(self.dropout(out)), weights  # (batch, tgt_len, vocab)
