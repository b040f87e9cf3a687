"""Embedding + (bi)directional LSTM/GRU encoder over packed sequences."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from s2s.config import ModelConfig
from s2s.constants import PAD_ID
from s2s.model.dropout import Dropout

RNN_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class Encoder(nn.Module):
    """Encodes a padded source batch; padding never reaches the final states."""

    def __init__(self, vocab_size: int, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(vocab_size, config.emb_dim, padding_idx=PAD_ID)
        self.emb_dropout = Dropout(config.emb_dropout)
        directions = 2 if config.bidirectional else 1
        self.rnn = RNN_CELLS[config.cell](
            config.emb_dim,
            config.enc_hidden // directions,
            num_layers=config.enc_layers,
            batch_first=True,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.enc_layers > 1 else 0.0,
        )
        self.out_dropout = Dropout(config.dropout)

    def forward(
        self, src: torch.Tensor, src_lens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """src: (batch, src_len) ids; src_lens: (batch,) real lengths (>= 1).

        Returns memory (batch, src_len, enc_hidden) with zeros on padding, and the last layer's
        final hidden state (batch, enc_hidden) and, for an LSTM, final cell state (same shape),
        both directions concatenated.
        """
        embedded = self.emb_dropout(self.embed(src))
        packed = pack_padded_sequence(
            embedded, src_lens.cpu(), batch_first=True, enforce_sorted=False
        )
        packed_out, final = self.rnn(packed)
        memory, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=src.size(1))
        hidden, cell = final if isinstance(final, tuple) else (final, None)
        last_cell = None if cell is None else self._last_layer(cell)
        return self.out_dropout(memory), self._last_layer(hidden), last_cell

    def _last_layer(self, state: torch.Tensor) -> torch.Tensor:
        """(layers * directions, batch, h) -> (batch, directions * h) for the top layer."""
        directions = 2 if self.config.bidirectional else 1
        top = state[-directions:]
        return torch.cat(list(top), dim=-1)
