"""Every use of torch behaviour that is private or version-dependent, in one place.

The rest of the library calls these functions and never touches ``_packed_params``,
``_version`` or exact module types itself; ``tests/test_torch_compat.py`` checks each feature
relied on here, so a torch upgrade that changes one fails there, by name.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import TypeGuard, TypeVar

import torch
from torch import nn

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def quantize_int8(model: ModuleT) -> ModuleT:
    """A copy of ``model`` with its LSTM/GRU and Linear layers dynamically quantized to int8
    (torch.ao eager mode: deprecated in recent releases, but it works and has no successor for
    recurrent layers). The copy is of the model's own class."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(
            model, {nn.LSTM, nn.GRU, nn.Linear}, dtype=torch.qint8)


def is_quantized_linear(layer: nn.Module) -> bool:
    """Whether ``layer`` is an int8 dynamically quantized Linear (from ``quantize_int8``)."""
    return hasattr(layer, "_packed_params")


def is_float_linear(layer: nn.Module) -> TypeGuard[nn.Linear]:
    """A plain float nn.Linear, whose weight may be sliced (not a quantized replacement)."""
    return type(layer) is nn.Linear


def is_float_lstm(layer: nn.Module) -> TypeGuard[nn.LSTM]:
    """A plain float nn.LSTM with the usual weight_ih_l0 / weight_hh_l0 parameters."""
    return type(layer) is nn.LSTM


def quantized_linear_handle(layer: nn.Module) -> object:
    """An object whose identity changes whenever the quantized layer's weights are replaced:
    the prepacked weights held by the layer's ``_packed_params`` submodule."""
    return layer.get_submodule("_packed_params")._packed_params


def unpack_quantized_linear(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The quantized layer's int8 weight (out, in) and float bias (out,)."""
    qweight, bias = torch.ops.quantized.linear_unpack(quantized_linear_handle(layer))
    return qweight, bias


def prepack_int8_rows(qweight: torch.Tensor, bias: torch.Tensor) -> object:
    """Prepack int8 weight rows (n, in) and bias (n,) for ``int8_linear``."""
    return torch.ops.quantized.linear_prepack(qweight, bias)


def int8_linear(hidden: torch.Tensor, packed: object) -> torch.Tensor:
    """hidden (rows, in) float -> (rows, n) through prepacked int8 rows (dynamic quantization
    of ``hidden``), exactly as the quantized Linear computes it: with ``reduce_range`` (7-bit
    activations), without which fbgemm's 16-bit intermediate sums saturate (errors near 1.0
    on logits of size ~1 were measured here)."""
    return torch.ops.quantized.linear_dynamic(hidden, packed, reduce_range=True)


def weights_key(params: Iterable[torch.Tensor]) -> tuple:
    """Changes when any parameter is replaced (new storage, ``.to()``) or changed in place in a
    way torch records (``copy_``, ``load_state_dict``): storage address, version counter,
    dtype. Fused optimizers update in place without recording it."""
    return tuple((p.data_ptr(), p._version, p.dtype) for p in params)


def log_softmax_into(logits: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """log_softmax over dim 1 of logits (n, V) written into ``out`` (no new buffer; the
    public torch.log_softmax has no ``out``)."""
    return torch.ops.aten._log_softmax.out(logits, 1, False, out=out)


def softmax_into(logits: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """softmax over dim 1 of logits (n, V) written into ``out``."""
    return torch.ops.aten._softmax.out(logits, 1, False, out=out)
