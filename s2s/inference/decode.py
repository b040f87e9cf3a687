"""Decode many piece-id sequences: plan batches (s2s.inference.batching), search, restore order.

``decode_steps`` yields after every decoding step (see s2s.inference.interrupt)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from s2s.inference.batching import BatchBudget, pad, plan_batches
from s2s.inference.beam import beam_steps
from s2s.inference.interrupt import NO_INTERRUPT, Interrupt, Steps, run_to_end
from s2s.inference.search import Hypothesis, SearchOptions, greedy_steps
from s2s.inference.shortlist import Shortlist
from s2s.inference.step import StepModel


def batch_steps(model: StepModel, sources: Sequence[Sequence[int]], search: SearchOptions,
                device: torch.device, shortlist: Shortlist | None = None,
                interrupt: Interrupt = NO_INTERRUPT) -> Steps[list[list[Hypothesis]]]:
    """One batch of non-empty sources -> n-best lists (greedy when beam_size is 1). With a
    shortlist, the output layer scores only each sentence's own candidate target pieces (so
    the batch does not change its translation, nor its cost per sentence)."""
    src = pad(sources).to(device)
    src_lens = torch.tensor([len(s) for s in sources], device=device)
    restriction = None if shortlist is None else shortlist.restriction(src)
    if search.beam_size > 1:
        return (yield from beam_steps(model, src, src_lens, search, restriction, interrupt))
    hyps = yield from greedy_steps(model, src, src_lens, search, restriction, interrupt)
    return [[] if hyp is None else [hyp] for hyp in hyps]


def decode_steps(model: StepModel, sources: Sequence[Sequence[int]], search: SearchOptions,
                 budget: BatchBudget, device: torch.device, shortlist: Shortlist | None = None,
                 interrupt: Interrupt = NO_INTERRUPT) -> Steps[list[list[Hypothesis]]]:
    """n-best lists in input order; an empty source, or one the interrupt dropped, gets an
    empty list. A batch whose inputs are all unwanted before it starts is skipped."""
    results: list[list[Hypothesis]] = [[] for _ in sources]
    for chunk in plan_batches([len(s) for s in sources], budget):
        part = interrupt.subset(chunk)
        if len(part.dropped(range(len(chunk)))) == len(chunk):
            continue
        batch = [sources[i] for i in chunk]
        nbests = yield from batch_steps(model, batch, search, device, shortlist, part)
        for index, nbest in zip(chunk, nbests):
            results[index] = nbest
    return results


def decode_sources(model: StepModel, sources: Sequence[Sequence[int]], search: SearchOptions,
                   budget: BatchBudget, device: torch.device,
                   shortlist: Shortlist | None = None) -> list[list[Hypothesis]]:
    """``decode_steps`` run to its end."""
    return run_to_end(decode_steps(model, sources, search, budget, device, shortlist))
