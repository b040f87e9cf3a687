"""Attention decoder (Luong style): RNN step(s) -> attention -> attentional vector.

With ``input_feeding`` the previous attentional vector is concatenated to the next input, so the
decoder must run one step at a time; without it the RNN runs over the whole target in one call
and attention is computed for all positions at once (much faster to train).
The output layer that turns attentional vectors into logits lives in the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from s2s.attention import Attention
from s2s.config import ModelConfig
from s2s.dropout import Dropout
from s2s.encoder import RNN_CELLS
from s2s.tokenizer import PAD_ID


@dataclass
class OutputSubset:
    """The target ids a batch may emit (C,) and the output layer's rows for them:
    weight (C, dec_hidden), bias (C,); for an int8 (dynamically quantized) output layer,
    ``packed`` holds those rows prepacked for ``quantized.linear_dynamic`` instead."""

    ids: torch.Tensor
    weight: torch.Tensor | None
    bias: torch.Tensor | None
    packed: object | None = None

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden: (rows, dec_hidden) -> logits (rows, C)."""
        if self.packed is not None:
            return torch.ops.quantized.linear_dynamic(hidden, self.packed)
        return F.linear(hidden, self.weight, self.bias)


@dataclass
class EncoderOutput:
    """memory: (batch, src_len, enc_hidden); keys: (batch, src_len, dec_hidden);
    src_mask: (batch, src_len) bool, True on real tokens; output_subset: the target ids the
    batch may emit (None = the full vocabulary); output_mask: (batch, C) bool, which of them
    each row may emit (None = all)."""

    memory: torch.Tensor
    keys: torch.Tensor
    src_mask: torch.Tensor
    output_subset: OutputSubset | None = None
    output_mask: torch.Tensor | None = None

    def select(self, index: torch.Tensor) -> EncoderOutput:
        """Keep/reorder/repeat rows: index (new_batch,) of row numbers."""
        mask = None if self.output_mask is None else self.output_mask.index_select(0, index)
        return EncoderOutput(self.memory.index_select(0, index), self.keys.index_select(0, index),
                             self.src_mask.index_select(0, index), self.output_subset, mask)


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

        return DecoderState(pick(self.hidden, 1), pick(self.cell, 1), pick(self.feed, 0))


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

    def forward(
        self, tgt_in: torch.Tensor, encoded: EncoderOutput, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """tgt_in: (batch, tgt_len) previous tokens (BOS first).

        Returns attentional vectors (batch, tgt_len, dec_hidden), the state after the last
        step, and attention weights (batch, tgt_len, src_len).
        """
        embedded = self.emb_dropout(self.embed(tgt_in))
        if self.config.input_feeding:
            return self._run_fed(embedded, encoded, state)
        rnn_state = state.hidden if state.cell is None else (state.hidden, state.cell)
        outputs, rnn_state = self.rnn(embedded, rnn_state)
        attentional, weights = self._attend(outputs, encoded)
        return attentional, self._state(rnn_state, None), weights

    def _run_fed(
        self, embedded: torch.Tensor, encoded: EncoderOutput, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """Step-by-step decoding with input feeding; embedded: (batch, tgt_len, emb_dim)."""
        feed = state.feed
        if feed is None:
            feed = embedded.new_zeros(embedded.size(0), self.config.dec_hidden)
        rnn_state = state.hidden if state.cell is None else (state.hidden, state.cell)
        steps, weights = [], []
        for t in range(embedded.size(1)):
            step_input = torch.cat([embedded[:, t], feed], dim=-1).unsqueeze(1)
            output, rnn_state = self.rnn(step_input, rnn_state)
            attentional, step_weights = self._attend(output, encoded)
            feed = attentional.squeeze(1)
            steps.append(attentional)
            weights.append(step_weights)
        return torch.cat(steps, 1), self._state(rnn_state, feed), torch.cat(weights, 1)

    def _attend(
        self, outputs: torch.Tensor, encoded: EncoderOutput
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """outputs: (batch, tgt_len, dec_hidden) -> attentional (same shape), weights."""
        context, weights = self.attention(outputs, encoded.keys, encoded.memory, encoded.src_mask)
        attentional = torch.tanh(self.combine(torch.cat([context, outputs], dim=-1)))
        return self.out_dropout(attentional), weights

    @staticmethod
    def _state(rnn_state, feed: torch.Tensor | None) -> DecoderState:
        if isinstance(rnn_state, tuple):
            return DecoderState(rnn_state[0], rnn_state[1], feed)
        return DecoderState(rnn_state, None, feed)
