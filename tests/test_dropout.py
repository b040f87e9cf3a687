"""Dropout from a uniform draw (s2s.model.dropout): same behaviour as nn.Dropout."""

from __future__ import annotations

import pytest
import torch

from s2s.model.dropout import Dropout


def test_eval_mode_is_the_identity():
    layer = Dropout(0.5).eval()
    x = torch.randn(4, 5)
    assert layer(x) is x


def test_zero_probability_is_the_identity_in_training():
    x = torch.randn(4, 5)
    assert Dropout(0.0).train()(x) is x


def test_training_zeroes_about_p_and_scales_the_rest():
    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = Dropout(0.3).train()(x)
    assert (y == 0).float().mean().item() == pytest.approx(0.3, abs=0.01)
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.7))
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)   # expectation kept


def test_the_mask_is_reproducible_from_the_seed():
    layer = Dropout(0.5).train()
    x = torch.randn(64)
    torch.manual_seed(7)
    first = layer(x)
    torch.manual_seed(7)
    assert torch.equal(first, layer(x))


def test_gradients_flow_through_kept_units_only():
    torch.manual_seed(1)
    x = torch.ones(1000, requires_grad=True)
    Dropout(0.5).train()(x).sum().backward()
    assert set(torch.unique(x.grad).tolist()) <= {0.0, 2.0}


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_a_probability_outside_zero_to_one_is_refused(p):
    with pytest.raises(ValueError):
        Dropout(p)
