"""The looked-up input gates of a decoder step (s2s.gate_table) against torch.nn.LSTM."""

from __future__ import annotations

import pytest
import torch

from s2s.model.gate_table import supports_gate_table


def one_step(model, tokens, use_table: bool):
    """A decoding step; the table is looked up only without gradients, so the plain LSTM step
    runs with them enabled."""
    src = torch.randint(4, 40, (tokens.size(0), 5), generator=torch.Generator().manual_seed(1))
    with torch.set_grad_enabled(not use_table):
        encoded, state = model.encode(src, torch.full((tokens.size(0),), 5))
        log_probs, state, weights = model.decode_step(tokens, encoded, state)
    return log_probs.detach(), state, weights.detach()


def test_a_looked_up_step_equals_the_lstm_step(make_model):
    model = make_model(seed=4).eval()
    assert supports_gate_table(model.decoder.rnn, model.config.input_feeding)
    tokens = torch.tensor([2, 7, 9, 39])
    looked_up, state, weights = one_step(model, tokens, True)
    computed, expected_state, expected_weights = one_step(model, tokens, False)
    torch.testing.assert_close(looked_up, computed, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state.cell, expected_state.cell.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(weights, expected_weights)


def test_the_table_follows_weight_updates(make_model):
    model = make_model(seed=4).eval()
    tokens = torch.tensor([5, 6])
    one_step(model, tokens, True)                     # builds the table
    with torch.no_grad():
        model.decoder.embed.weight[5].add_(1.0)       # an in-place update, as an optimizer's
    looked_up = one_step(model, tokens, True)[0]
    computed = one_step(model, tokens, False)[0]
    torch.testing.assert_close(looked_up, computed, rtol=1e-5, atol=1e-5)


def test_the_table_follows_a_fused_optimizer_step(make_model):
    """Fused Adam updates weights without bumping their version counters."""
    model = make_model(seed=4)
    tokens = torch.tensor([5, 6])
    model.eval()
    one_step(model, tokens, True)                     # builds the table
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, fused=True)
    src = torch.randint(4, 40, (2, 5))
    tgt = torch.randint(4, 40, (2, 4))
    model(src, torch.full((2,), 5), tgt, tgt).backward()
    optimizer.step()
    model.eval()
    looked_up = one_step(model, tokens, True)[0]
    computed = one_step(model, tokens, False)[0]
    torch.testing.assert_close(looked_up, computed, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("overrides", [dict(input_feeding=True), dict(dec_layers=2),
                                       dict(cell="gru")])
def test_other_decoders_keep_the_rnn_step(make_model, overrides):
    model = make_model(**overrides)
    assert not supports_gate_table(model.decoder.rnn, model.config.input_feeding)
