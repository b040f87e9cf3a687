"""Each torch feature that s2s/torch_compat.py relies on, one test each: a torch release that
changes one fails here, by name, instead of deep inside decoding."""

from __future__ import annotations

import torch
from torch import nn

from s2s import torch_compat


def quantized_linear(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return torch_compat.quantize_int8(nn.Sequential(nn.Linear(8, 6)))[0]


def test_int8_quantization_replaces_linear_and_lstm_layers():
    model = torch_compat.quantize_int8(nn.ModuleDict({"linear": nn.Linear(4, 3),
                                                      "lstm": nn.LSTM(4, 3)}))
    assert torch_compat.is_quantized_linear(model["linear"])
    assert not torch_compat.is_float_linear(model["linear"])
    assert not torch_compat.is_float_lstm(model["lstm"])


def test_float_layers_are_recognised():
    assert torch_compat.is_float_linear(nn.Linear(4, 3))
    assert not torch_compat.is_quantized_linear(nn.Linear(4, 3))
    assert torch_compat.is_float_lstm(nn.LSTM(4, 3))
    assert not torch_compat.is_float_lstm(nn.GRU(4, 3))


def test_unpacked_int8_rows_reproduce_the_quantized_layer():
    layer = quantized_linear()
    qweight, bias = torch_compat.unpack_quantized_linear(layer)
    assert qweight.dtype == torch.qint8 and qweight.shape == (6, 8) and bias.shape == (6,)
    x = torch.randn(5, 8)
    torch.testing.assert_close(torch_compat.int8_linear(x, torch_compat.prepack_int8_rows(
        qweight, bias)), layer(x))


def test_prepacked_row_subsets_score_those_rows():
    layer = quantized_linear()
    qweight, bias = torch_compat.unpack_quantized_linear(layer)
    rows = torch.tensor([4, 1])
    packed = torch_compat.prepack_int8_rows(qweight.index_select(0, rows),
                                            bias.index_select(0, rows))
    x = torch.randn(3, 8)
    torch.testing.assert_close(torch_compat.int8_linear(x, packed), layer(x)[:, rows])


def test_the_quantized_handle_is_stable_and_changes_with_new_weights():
    layer = quantized_linear()
    assert torch_compat.quantized_linear_handle(layer) is torch_compat.quantized_linear_handle(
        layer)
    other = quantized_linear(seed=1)
    layer.set_weight_bias(*torch_compat.unpack_quantized_linear(other))
    assert torch_compat.quantized_linear_handle(layer) is not None
    torch.testing.assert_close(layer(torch.ones(1, 8)), other(torch.ones(1, 8)))


def test_weights_key_follows_recorded_in_place_changes():
    weight = nn.Parameter(torch.zeros(3))
    before = torch_compat.weights_key([weight])
    with torch.no_grad():
        weight.copy_(torch.ones(3))
    assert torch_compat.weights_key([weight]) != before


def test_weights_key_follows_load_state_dict_and_moves():
    layer = nn.Linear(2, 2)
    before = torch_compat.weights_key(layer.parameters())
    layer.load_state_dict(nn.Linear(2, 2).state_dict())
    assert torch_compat.weights_key(layer.parameters()) != before
    moved = torch_compat.weights_key(layer.to(torch.float64).parameters())
    assert moved != before


def test_weights_key_is_unchanged_without_changes():
    layer = nn.Linear(2, 2)
    assert torch_compat.weights_key(layer.parameters()) == torch_compat.weights_key(
        layer.parameters())


def test_softmax_and_log_softmax_write_into_the_given_buffer():
    logits = torch.randn(3, 7)
    out = torch.empty(3, 7)
    assert torch_compat.log_softmax_into(logits, out).data_ptr() == out.data_ptr()
    torch.testing.assert_close(out, torch.log_softmax(logits, dim=1))
    torch_compat.softmax_into(logits, out)
    torch.testing.assert_close(out, torch.softmax(logits, dim=1))
