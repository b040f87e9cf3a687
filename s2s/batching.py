"""The one batching rule of the project: a batch's padded size (rows x longest sequence) stays
within a token budget, and optionally within a number of rows. A single sequence longer than
the budget still gets a batch of its own.

Decoding applies it to source lengths (the translator, and the service's batcher, which plans
with the same ``BatchBudget`` so the translator never splits a batch again); training applies it
to target lengths (padded target tokens per batch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from s2s.constants import DECODE_BATCH_TOKENS, PAD_ID

T = TypeVar("T")


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
        return bool(self.fits_array(np.asarray(rows), np.asarray(longest)))

    def fits_array(self, rows: np.ndarray, longest: np.ndarray) -> np.ndarray:
        """``fits`` elementwise: rows, longest and the result of one shape (numpy, int64)."""
        rows = rows.astype(np.int64)
        within = rows * longest.astype(np.int64) <= self.tokens
        if self.sentences is not None:
            within &= rows <= self.sentences
        return within | (rows <= 1)


    @property
    def most_rows(self) -> int:
        """No batch has more rows (every sequence takes at least one token)."""
        return self.tokens if self.sentences is None else min(self.tokens, self.sentences)


def take_batch(items: Sequence[T], length: Callable[[T], int], budget: BatchBudget,
               start: int = 0) -> tuple[int, bool]:
    """The greedy batch from ``items[start]`` on: the end of the longest run that fits
    ``budget`` (at least one item), and whether the batch is full (the next item would not
    fit, or the row cap is reached). The one cutting rule: decoding plans (``cut_sorted``),
    the service's batcher and training (``cut_pools``, the same rule over arrays) cut with it."""
    longest = 0
    for end in range(start, len(items)):
        grown = max(longest, length(items[end]))
        if end > start and not budget.fits(end - start + 1, grown):
            return end, True
        longest = grown
    return len(items), len(items) - start == budget.sentences


def cut_sorted(indices: Sequence[int], lengths: Sequence[int], budget: BatchBudget
               ) -> list[list[int]]:
    """Cut a length-sorted index list, in order, into batches that fit ``budget``."""
    batches: list[list[int]] = []
    start = 0
    while start < len(indices):
        end, _ = take_batch(indices, lengths.__getitem__, budget, start)
        batches.append(list(indices[start:end]))
        start = end
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
