"""An exponential moving average (EMA) of a model's parameters, kept in fp32 beside the raw
weights that training updates (``train.ema_decay``).

After update n (counted from 0) the average is ``ema = d_n * ema + (1 - d_n) * weights`` with
the warmed-up decay ``d_n = min(decay, (1 + n) / (10 + n))``: the first update keeps a tenth
of the starting weights, and the decay only reaches 0.999 after about 9,000 updates, so the
average of a short run is not dominated by its random initialization.

The run validates and writes every model file with the average (``swapped_in``,
``state_dict``); training states carry it (``state_dict`` / ``load_state_dict``) beside the
raw weights, and ``model_weights`` picks what a training state's model files hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


def warmed_up_decay(decay: float, updates: int) -> float:
    """The decay of update number ``updates`` (0 for the first): min(decay, (1+n)/(10+n))."""
    return min(decay, (1 + updates) / (10 + updates))


def model_weights(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights a training state's model files hold: its EMA weights when the run kept an
    average (``train.ema_decay``), else the raw weights (state-dict names)."""
    ema = state.get("ema")
    return ema["state_dict"] if ema else state["model"]


class ParameterEMA:
    """The average of ``model``'s parameters (each tied parameter once), started from their
    current values. Buffers are not averaged: state dicts take them from the model."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.names = [name for name, _ in model.named_parameters()]
        self.shadow = [p.detach().float().clone() for p in model.parameters()]

    def reset(self, model: nn.Module) -> None:
        """Start the average afresh from ``model``'s current weights."""
        self.updates = 0
        with torch.no_grad():
            for shadow, param in zip(self.shadow, model.parameters()):
                shadow.copy_(param)

    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights (after an optimizer step)."""
        weight = 1.0 - warmed_up_decay(self.decay, self.updates)
        with torch.no_grad():
            params = [p.detach().float() for p in model.parameters()]
            torch._foreach_lerp_(self.shadow, params, weight)
        self.updates += 1

    def averaged_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """``model.state_dict()`` with every parameter replaced by its average (in the
        parameter's dtype; tied names share one tensor); buffers as the model has them."""
        averaged = {id(p): s.to(p.dtype) for p, s in zip(model.parameters(), self.shadow)}
        return {name: averaged.get(id(value), value).detach()
                for name, value in model.state_dict(keep_vars=True).items()}

    @contextmanager
    def swapped_in(self, model: nn.Module) -> Iterator[None]:
        """Within the block ``model`` holds the averaged weights; its raw weights come back
        exactly afterwards. ``model.train(mode)`` runs at both swaps, so modules forget what
        they cached from the weights (the decoder's gate table)."""
        params = list(model.parameters())
        raw = [p.detach().clone() for p in params]
        try:
            with torch.no_grad():
                for param, shadow in zip(params, self.shadow):
                    param.copy_(shadow)
            model.train(model.training)
            yield
        finally:
            with torch.no_grad():
                for param, saved in zip(params, raw):
                    param.copy_(saved)
            model.train(model.training)

    def state_dict(self, model: nn.Module) -> dict[str, Any]:
        """For a training state: the update count and the averaged weights as a full state dict
        of ``model`` (what ``model_weights`` and checkpoint averaging read)."""
        return {"updates": self.updates, "state_dict": self.averaged_state_dict(model)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict``'s output (the decay is the config's, not the saved one)."""
        weights = state["state_dict"]
        with torch.no_grad():
            for name, shadow in zip(self.names, self.shadow):
                shadow.copy_(weights[name])
        self.updates = int(state["updates"])
