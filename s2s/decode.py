"""Decode many piece-id sequences: sort by length, batch by a token budget, restore order."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from s2s.beam import beam_search
from s2s.data import pad, split_by_tokens
from s2s.model import Seq2Seq
from s2s.search import Hypothesis, SearchOptions, greedy_search
from s2s.shortlist import Shortlist


@torch.no_grad()
def decode_batch(model: Seq2Seq, sources: Sequence[Sequence[int]], search: SearchOptions,
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


def decode_sources(model: Seq2Seq, sources: Sequence[Sequence[int]], search: SearchOptions,
                   batch_tokens: int, device: torch.device, shortlist: Shortlist | None = None
                   ) -> list[list[Hypothesis]]:
    """n-best lists in input order; an empty source gets an empty list. Batches hold at most
    ``batch_tokens`` source tokens (rows x longest), sentences sorted by length."""
    results: list[list[Hypothesis]] = [[] for _ in sources]
    lengths = [len(s) for s in sources]
    order = sorted((i for i, n in enumerate(lengths) if n), key=lambda i: lengths[i])
    for chunk in split_by_tokens(order, lengths, batch_tokens):
        batch = [sources[i] for i in chunk]
        for index, nbest in zip(chunk, decode_batch(model, batch, search, device, shortlist)):
            results[index] = nbest
    return results
