"""The one batching rule of the project: a batch's padded size (rows x longest sequence) stays
within a token budget, and optionally within a number of rows. A single sequence longer than
the budget still gets a batch of its own.

Decoding applies it to source lengths (the translator, and the service's batcher, which plans
with the same ``BatchBudget`` so the translator never splits a batch again); training applies it
to target lengths (padded target tokens per batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from s2s.constants import DECODE_BATCH_TOKENS, PAD_ID


@dataclass(frozen=True)
class BatchBudget:
    """tokens: rows x longest per batch; sentences: rows per batch (None = no limit)."""

    tokens: int = DECODE_BATCH_TOKENS
    sentences: int | None = None

    def __post_init__(self) -> None:
        if self.tokens < 1 or (self.sentences is not None and self.sentences < 1):
            raise ValueError("a batch budget needs at least one token and one sentence")

    def fits(self, rows: int, longest: int) -> bool:
        """Whether ``rows`` sequences padded to ``longest`` fit (one row always does)."""
        if rows <= 1:
            return True
        within_rows = self.sentences is None or rows <= self.sentences
        return within_rows and rows * longest <= self.tokens


def cut_sorted(indices: Sequence[int], lengths: Sequence[int], budget: BatchBudget
               ) -> list[list[int]]:
    """Cut a length-sorted index list, in order, into batches that fit ``budget``."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in indices:
        grown = max(longest, lengths[index])
        if current and not budget.fits(len(current) + 1, grown):
            batches.append(current)
            current, grown = [], lengths[index]
        current.append(index)
        longest = grown
    if current:
        batches.append(current)
    return batches


def plan_batches(lengths: Sequence[int], budget: BatchBudget) -> list[list[int]]:
    """Indices of the non-empty sequences (length > 0), sorted by length (stable), cut into
    batches that fit ``budget``."""
    order = sorted((i for i, n in enumerate(lengths) if n), key=lambda i: lengths[i])
    return cut_sorted(order, lengths, budget)


def pad(sequences: Sequence[Sequence[int]]) -> torch.Tensor:
    """(len(sequences), longest) LongTensor padded with PAD_ID."""
    out = torch.full((len(sequences), max(len(s) for s in sequences)), PAD_ID, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out
