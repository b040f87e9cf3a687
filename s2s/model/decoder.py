"""Attention decoder (Luong style): RNN step(s) -> attention -> attentional vector.

With ``input_feeding`` the previous attentional vector is concatenated to the next input, so the
decoder must run one step at a time; without it the RNN runs over the whole target in one call
and attention is computed for all positions at once (much faster to train).
The output layer that turns attentional vectors into logits lives in the model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from s2s import torch_compat
from s2s.config import ModelConfig
from s2s.constants import PAD_ID
from s2s.model.attention import Attention
from s2s.model.dropout import Dropout
from s2s.model.encoder import RNN_CELLS
from s2s.model.gate_table import GateTable, lstm_step, supports_gate_table


@dataclass
class EncoderOutput:
    """memory: (batch, src_len, enc_hidden); keys: (batch, src_len, dec_hidden), the memory
    projected for the attention scores; src_mask: (batch, src_len) bool, True on real tokens.
    Decoder rows r * group ... (r + 1) * group - 1 attend to sentence r (group = rows / batch,
    the beams of beam search), so nothing here is copied per beam."""

    memory: torch.Tensor
    keys: torch.Tensor
    src_mask: torch.Tensor

    def select(self, index: torch.Tensor) -> EncoderOutput:
        """Keep/reorder sentences: index (new_batch,) of sentence numbers."""
        return replace(self, memory=self.memory.index_select(0, index),
                       keys=self.keys.index_select(0, index),
                       src_mask=self.src_mask.index_select(0, index))


@dataclass
class ProjectedEncoderOutput(EncoderOutput):
    """An EncoderOutput whose ``memory`` is already multiplied by the combine layer's context
    columns: (batch, src_len, dec_hidden) (see Decoder.project_memory)."""


@dataclass
class DecoderState:
    """hidden: (layers, batch, dec_hidden); cell: same shape for an LSTM, else None;
    feed: (batch, dec_hidden) previous attentional vector (input feeding), else None."""

    hidden: torch.Tensor
    cell: torch.Tensor | None
    feed: torch.Tensor | None

    def select(self, index: torch.Tensor) -> DecoderState:
        """Keep/reorder/repeat rows: index (new_batch,) of row numbers."""
        def pick(t: torch.Tensor | None, dim: int) -> torch.Tensor | None:
            return None if t is None else t.index_select(dim, index)

        return DecoderState(self.hidden.index_select(1, index), pick(self.cell, 1),
                            pick(self.feed, 0))


class Decoder(nn.Module):
    def __init__(self, vocab_size: int, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(vocab_size, config.emb_dim, padding_idx=PAD_ID)
        self.emb_dropout = Dropout(config.emb_dropout)
        rnn_input = config.emb_dim + (config.dec_hidden if config.input_feeding else 0)
        self.rnn = RNN_CELLS[config.cell](
            rnn_input, config.dec_hidden, num_layers=config.dec_layers, batch_first=True,
            dropout=config.dropout if config.dec_layers > 1 else 0.0,
        )
        self.attention = Attention(config.attention, config.dec_hidden, config.enc_hidden)
        self.combine = nn.Linear(config.enc_hidden + config.dec_hidden, config.dec_hidden,
                                 bias=False)
        self.out_dropout = Dropout(config.dropout)
        self._gate_table = GateTable()

    def train(self, mode: bool = True) -> Decoder:
        """As nn.Module.train; also forgets the gate table, as training changes the weights
        (fused optimizers without bumping their version counters)."""
        self._gate_table.clear()
        return super().train(mode)

    def forward(
        self, tgt_in: torch.Tensor, encoded: EncoderOutput, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """tgt_in: (batch, tgt_len) previous tokens (BOS first).

        Returns attentional vectors (batch, tgt_len, dec_hidden), the state after the last
        step, and attention weights (batch, tgt_len, src_len).
        """
        if self._can_look_up_gates(tgt_in):
            return self._looked_up_step(tgt_in, encoded, state)
        embedded = self.emb_dropout(self.embed(tgt_in))
        if self.config.input_feeding:
            return self._run_fed(embedded, encoded, state)
        rnn_state = state.hidden if state.cell is None else (state.hidden, state.cell)
        outputs, rnn_state = self.rnn(embedded, rnn_state)
        attentional, weights = self._attend(outputs, encoded)
        return attentional, self._state(rnn_state, None), weights

    def _can_look_up_gates(self, tgt_in: torch.Tensor) -> bool:
        """One inference step (no gradients) of a decoder that s2s.model.gate_table supports."""
        return (tgt_in.size(1) == 1 and not self.training
                and not torch.is_grad_enabled()
                and supports_gate_table(self.rnn, self.config.input_feeding))

    def _looked_up_step(
        self, tgt_in: torch.Tensor, encoded: EncoderOutput, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """forward() for one step (tgt_in: (rows, 1)) with the input gates looked up."""
        table = self._gate_table.get(self.embed, self.rnn)
        assert state.cell is not None, "an LSTM's state (supports_gate_table) has a cell"
        hidden, cell = lstm_step(table.index_select(0, tgt_in[:, 0]), state.hidden[0],
                                 state.cell[0], self.rnn.weight_hh_l0)
        attentional, weights = self._attend(hidden.unsqueeze(1), encoded)
        return attentional, DecoderState(hidden.unsqueeze(0), cell.unsqueeze(0), None), weights

    def _run_fed(
        self, embedded: torch.Tensor, encoded: EncoderOutput, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """Step-by-step decoding with input feeding; embedded: (batch, tgt_len, emb_dim)."""
        embedded, encoded = _cast_once_for_autocast(embedded, encoded)
        feed = state.feed
        if feed is None:
            feed = embedded.new_zeros(embedded.size(0), self.config.dec_hidden)
        rnn_state = state.hidden if state.cell is None else (state.hidden, state.cell)
        steps, weights = [], []
        # unbind: one gradient stack in backward, where a slice per step would build a
        # zero-filled (batch, tgt_len, emb_dim) gradient for each step
        for step_embedded in embedded.unbind(1):
            step_input = torch.cat([step_embedded, feed], dim=-1).unsqueeze(1)
            output, rnn_state = self.rnn(step_input, rnn_state)
            attentional, step_weights = self._attend(output, encoded)
            feed = attentional.squeeze(1)
            steps.append(attentional)
            weights.append(step_weights)
        return torch.cat(steps, 1), self._state(rnn_state, feed), torch.cat(weights, 1)

    def project_memory(self, encoded: EncoderOutput) -> EncoderOutput:
        """The memory multiplied by the combine layer's context columns, once per sentence.

        The attentional vector is tanh(W_c [context; h]) with context = sum_i a_i m_i, so
        W_c's context part applied to the context equals sum_i a_i (W_c m_i): with the memory
        projected (batch, src_len, enc_hidden) -> (batch, src_len, dec_hidden) beforehand, a
        step averages dec_hidden-wide rows and multiplies only h, instead of multiplying an
        (enc_hidden + dec_hidden)-wide input per beam and step: a third of the combine layer's
        work for the reference model, whose combine product was about a quarter of a step at
        320 rows. Same values up to rounding. A quantized (int8) combine layer is left as it
        is."""
        if isinstance(encoded, ProjectedEncoderOutput) or not torch_compat.is_float_linear(
                self.combine):
            return encoded
        context_weight = self.combine.weight[:, : self.config.enc_hidden]
        return ProjectedEncoderOutput(F.linear(encoded.memory, context_weight), encoded.keys,
                                      encoded.src_mask)

    def _attend(
        self, outputs: torch.Tensor, encoded: EncoderOutput
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """outputs: (batch, tgt_len, dec_hidden) -> attentional (same shape), weights."""
        context, weights = self.attention(outputs, encoded.keys, encoded.memory, encoded.src_mask)
        if isinstance(encoded, ProjectedEncoderOutput):
            state_weight = self.combine.weight[:, self.config.enc_hidden:]
            attentional = torch.tanh(torch.add(context, F.linear(outputs, state_weight)))
        else:
            attentional = torch.tanh(self.combine(torch.cat([context, outputs], dim=-1)))
        return self.out_dropout(attentional), weights

    @staticmethod
    def _state(rnn_state, feed: torch.Tensor | None) -> DecoderState:
        if isinstance(rnn_state, tuple):
            return DecoderState(rnn_state[0], rnn_state[1], feed)
        return DecoderState(rnn_state, None, feed)


def _cast_once_for_autocast(embedded: torch.Tensor, encoded: EncoderOutput
                            ) -> tuple[torch.Tensor, EncoderOutput]:
    """Under autocast, the step-by-step decoder's inputs in the autocast dtype, cast once per
    batch: autocast casts activations at every use, so each step would cast the whole memory
    again and backward would cast each step's gradient back (655 ms of casts in three profiled
    bf16 steps with input feeding). Unchanged without autocast. embedded: (batch, tgt_len,
    emb_dim)."""
    device = embedded.device.type
    if not torch.is_autocast_enabled(device):
        return embedded, encoded
    dtype = torch.get_autocast_dtype(device)
    return embedded.to(dtype), replace(encoded, memory=encoded.memory.to(dtype),
                                       keys=encoded.keys.to(dtype))
