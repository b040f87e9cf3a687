"""One decoder LSTM step with the input projection looked up, not computed.

Without input feeding the decoder LSTM's input at a step is the previous token's embedding, so
``W_ih @ embed(token) + b_ih + b_hh`` can be computed once for every target token: a table of
(tgt_vocab, 4 * dec_hidden). A decoding step then multiplies only the hidden state,
(rows, H) x (H, 4H) instead of (rows, E + H) x (E + H, 4H): a third less work for the
reference model (E = 256, H = 512), which is most of a large batch's step.
"""

from __future__ import annotations

import torch
from torch import nn

from s2s import torch_compat


class GateTable:
    """The input-gate table of an embedding and a one-layer LSTM, rebuilt when their weights
    were replaced (``.to()``, a new data pointer) or changed in place where the change is
    recorded (version counters: ``load_state_dict``, ``copy_``). Fused optimizers update
    weights without recording it, so the owner also clears the table whenever training
    (``train()``) may change them."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._table: torch.Tensor | None = None

    def clear(self) -> None:
        self._key, self._table = None, None

    def get(self, embed: nn.Embedding, rnn: nn.LSTM) -> torch.Tensor:
        """(tgt_vocab, 4 * hidden) input-gate pre-activations per target token."""
        weight_ih, bias_ih, bias_hh = _input_parameters(rnn)
        key = torch_compat.weights_key((embed.weight, weight_ih, bias_ih, bias_hh))
        if key != self._key or self._table is None:
            with torch.no_grad():
                table = torch.addmm(bias_ih, embed.weight, weight_ih.t())
                self._table = table.add_(bias_hh)
            self._key = key
        return self._table


def _input_parameters(rnn: nn.LSTM) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first layer's weight_ih (4H, E), bias_ih (4H,) and bias_hh (4H,): parameters the
    LSTM registers by name, which only ``get_parameter`` types as tensors."""
    return (rnn.get_parameter("weight_ih_l0"), rnn.get_parameter("bias_ih_l0"),
            rnn.get_parameter("bias_hh_l0"))


def supports_gate_table(rnn: nn.Module, input_feeding: bool) -> bool:
    """A plain one-layer, one-direction float LSTM fed only the token embedding."""
    return (torch_compat.is_float_lstm(rnn) and rnn.num_layers == 1 and not rnn.bidirectional
            and rnn.bias and rnn.proj_size == 0 and not input_feeding)


def lstm_step(input_gates: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor,
              weight_hh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """input_gates: (rows, 4H) looked-up input pre-activations; hidden, cell: (rows, H);
    weight_hh: (4H, H). Returns the new hidden and cell states, (rows, H) each (gate order
    i, f, g, o, as torch.nn.LSTM)."""
    gates = torch.addmm(input_gates, hidden, weight_hh.t())
    size = hidden.size(1)
    sig = torch.sigmoid(gates[:, : 2 * size])
    candidate = torch.tanh(gates[:, 2 * size: 3 * size])
    cell = torch.addcmul(sig[:, size:] * cell, sig[:, :size], candidate)
    hidden = torch.sigmoid(gates[:, 3 * size:]) * torch.tanh(cell)
    return hidden, cell
