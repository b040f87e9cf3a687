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

from s2s.attention import Attention
from s2s.config import ModelConfig
from s2s.dropout import Dropout
from s2s.encoder import RNN_CELLS
from s2s.gate_table import GateTable, lstm_step, supports_gate_table
from s2s.tokenizer import PAD_ID


@dataclass
class OutputSubset:
    """The target ids every sentence of a batch may emit (C,) and the output layer's rows:
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


CHUNK_OVERHEAD = 256   # a chunk's fixed cost, in (sentence x own piece) products


def plan_chunks(widths: list[int], overhead: int = CHUNK_OVERHEAD) -> list[tuple[int, int, int]]:
    """Split sentences 0..n-1 into consecutive chunks (start, end, width), scored chunk by
    chunk with each chunk padded to its widest sentence: the split that minimizes the padded
    work (sum of chunk sizes x widths) plus ``overhead`` per chunk (dynamic programming).
    Sentences come sorted by source length, so their own lists grow roughly in order and a
    few chunks remove most of the padding to the batch's widest list."""
    n = len(widths)
    best = [0] + [None] * n            # best[i]: cost of sentences 0..i-1
    cut = [0] * (n + 1)
    for end in range(1, n + 1):
        widest = 0
        for start in range(end - 1, -1, -1):
            widest = max(widest, widths[start])
            cost = best[start] + (end - start) * widest + overhead
            if best[end] is None or cost < best[end]:
                best[end], cut[end] = cost, start
    chunks, end = [], n
    while end > 0:
        start = cut[end]
        chunks.append((start, end, max(widths[start:end])))
        end = start
    return chunks[::-1]


@dataclass
class OwnOutput:
    """Each sentence's own output pieces beyond the shared subset (see s2s.shortlist), for the
    ``stored`` sentences the batch started with: table (stored, S + P) vocabulary id of every
    position of a sentence's output space (the shared ids, then its own); ids (stored, P) its
    own vocabulary ids, each sentence's own first; valid (stored, P) bool, False on padding;
    layer_weight (V, dec_hidden) and layer_bias (V,) the whole output layer's, not copied;
    dtype: the product's; active (batch,) the stored row of each active sentence (None: all, in
    order); chunks: consecutive stored sentences scored together (``plan_chunks``), since
    scoring all of them padded to the widest list reads mostly padding; parts: each chunk's
    bias (n, 1, width) and weight (n, width, dec_hidden) rows, gathered from the layer once,
    contiguous (a strided slice is copied at every product in bf16). Finished sentences are
    dropped from the stored tensors (and the parts gathered again) only once a quarter of them
    is gone: gathering at every step where a sentence ends would cost more than scoring a few
    finished sentences."""

    table: torch.Tensor
    ids: torch.Tensor
    valid: torch.Tensor
    layer_weight: torch.Tensor
    layer_bias: torch.Tensor
    dtype: torch.dtype
    active: torch.Tensor | None = None
    chunks: list[tuple[int, int, int]] | None = None
    parts: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def __post_init__(self) -> None:
        if self.chunks is None:
            self.chunks = plan_chunks(self.valid.sum(1).tolist())
        if self.parts is None:
            self.parts = []
            for start, end, width in self.chunks:
                ids = self.ids[start:end, :width]
                self.parts.append((self.layer_bias[ids].to(self.dtype).unsqueeze(1),
                                   self.layer_weight[ids].to(self.dtype)))

    def select(self, index: torch.Tensor) -> OwnOutput:
        """Keep/reorder sentences: index (new_batch,) of active sentence numbers."""
        active = index if self.active is None else self.active.index_select(0, index)
        if active.numel() > 0.75 * self.ids.size(0):
            return replace(self, active=active)
        return OwnOutput(*(t.index_select(0, active) for t in (self.table, self.ids, self.valid)),
                         self.layer_weight, self.layer_bias, self.dtype)

    def stored(self, sentences: torch.Tensor) -> torch.Tensor:
        """Stored rows of active sentence numbers (any shape)."""
        return sentences if self.active is None else self.active[sentences]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden: (batch, group, dec_hidden) of the active sentences -> logits of their own
        pieces (batch, group, P), -inf on padding."""
        if self.active is not None:
            scattered = hidden.new_zeros(self.ids.size(0), *hidden.shape[1:])
            scattered[self.active] = hidden
            hidden = scattered
        scores = hidden.new_full((*hidden.shape[:2], self.ids.size(1)), float("-inf"))
        for (start, end, width), (bias, weight) in zip(self.chunks, self.parts):
            scores[start:end, :, :width] = torch.baddbmm(bias, hidden[start:end],
                                                         weight.transpose(1, 2))
        scores = scores.masked_fill(~self.valid.unsqueeze(1), float("-inf"))
        return scores if self.active is None else scores[self.active]


@dataclass
class EncoderOutput:
    """memory: (batch, src_len, enc_hidden), or (batch, src_len, dec_hidden) once
    ``projected`` (see Decoder.project_memory); keys: (batch, src_len, dec_hidden);
    src_mask: (batch, src_len) bool, True on real tokens; output_subset: the target ids every
    sentence may emit (None = the full vocabulary); own_output: the ids each sentence may emit
    besides (None = none); group: decoder rows per sentence (the beam size in beam search):
    decoder row r belongs to sentence r // group."""

    memory: torch.Tensor
    keys: torch.Tensor
    src_mask: torch.Tensor
    output_subset: OutputSubset | None = None
    own_output: OwnOutput | None = None
    group: int = 1
    projected: bool = False

    def select(self, index: torch.Tensor) -> EncoderOutput:
        """Keep/reorder sentences: index (new_batch,) of sentence numbers."""
        own = None if self.own_output is None else self.own_output.select(index)
        return replace(self, memory=self.memory.index_select(0, index),
                       keys=self.keys.index_select(0, index),
                       src_mask=self.src_mask.index_select(0, index), own_output=own)

    def grouped(self, group: int) -> EncoderOutput:
        """The same sentences, each decoded by ``group`` rows (no copy)."""
        return replace(self, group=group)


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
        self._gate_table = GateTable()

    use_gate_table = True   # inference steps look up the input gates (s2s.gate_table)

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
        """One inference step of a decoder that s2s.gate_table supports."""
        return (tgt_in.size(1) == 1 and self.use_gate_table and not self.training
                and not torch.is_grad_enabled()
                and supports_gate_table(self.rnn, self.config.input_feeding))

    def _looked_up_step(
        self, tgt_in: torch.Tensor, encoded: EncoderOutput, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """forward() for one step (tgt_in: (rows, 1)) with the input gates looked up."""
        table = self._gate_table.get(self.embed, self.rnn)
        hidden, cell = lstm_step(table.index_select(0, tgt_in[:, 0]), state.hidden[0],
                                 state.cell[0], self.rnn.weight_hh_l0)
        attentional, weights = self._attend(hidden.unsqueeze(1), encoded)
        return attentional, DecoderState(hidden.unsqueeze(0), cell.unsqueeze(0), None), weights

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
        if encoded.projected or type(self.combine) is not nn.Linear:
            return encoded
        context_weight = self.combine.weight[:, : self.config.enc_hidden]
        return replace(encoded, memory=F.linear(encoded.memory, context_weight), projected=True)

    def _attend(
        self, outputs: torch.Tensor, encoded: EncoderOutput
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """outputs: (batch, tgt_len, dec_hidden) -> attentional (same shape), weights."""
        context, weights = self.attention(outputs, encoded.keys, encoded.memory, encoded.src_mask)
        if encoded.projected:
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
