"""Decode many piece-id sequences: plan batches (s2s.batching), search, restore order.

``decode_steps`` yields after every decoding step (see s2s.inference.interrupt). Sentences with
lexical constraints (s2s.inference.constraints) are batched apart from those without, which
decode exactly as they would with no constraints anywhere."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from s2s.batching import BatchBudget, pad, plan_batches
from s2s.inference.beam import beam_steps
from s2s.inference.constraints import Constraints, constrained_beam_steps, restriction_with
from s2s.inference.interrupt import NO_INTERRUPT, Interrupt, Steps, run_to_end
from s2s.inference.search import Hypothesis, SearchOptions, greedy_steps
from s2s.inference.step import StepModel
from s2s.shortlist import Shortlist


def batch_steps(model: StepModel, sources: Sequence[Sequence[int]], search: SearchOptions,
                device: torch.device, shortlist: Shortlist | None = None,
                interrupt: Interrupt = NO_INTERRUPT,
                constraints: Sequence[Constraints] | None = None,
                continuing: torch.Tensor | None = None, n_bests: Sequence[int] | None = None
                ) -> Steps[list[list[Hypothesis]]]:
    """One batch of non-empty sources -> n-best lists (greedy when beam_size is 1; n_bests:
    each source's n, default search.n_best). With a
    shortlist, the output layer scores only each sentence's own candidate target pieces (so
    the batch does not change its translation, nor its cost per sentence). With constraints
    (one per source), constrained beam search at any beam size, the shortlist widened to the
    include pieces; continuing: the target pieces that may not follow an include phrase
    (s2s.inference.constraints.continuing_pieces)."""
    src = pad(sources).to(device)
    src_lens = torch.tensor([len(s) for s in sources], device=device)
    if constraints is not None:
        restriction = None if shortlist is None else restriction_with(shortlist, src,
                                                                      constraints)
        return (yield from constrained_beam_steps(model, src, src_lens, search, constraints,
                                                  restriction, interrupt, continuing, n_bests))
    restriction = None if shortlist is None else shortlist.restriction(src)
    if search.beam_size > 1:
        return (yield from beam_steps(model, src, src_lens, search, restriction, interrupt,
                                      n_bests))
    hyps = yield from greedy_steps(model, src, src_lens, search, restriction, interrupt)
    return [[] if hyp is None else [hyp] for hyp in hyps]


def plan_decoding(lengths: Sequence[int], budget: BatchBudget,
                  constraints: Sequence[Constraints | None] | None = None
                  ) -> list[tuple[list[int], bool]]:
    """Batches of the non-empty sources (``plan_batches``), each with whether its sources have
    constraints: those without are planned first, apart from those with."""
    bound = [bool(c) for c in constraints] if constraints is not None else [False] * len(lengths)
    plain = [0 if b else n for n, b in zip(lengths, bound)]
    held = [n if b else 0 for n, b in zip(lengths, bound)]
    return ([(chunk, False) for chunk in plan_batches(plain, budget)]
            + [(chunk, True) for chunk in plan_batches(held, budget)])


def decode_steps(model: StepModel, sources: Sequence[Sequence[int]], search: SearchOptions,
                 budget: BatchBudget, device: torch.device, shortlist: Shortlist | None = None,
                 interrupt: Interrupt = NO_INTERRUPT,
                 constraints: Sequence[Constraints | None] | None = None,
                 continuing: torch.Tensor | None = None, n_bests: Sequence[int] | None = None
                 ) -> Steps[list[list[Hypothesis]]]:
    """n-best lists in input order; an empty source, or one the interrupt dropped, gets an
    empty list. A batch whose inputs are all unwanted before it starts is skipped.
    constraints: each source's (None: none), or None for no source; continuing: see
    ``batch_steps``; n_bests: each source's n-best size (default: search.n_best)."""
    results: list[list[Hypothesis]] = [[] for _ in sources]
    for chunk, bound in plan_decoding([len(s) for s in sources], budget, constraints):
        part = interrupt.subset(chunk)
        if len(part.dropped(range(len(chunk)))) == len(chunk):
            continue
        batch = [sources[i] for i in chunk]
        held: list[Constraints] | None = None
        if bound and constraints is not None:   # bound: every source here has constraints
            held = [c for i in chunk if (c := constraints[i]) is not None]
        wanted = None if n_bests is None else [n_bests[i] for i in chunk]
        nbests = yield from batch_steps(model, batch, search, device, shortlist, part, held,
                                        continuing, wanted)
        for index, nbest in zip(chunk, nbests):
            results[index] = nbest
    return results


def decode_sources(model: StepModel, sources: Sequence[Sequence[int]], search: SearchOptions,
                   budget: BatchBudget, device: torch.device,
                   shortlist: Shortlist | None = None,
                   constraints: Sequence[Constraints | None] | None = None,
                   continuing: torch.Tensor | None = None) -> list[list[Hypothesis]]:
    """``decode_steps`` run to its end."""
    return run_to_end(decode_steps(model, sources, search, budget, device, shortlist,
                                   constraints=constraints, continuing=continuing))
