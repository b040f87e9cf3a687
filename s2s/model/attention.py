"""Attention over encoder memory: Bahdanau (additive) and Luong (dot, general).

Keys are projected once per batch (``project_keys``) and reused at every decoder step.
``src_mask`` is True on real source tokens; padded positions get exactly zero weight.
"""

from __future__ import annotations

import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, kind: str, query_dim: int, memory_dim: int):
        super().__init__()
        self.kind = kind
        if kind == "dot" and query_dim != memory_dim:
            raise ValueError(
                f"dot attention needs equal decoder ({query_dim}) and encoder ({memory_dim}) sizes"
            )
        if kind == "general":
            self.key_proj = nn.Linear(memory_dim, query_dim, bias=False)
        elif kind == "bahdanau":
            self.key_proj = nn.Linear(memory_dim, query_dim, bias=False)
            self.query_proj = nn.Linear(query_dim, query_dim, bias=False)
            self.energy = nn.Linear(query_dim, 1, bias=False)
        elif kind != "dot":
            raise ValueError(f"unknown attention kind {kind!r}")

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        """memory: (batch, src_len, memory_dim) -> keys (batch, src_len, query_dim)."""
        return memory if self.kind == "dot" else self.key_proj(memory)

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """query: (batch, tgt_len, query_dim); keys: (batch, src_len, query_dim)
        -> unnormalized scores (batch, tgt_len, src_len)."""
        if self.kind == "bahdanau":
            hidden = torch.tanh(self.query_proj(query).unsqueeze(2) + keys.unsqueeze(1))
            return self.energy(hidden).squeeze(-1)
        return torch.bmm(query, keys.transpose(1, 2))

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query: (rows, tgt_len, query_dim) with rows = batch * group; keys: (batch, src_len,
        query_dim); memory: (batch, src_len, memory_dim); src_mask: (batch, src_len) bool.
        Query rows r * group ... (r + 1) * group - 1 attend to sentence r (beam search: one row
        per beam), so the memory is never copied per beam.

        Returns context (rows, tgt_len, memory_dim) and weights (rows, tgt_len, src_len), which
        sum to 1 over real source tokens and are 0 on padding.
        """
        rows, tgt_len = query.shape[:2]
        grouped = query.reshape(keys.size(0), -1, query.size(-1))   # (batch, group * tgt_len, .)
        scores = self.scores(grouped, keys).float()
        scores = scores.masked_fill(~src_mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1).to(memory.dtype)
        context = torch.bmm(weights, memory)
        return context.view(rows, tgt_len, -1), weights.view(rows, tgt_len, -1)
