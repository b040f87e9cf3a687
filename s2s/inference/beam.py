"""Batched beam search over the model's one-step decoder, as small pieces:

- ``top_candidates``: extend every beam by every token, keep the best 2k per sentence;
- ``collect_finished``: candidates ending in EOS among the best k become finished hypotheses;
- ``continuations``: the best k candidates not ending in EOS become the next beams;
- ``search_finished``: a sentence is done when no live beam can still enter its n-best list;
- ``BeamBatch.keep``: done sentences leave the active batch, so the cost falls as they finish.

A sentence starts with one row (its k beams would all be the same prefix, BOS) and has k rows
from the second step on.

All rows of the active batch are decoded in one call per step; there is no Python loop over
sentences or beams on the tensor path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from s2s.constants import BOS_ID, EOS_ID
from s2s.inference.interrupt import NO_INTERRUPT, Interrupt, Steps, run_to_end
from s2s.inference.search import (
    Hypothesis,
    SearchOptions,
    apply_constraints,
    gnmt_length_penalty,
    length_limits,
)
from s2s.inference.step import OutputSpace, StepModel, row_vocab_ids, select_space, start, vocab_ids
from s2s.shortlist import Restriction

NEG_INF = float("-inf")


@dataclass
class Candidates:
    """Best 2k extensions per active sentence; all (active, 2k)."""

    scores: torch.Tensor
    beams: torch.Tensor
    tokens: torch.Tensor


def top_candidates(beam_scores: torch.Tensor, log_probs: torch.Tensor, k: int) -> Candidates:
    """beam_scores: (active, rows) cumulative log-probs of each sentence's rows (1 or k);
    log_probs: (active * rows, V). The best 2k extensions per sentence.

    The best 2k extensions of a sentence are among each beam's own best 2k tokens, so a
    per-row top-k comes first and the full (active, rows * V) score matrix is never built."""
    active, rows = beam_scores.shape
    width = min(2 * k, log_probs.size(1))
    row_scores, row_tokens = log_probs.topk(width, dim=1)            # (active * rows, width)
    total = (beam_scores.view(-1, 1) + row_scores).view(active, rows * width)
    scores, flat = total.topk(min(2 * k, rows * width), dim=1)
    tokens = row_tokens.view(active, rows * width).gather(1, flat)
    return Candidates(scores, torch.div(flat, width, rounding_mode="floor"), tokens)


def collect_finished(candidates: Candidates, k: int, beams: BeamBatch,
                     attention: torch.Tensor | None, finished: list[list[Hypothesis]],
                     alpha: float) -> None:
    """Record EOS candidates ranked within the best k as finished hypotheses.
    attention: (active * rows, t + 1, src_len) or None."""
    history = beams.history
    ranked = candidates.tokens[:, :k] == EOS_ID
    ranked &= candidates.scores[:, :k] > NEG_INF
    for sentence, rank in ranked.nonzero().tolist():
        row = sentence * beams.rows + int(candidates.beams[sentence, rank])
        tokens = row_vocab_ids(beams.space, row, history[row], beams.rows)
        score = float(candidates.scores[sentence, rank])
        finished[beams.sentence_ids[sentence]].append(Hypothesis(
            tokens, score, None if attention is None else attention[row].cpu(),
            score / gnmt_length_penalty(len(tokens) + 1, alpha)))


def continuations(candidates: Candidates, k: int) -> Candidates:
    """The best k candidates per sentence that do not end in EOS; (active, k) each (fewer
    where the output space has fewer than k pieces)."""
    scores = candidates.scores.masked_fill(candidates.tokens == EOS_ID, NEG_INF)
    best, order = scores.topk(min(k, scores.size(1)), dim=1)
    return Candidates(best, candidates.beams.gather(1, order), candidates.tokens.gather(1, order))


def search_finished(best_active: torch.Tensor, max_lens: torch.Tensor, length: int,
                    finished: list[list[Hypothesis]], options: SearchOptions,
                    n_bests: Sequence[int] | None = None) -> torch.Tensor:
    """Which active sentences are done: (active,) bool.

    best_active: (active,) best cumulative score among the live beams after ``length`` tokens;
    max_lens: (active,). A live beam's score can only fall, so with ``exact_stop`` the bound
    ``best_active / lp(max_len)`` (the GNMT penalty is largest at the maximum length) covers any
    normalized score still to come, and the n-best list provably cannot change once its n-th
    entry reaches it. Without it, the bound is ``best_active / lp(length + 1)``: the best live
    beam, had it ended now (the usual heuristic, as OpenNMT's; much less work). Either way
    stopping waits for the n-th best finished hypothesis to beat the live beams; merely
    counting k finished ones lets short early endings crowd out a better, longer one.
    n_bests: each active sentence's own n (default: options.n_best for all), so a sentence
    stops as it would in a batch of its own whatever the others ask for.
    """
    horizon = max_lens.float() if options.exact_stop else torch.full_like(
        best_active, float(length + 1))
    bound = (best_active / gnmt_length_penalty(horizon, options.length_penalty)).tolist()
    wanted = n_bests if n_bests is not None else [options.n_best] * len(finished)
    done = []
    for hyps, limit, n in zip(finished, bound, wanted):
        scores = sorted((h.rank_score for h in hyps), reverse=True)
        done.append(len(scores) >= n and scores[n - 1] >= limit)
    return torch.tensor(done, device=best_active.device) | ~torch.isfinite(best_active)


@dataclass
class BeamBatch:
    """The active sentences' beams: ``rows`` per sentence (1 at the first step, then k).
    Row r of the flat tensors is sentence r // rows, beam r % rows."""

    sentence_ids: list[int]
    scores: torch.Tensor            # (active, rows)
    history: torch.Tensor           # (active * rows, t)
    attention: torch.Tensor | None  # (active * rows, t, src_len)
    encoded: Any                    # the model's encoding, one entry per active sentence
    state: Any                      # the model's decoder state, one entry per row
    space: OutputSpace | None       # what each active sentence may emit (None: everything)
    min_lens: torch.Tensor          # (active * rows,)
    max_lens: torch.Tensor          # (active * rows,)

    @property
    def rows(self) -> int:
        return self.scores.size(1)

    def advance(self, chosen: Candidates, state: Any,
                weights: torch.Tensor | None) -> None:
        """Make the chosen candidates (active, k) the new beams; weights: (active * rows,
        src_len) or None."""
        active, rows_before = chosen.scores.size(0), self.rows
        offsets = torch.arange(active, device=chosen.beams.device).unsqueeze(1) * rows_before
        rows = (chosen.beams + offsets).view(-1)
        self.scores = chosen.scores
        self.history = torch.cat([self.history[rows], chosen.tokens.view(-1, 1)], dim=1)
        self.state = state.select(rows)
        if self.attention is not None:
            self.attention = self.attention[rows]
        if self.rows != rows_before:
            self.min_lens, self.max_lens = self.min_lens[rows], self.max_lens[rows]

    def keep(self, sentences: torch.Tensor) -> None:
        """Keep only the given active sentence positions (1-D long tensor)."""
        k = self.rows
        rows = (sentences.unsqueeze(1) * k + torch.arange(k, device=sentences.device)).view(-1)
        self.sentence_ids = [self.sentence_ids[i] for i in sentences.tolist()]
        self.scores = self.scores[sentences]
        self.history, self.min_lens, self.max_lens = (
            self.history[rows], self.min_lens[rows], self.max_lens[rows])
        self.encoded, self.state = self.encoded.select(sentences), self.state.select(rows)
        self.space = select_space(self.space, sentences)
        if self.attention is not None:
            self.attention = self.attention[rows]


def start_beams(model: StepModel, src: torch.Tensor, src_lens: torch.Tensor,
                options: SearchOptions, restriction: Restriction | None) -> BeamBatch:
    """One row per sentence: its k beams would all start as the same prefix."""
    batch = src.size(0)
    encoded, state, space = start(model, src, src_lens, restriction)
    attention = (src.new_zeros((batch, 0, src.size(1)), dtype=torch.float)
                 if options.return_attention else None)
    return BeamBatch(
        list(range(batch)), torch.zeros((batch, 1), device=src.device), src.new_zeros((batch, 0)),
        attention, encoded, state, space,
        length_limits(src_lens, options.min_len_a, options.min_len_b),
        length_limits(src_lens, options.max_len_a, options.max_len_b, options.max_len))


def beam_search(model: StepModel, src: torch.Tensor, src_lens: torch.Tensor,
                options: SearchOptions, restriction: Restriction | None = None,
                n_bests: Sequence[int] | None = None) -> list[list[Hypothesis]]:
    """``beam_steps`` run to its end."""
    return run_to_end(beam_steps(model, src, src_lens, options, restriction,
                                 n_bests=n_bests))


@torch.no_grad()
def beam_steps(model: StepModel, src: torch.Tensor, src_lens: torch.Tensor,
               options: SearchOptions, restriction: Restriction | None = None,
               interrupt: Interrupt = NO_INTERRUPT, n_bests: Sequence[int] | None = None
               ) -> Steps[list[list[Hypothesis]]]:
    """src: (batch, src_len); src_lens: (batch,); restriction: the target ids each sentence
    may emit (None = all); n_bests: (batch,) each row's n-best size (default: options.n_best;
    each at most beam_size). Yields after every step; returns, per row, its n-best hypotheses
    sorted by length-normalized score, best first (none for a row the interrupt dropped)."""
    k = options.beam_size
    wanted = list(n_bests) if n_bests is not None else [options.n_best] * src.size(0)
    beams = start_beams(model, src, src_lens, options, restriction)
    finished: list[list[Hypothesis]] = [[] for _ in range(src.size(0))]
    prev = torch.full((src.size(0),), BOS_ID, dtype=torch.long, device=src.device)
    step = 0
    while beams.sentence_ids:
        log_probs, state, weights = model.decode_step(prev, beams.encoded, beams.state,
                                                      beams.space)
        apply_constraints(log_probs, step, beams.min_lens, beams.max_lens, beams.history, options)
        attention = beams.attention
        if attention is not None:
            attention = torch.cat([attention, weights.float().unsqueeze(1)], dim=1)
        candidates = top_candidates(beams.scores, log_probs, k)
        collect_finished(candidates, k, beams, attention, finished, options.length_penalty)
        chosen = continuations(candidates, k)
        beams.attention = attention
        beams.advance(chosen, state, weights)
        step += 1
        done = search_finished(chosen.scores[:, 0], beams.max_lens[::beams.rows], step,
                               [finished[s] for s in beams.sentence_ids], options,
                               [wanted[s] for s in beams.sentence_ids])
        if interrupt.active:
            for position in interrupt.dropped(beams.sentence_ids):
                done[position], finished[beams.sentence_ids[position]] = True, []
        if bool(done.any()):
            beams.keep((~done).nonzero(as_tuple=True)[0])
        prev = vocab_ids(beams.space, beams.history[:, -1], beams.rows)
        yield
    return [sorted(hyps, key=lambda h: -h.rank_score)[:n]
            for hyps, n in zip(finished, wanted)]
