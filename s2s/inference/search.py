"""Decoding driven by the model's one-step decoder: shared options and constraints, greedy search.

Output length limits are computed per sentence (``a * src_len + b``), never from the longest
sentence of the batch, so a sentence decodes the same alone or in any batch. Beam search lives
in ``s2s.inference.beam`` and uses the same constraints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from s2s.constants import BEAM_SIZE, BOS_ID, EOS_ID, LENGTH_PENALTY, MAX_LEN_A, MAX_LEN_B, UNK_ID
from s2s.inference.interrupt import NO_INTERRUPT, Interrupt, Steps, run_to_end
from s2s.inference.step import StepModel, select_space, start, vocab_ids
from s2s.shortlist import Restriction


@dataclass(frozen=True)
class SearchOptions:
    """Decoding options. Lengths count output tokens including EOS."""

    beam_size: int = BEAM_SIZE
    n_best: int = 1
    length_penalty: float = LENGTH_PENALTY   # GNMT alpha; 0 = raw log-probability
    max_len_a: float = MAX_LEN_A
    max_len_b: int = MAX_LEN_B
    min_len_a: float = 0.0
    min_len_b: int = 0
    no_repeat_ngram: int = 0           # 0 = off
    forbid_unk: bool = False
    return_attention: bool = False
    exact_stop: bool = False           # beam: stop only when the n-best provably can't change
    max_len: int | None = None         # cap on every sentence's max length (None: none)

    def __post_init__(self) -> None:
        numbers = (self.length_penalty, self.max_len_a, self.min_len_a)
        if not all(math.isfinite(value) for value in numbers):
            raise ValueError("length_penalty, max_len_a and min_len_a must be finite")
        if self.max_len is not None and self.max_len < 1:
            raise ValueError("max_len must be >= 1 (EOS counts)")
        if self.beam_size < 1:
            raise ValueError("beam_size must be at least 1")
        if not 1 <= self.n_best <= self.beam_size:
            raise ValueError(f"n_best must be between 1 and beam_size ({self.beam_size})")
        if self.max_len_a < 0 or self.max_len_b < 1:
            raise ValueError("max_len_a must be >= 0 and max_len_b >= 1 (EOS counts)")
        if self.length_penalty < 0:
            raise ValueError("length_penalty must be >= 0")
        if self.no_repeat_ngram < 0:
            raise ValueError("no_repeat_ngram must be >= 0")


class SearchLimitError(ValueError):
    """An option above a caller's limit: ``option`` (a SearchOptions field), its ``value`` and
    the ``limit``."""

    def __init__(self, option: str, value: float, limit: float):
        super().__init__(f"{option} {value:g} is above the limit of {limit:g}")
        self.option, self.value, self.limit = option, value, limit


@dataclass(frozen=True)
class SearchLimits:
    """The largest options a caller may ask for (a server's limits): the one definition of
    which decoding options are bounded. SearchOptions checks that options are valid at all;
    ``check`` that they are within these. The service's settings hold the values."""

    n_best: int = 16
    beam_size: int = 16
    max_len_a: float = 4.0
    max_len_b: int = 256
    length_penalty: float = 5.0

    def check(self, options: SearchOptions) -> None:
        """SearchLimitError for the first option of ``options`` above its limit."""
        for field in fields(self):
            value, limit = getattr(options, field.name), getattr(self, field.name)
            if value > limit:
                raise SearchLimitError(field.name, value, limit)


@dataclass
class Hypothesis:
    tokens: list[int]          # without BOS and EOS
    score: float               # summed log-probability (EOS included when reached)
    attention: torch.Tensor | None = None   # (len(tokens) + 1, src_len) when requested
    normalized_score: float | None = None   # score / GNMT length penalty (beam search)

    @property
    def rank_score(self) -> float:
        """What hypotheses are ranked by: the normalized score where search set one (beam
        search), else the score (greedy)."""
        return self.score if self.normalized_score is None else self.normalized_score


def length_limits(src_lens: torch.Tensor, a: float, b: int, cap: int | None = None
                  ) -> torch.Tensor:
    """Per-sentence length in tokens, EOS included: floor(a * src_len) + b, at most ``cap``;
    (batch,) long."""
    limits = (src_lens.float() * a).floor().clamp(max=2**40).long() + b
    return limits if cap is None else limits.clamp(max=cap)


def max_output_tokens(src_len: int, options: SearchOptions) -> int:
    """The output limit (EOS included) search gives a source of ``src_len`` pieces."""
    limit = math.floor(src_len * options.max_len_a) + options.max_len_b
    return limit if options.max_len is None else min(limit, options.max_len)


def gnmt_length_penalty(length, alpha: float):
    """((5 + length) / 6) ** alpha (Wu et al., 2016); length: an int or a tensor of them."""
    return ((5.0 + length) / 6.0) ** alpha


def apply_constraints(log_probs: torch.Tensor, step: int, min_lens: torch.Tensor,
                      max_lens: torch.Tensor, history: torch.Tensor | None,
                      options: SearchOptions) -> torch.Tensor:
    """Mask log_probs (rows, V) in place for decoding step ``step`` (0-based). V may be a
    shortlist's output space: the special ids keep their positions there.

    min_lens, max_lens: (rows,) per-row limits; history: (rows, step) tokens so far (or None).
    EOS is forbidden before the minimum length and forced at the maximum length.
    """
    if options.forbid_unk:
        log_probs[:, UNK_ID] = float("-inf")
    too_short = step + 1 < min_lens
    if bool(too_short.any()):
        log_probs[too_short, EOS_ID] = float("-inf")
    if options.no_repeat_ngram and history is not None:
        block_repeated_ngrams(log_probs, history, options.no_repeat_ngram)
    at_limit = step + 1 >= max_lens
    if bool(at_limit.any()):
        log_probs[at_limit] = float("-inf")
        log_probs[at_limit, EOS_ID] = 0.0
    return log_probs


def block_repeated_ngrams(log_probs: torch.Tensor, history: torch.Tensor, n: int) -> None:
    """Forbid any token that would complete an n-gram already present in the row's history.
    log_probs: (rows, V); history: (rows, t)."""
    if history.size(1) < n:  # no complete n-gram yet
        return
    if n == 1:
        log_probs.scatter_(1, history, float("-inf"))
        return
    windows = history.unfold(1, n, 1)                              # (rows, t - n + 1, n)
    prefix = history[:, history.size(1) - (n - 1):]                # (rows, n - 1)
    match = (windows[:, :, :-1] == prefix.unsqueeze(1)).all(-1)    # (rows, t - n + 1)
    rows, positions = match.nonzero(as_tuple=True)
    log_probs[rows, windows[rows, positions, -1]] = float("-inf")


def greedy_search(model: StepModel, src: torch.Tensor, src_lens: torch.Tensor,
                  options: SearchOptions | None = None,
                  restriction: Restriction | None = None) -> list[Hypothesis]:
    """``greedy_steps`` run to its end."""
    hyps = run_to_end(greedy_steps(model, src, src_lens, options, restriction))
    return [hyp for hyp in hyps if hyp is not None]   # no interrupt: no row is dropped


@torch.no_grad()
def greedy_steps(model: StepModel, src: torch.Tensor, src_lens: torch.Tensor,
                 options: SearchOptions | None = None, restriction: Restriction | None = None,
                 interrupt: Interrupt = NO_INTERRUPT) -> Steps[list[Hypothesis | None]]:
    """src: (batch, src_len); src_lens: (batch,); restriction: the target ids each sentence
    may emit (None = all). Yields after every step; returns one hypothesis per row, in row
    order (None for a row the interrupt dropped). Finished sentences leave the active batch."""
    options = options or SearchOptions(beam_size=1)
    encoded, state, space = start(model, src, src_lens, restriction)
    batch = src.size(0)
    max_lens = length_limits(src_lens, options.max_len_a, options.max_len_b, options.max_len)
    min_lens = length_limits(src_lens, options.min_len_a, options.min_len_b)
    history = torch.full((batch, 0), BOS_ID, dtype=torch.long, device=src.device)
    active = torch.arange(batch, device=src.device)
    prev = torch.full((batch,), BOS_ID, dtype=torch.long, device=src.device)
    hyps: list[Hypothesis | None] = [Hypothesis([], 0.0) for _ in range(batch)]
    attention: list[list[torch.Tensor]] | None = (
        [[] for _ in range(batch)] if options.return_attention else None)
    step = 0
    while active.numel() > 0:
        log_probs, state, weights = model.decode_step(prev, encoded, state, space)
        apply_constraints(log_probs, step, min_lens, max_lens, history, options)
        best_scores, best = log_probs.max(dim=-1)
        finished = best == EOS_ID
        prev = vocab_ids(space, best, 1)
        sentences = active.tolist()
        extend_greedy(hyps, sentences, prev.tolist(), best_scores.tolist(), weights, attention)
        step += 1
        if interrupt.active:
            for row in interrupt.dropped(sentences):
                finished[row], hyps[sentences[row]] = True, None
        keep = (~finished).nonzero(as_tuple=True)[0]
        if keep.numel() < active.numel():
            active, best, prev = active[keep], best[keep], prev[keep]
            encoded, state = encoded.select(keep), state.select(keep)
            space = select_space(space, keep)
            min_lens, max_lens, history = min_lens[keep], max_lens[keep], history[keep]
        history = torch.cat([history, best.unsqueeze(1)], dim=1)
        yield
    if attention is not None:
        for hyp, rows in zip(hyps, attention):
            if hyp is not None:
                hyp.attention = torch.stack(rows)
    return hyps


def extend_greedy(hyps: list[Hypothesis | None], sentences: list[int], tokens: list[int],
                  scores: list[float], weights: torch.Tensor,
                  attention: list[list[torch.Tensor]] | None) -> None:
    """Append each active sentence's chosen token (EOS only adds its score); weights:
    (active, src_len), whose rows go to ``attention`` (one list per sentence) when kept."""
    for row, (sent, token, score) in enumerate(zip(sentences, tokens, scores)):
        hyp = hyps[sent]
        assert hyp is not None, "a dropped sentence leaves the active batch"
        hyp.score += score
        if attention is not None:
            attention[sent].append(weights[row].cpu())
        if token != EOS_ID:
            hyp.tokens.append(token)
