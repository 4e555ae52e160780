"""Recurrent attention decoders: Bahdanau style (attend, then update) and Luong style (update, then attend)."""

from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import Tensor, nn

from eeap import kernels
from eeap.kernels import gru as fused_gru
from eeap.predict.base import Decoder, State, masked_mean, no_attention, stack_weights
from eeap.registry import ATTEND, PREDICT, Fraction, PositiveInt, Probability
from eeap.text import PAD


@PREDICT.register("rnn_decoder")
class RNNDecoder(Decoder):
    """A GRU/LSTM decoder with any registered attention (or none).

    ``bahdanau``: c_i = attend(s_{i-1}); s_i = RNN([y_{i-1}; c_i], s_{i-1}); o_i = tanh(W[s_i; c_i; y_{i-1}]).
    ``luong``: h_t = RNN([y_{t-1}; h̃_{t-1}], h_{t-1}) (input feeding); c_t = attend(h_t);
    h̃_t = tanh(W_c[c_t; h_t]); without input feeding and with full teacher forcing, training runs the RNN over the
    whole target first and then attends with every state at once (JoeyNMT's recurrent model).
    Logits = V · dropout(o). The first state is tanh(W · mean(memory)) (an LSTM's cell too, with its own W, as in
    Show, Attend and Tell).
    ``context_gate`` (Show, Attend and Tell's β): the context is scaled by β = σ(W_β s) with s the query state.
    ``teacher_forcing`` < 1 feeds the decoder its own argmax at that share of training steps.

    # Parameters
    vocab_size, encoder_dim, attend: supplied by the task (attend is the ``model.attend`` section, or None).
    style: ``bahdanau`` or ``luong``.
    embed_dim, hidden, cell, layers, dropout: sizes of the target embedding and the RNN.
    input_feeding: Luong's feeding of h̃_{t-1} into the next input.
    teacher_forcing: share of training steps fed the gold previous token.
    context_gate: gate the context with β = σ(W_β · query), one gate per context channel.
    fused: on CPU in float32, run a GRU cell with EEAP's fused kernel (``eeap.kernels.gru``, same results).
    """

    def __init__(
        self,
        vocab_size: int,
        encoder_dim: int,
        attend: Optional[dict],
        style: Literal["bahdanau", "luong"] = "bahdanau",
        embed_dim: PositiveInt = 64,
        hidden: PositiveInt = 128,
        cell: Literal["gru", "lstm"] = "gru",
        layers: PositiveInt = 1,
        dropout: Fraction = 0.0,
        input_feeding: bool = True,
        teacher_forcing: Probability = 1.0,
        context_gate: bool = False,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.fused = fused and cell == "gru"
        self.style, self.cell_kind, self.layers, self.hidden = style, cell, layers, hidden
        self.input_feeding = input_feeding and style == "luong"
        self.teacher_forcing = teacher_forcing
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.attention = ATTEND.build(attend, "model.attend", query_dim=hidden, key_dim=encoder_dim) if attend else None
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

    def _attend(self, query: Tensor, state: State) -> tuple[Tensor, Optional[Tensor]]:
        """query (batch, hidden) -> context (batch, context_dim), weights (batch, src_len) or None."""
        if self.attention is None:
            context, weights = no_attention(state["memory"], state["mask"])
        else:
            context, weights = self.attention.attend_projected(
                query, state["keys"], state["memory"], state["mask"], step=state["step"], need_weights=True
            )
        if self.context_gate is not None:
            context = torch.sigmoid(self.context_gate(query)) * context  # β ⊙ context
        return context, weights

    def _recur(self, x: Tensor, state: State) -> dict[str, Tensor]:
        """Run the stacked cells one step; x (batch, input) -> new h (and c), each (batch, layers, hidden)."""
        if self.layers == 1:  # the common case, without the per-layer lists
            if self.cell_kind == "lstm":
                h, c = self.cells[0](x, (state["h"][:, 0], state["c"][:, 0]))
                return {"h": h.unsqueeze(1), "c": c.unsqueeze(1)}
            return {"h": self._gru_cell(self.cells[0], x, state["h"][:, 0]).unsqueeze(1)}
        hs, cs = [], []
        for i, cell in enumerate(self.cells):
            if self.cell_kind == "lstm":
                h, c = cell(x, (state["h"][:, i], state["c"][:, i]))
                cs.append(c)
            else:
                h = self._gru_cell(cell, x, state["h"][:, i])
            hs.append(h)
            x = self.dropout(h) if i + 1 < self.layers else h
        new = {"h": torch.stack(hs, 1)}
        if cs:
            new["c"] = torch.stack(cs, 1)
        return new

    def _recur_all(self, x: Tensor, state: State) -> Tensor:
        """Run the stacked cells over every step of an input that no output feeds back into;
        x (batch, tgt_len, input) -> the top layer's states (batch, tgt_len, hidden)."""
        for i, cell in enumerate(self.cells):
            h = state["h"][:, i]  # (batch, hidden)
            if self.cell_kind == "gru" and self.fused and kernels.applies(x, h):
                params = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
                outputs, _ = fused_gru.gru_layer(x.transpose(0, 1), None, h, [params])  # [(tgt_len, batch, hidden)]
                states = outputs[0].transpose(0, 1)  # (batch, tgt_len, hidden)
            else:
                carry = (h, state["c"][:, i]) if self.cell_kind == "lstm" else h
                steps = []
                for x_t in x.unbind(1):
                    carry = cell(x_t, carry)
                    steps.append(carry[0] if self.cell_kind == "lstm" else carry)
                states = torch.stack(steps, 1)  # (batch, tgt_len, hidden)
            x = self.dropout(states) if i + 1 < self.layers else states
        return x

    def _gru_cell(self, cell: nn.GRUCell, x: Tensor, h: Tensor) -> Tensor:
        """x (batch, input), h (batch, hidden) -> the next h (batch, hidden)."""
        return fused_gru.gru_cell(cell, x, h) if self.fused and kernels.applies(x) else cell(x, h)

    def recur(self, y: Tensor, state: State) -> tuple[State, Tensor, Tensor, Optional[Tensor]]:
        """The recurrent part of one step: y, the embedded previous token (batch, embed_dim) -> state, the top
        state s (batch, hidden), the context (batch, context_dim) and the weights (batch, src_len) or None."""
        if self.style == "bahdanau":
            context, weights = self._attend(state["h"][:, -1], state)  # (batch, context_dim)
            state = {**state, **self._recur(torch.cat([y, context], -1), state)}
            top = state["h"][:, -1]  # (batch, hidden)
        else:
            x = torch.cat([y, state["feed"]], -1) if self.input_feeding else y
            state = {**state, **self._recur(x, state)}
            top = state["h"][:, -1]  # (batch, hidden)
            context, weights = self._attend(top, state)
        state["step"] += 1
        return state, top, context, weights

    def output_state(self, top: Tensor, context: Tensor, y: Tensor) -> Tensor:
        """The output before the vocabulary projection, for one step (batch, ·) or all steps (batch, tgt_len, ·):
        Bahdanau's tanh(W[s; c; y]) or Luong's h̃ = tanh(W_c[c; h])."""
        if self.style == "bahdanau":
            return torch.tanh(self.pre_output(torch.cat([top, context, y], -1)))
        return torch.tanh(self.pre_output(torch.cat([context, top], -1)))

    def advance(self, y: Tensor, state: State) -> tuple[Tensor, State, Optional[Tensor]]:
        """One step before the vocabulary projection; y: the embedded previous token (batch, embed_dim) ->
        output (batch, hidden), state, weights."""
        state, top, context, weights = self.recur(y, state)
        out = self.output_state(top, context, y)
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
        use_own = self.training and self.teacher_forcing < 1.0
        own = torch.rand(tokens.shape[1], device=tokens.device) >= self.teacher_forcing if use_own else None
        gold = self.embedding(tokens)  # (batch, tgt_len, embed_dim), embedded at once
        if own is None and self.style == "luong" and not self.input_feeding:
            # The RNN reads only the gold tokens: run it over all steps, then attend with every state at once.
            tops = self._recur_all(gold, state)  # (batch, tgt_len, hidden)
            if self.attention is None:
                context = no_attention(memory, mask)[0].unsqueeze(1).expand(-1, tops.shape[1], -1)
                weights = None
            else:
                context, weights = self._attend(tops, state)  # (batch, tgt_len, context_dim), (batch, tgt_len, src_len)
            out = self.output_state(tops, context, gold)  # (batch, tgt_len, hidden)
            return self.output(self.dropout(out)), weights  # (batch, tgt_len, vocab)
        if own is None and not self.input_feeding:
            # Nothing of a step's output feeds the next step: run the recurrence, then the output layer once.
            tops, contexts, weights = [], [], []
            for y in gold.unbind(1):
                state, top, context, w = self.recur(y, state)
                tops.append(top)
                contexts.append(context)
                weights.append(w)
            out = self.output_state(torch.stack(tops, 1), torch.stack(contexts, 1), gold)  # (batch, tgt_len, hidden)
            return self.output(self.dropout(out)), stack_weights(weights)  # (batch, tgt_len, vocab)
        outputs, weights = [], []
        for t, y in enumerate(gold.unbind(1)):
            if own is not None and own[t] and t > 0:
                y = self.embedding(self.output(outputs[-1]).argmax(-1))
            out, state, w = self.advance(y, state)
            outputs.append(out)
            weights.append(w)
        logits = self.output(self.dropout(torch.stack(outputs, 1)))  # (batch, tgt_len, vocab)
        return logits, stack_weights(weights)
