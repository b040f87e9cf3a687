"""Decode many piece-id sequences: plan batches (s2s.inference.batching), search, restore order."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from s2s.inference.batching import BatchBudget, pad, plan_batches
from s2s.inference.beam import beam_search
from s2s.inference.search import Hypothesis, SearchOptions, greedy_search
from s2s.inference.shortlist import Shortlist
from s2s.inference.step import StepModel


@torch.no_grad()
def decode_batch(model: StepModel, sources: Sequence[Sequence[int]], search: SearchOptions,
                 device: torch.device, shortlist: Shortlist | None = None
                 ) -> list[list[Hypothesis]]:
    """One batch of non-empty sources -> n-best lists (greedy when beam_size is 1). With a
    shortlist, the output layer scores only each sentence's own candidate target pieces (so
    the batch does not change its translation, nor its cost per sentence)."""
    src = pad(sources).to(device)
    src_lens = torch.tensor([len(s) for s in sources], device=device)
    restriction = None if shortlist is None else shortlist.restriction(src)
    if search.beam_size == 1:
        return [[hyp] for hyp in greedy_search(model, src, src_lens, search, restriction)]
    return beam_search(model, src, src_lens, search, restriction)


def decode_sources(model: StepModel, sources: Sequence[Sequence[int]], search: SearchOptions,
                   budget: BatchBudget, device: torch.device,
                   shortlist: Shortlist | None = None) -> list[list[Hypothesis]]:
    """n-best lists in input order; an empty source gets an empty list."""
    results: list[list[Hypothesis]] = [[] for _ in sources]
    for chunk in plan_batches([len(s) for s in sources], budget):
        batch = [sources[i] for i in chunk]
        for index, nbest in zip(chunk, decode_batch(model, batch, search, device, shortlist)):
            results[index] = nbest
    return results
