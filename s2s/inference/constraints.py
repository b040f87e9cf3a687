"""Lexical constraints in beam search: target phrases a translation must contain (``include``,
e.g. glossary terms, s2s.inference.glossary) or must not contain (``avoid``).

Each hypothesis follows its progress through every phrase of its sentence with a shift-and
matcher (bitap): ``match[..., j]`` says whether its last j tokens are the phrase's first j, so
overlapping starts are never lost. An include phrase is met once it has been produced; the last
token of an avoid phrase is forbidden whenever the rest of it has just been produced. Given
the pieces that continue a word (``continuing_pieces``), none may follow a completed include
phrase, so a term stays a whole word ("guy" cannot become "guys", "lad" not "lady").

``constrained_beam_steps`` follows dynamic beam allocation (Post & Vilar, 2018; Sockeye's
lexical constraints). At every step the candidates are the best 2k extensions (as in
s2s.inference.beam), each beam's best token, and each beam's next token of every include
phrase it has not met. They fall into banks by the include tokens they have met (a phrase in
progress counts its matched prefix), and the beam takes them round-robin over the banks: the
best of every bank first, fuller banks first within a round. Hypotheses that advance a phrase
so keep a share of the beam without crowding out the best unconstrained ones. EOS is forbidden
until every include phrase is met, except at the maximum length, where search ends every
hypothesis; the n-best lists put hypotheses that meet all phrases first. A sentence without
phrases gets the candidates of plain beam search in the same order, so the same translation.

Search works on output-space positions (s2s.inference.step). Phrases are given in vocabulary
ids and mapped to each sentence's positions; with a shortlist, ``restriction_with`` adds the
include ids to the sentences' own candidates first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from s2s.constants import BOS_ID, EOS_ID, SPECIAL_IDS
from s2s.inference.beam import (
    NEG_INF,
    Candidates,
    collect_finished,
    search_finished,
    start_beams,
    top_candidates,
)
from s2s.inference.interrupt import NO_INTERRUPT, Interrupt, Steps, run_to_end
from s2s.inference.search import Hypothesis, SearchOptions, apply_constraints
from s2s.inference.step import StepModel, vocab_ids
from s2s.shortlist import Restriction, Shortlist

Phrase = tuple[int, ...]


@dataclass(frozen=True)
class Constraints:
    """One sentence's target phrases, as vocabulary id tuples: each of ``include`` must appear
    in its translation, none of ``avoid`` may."""

    include: tuple[Phrase, ...] = ()
    avoid: tuple[Phrase, ...] = ()

    def __post_init__(self) -> None:
        for phrase in (*self.include, *self.avoid):
            if not phrase or any(i in SPECIAL_IDS or i < 0 for i in phrase):
                raise ValueError(f"a phrase needs ordinary vocabulary ids, got {phrase}")

    def __bool__(self) -> bool:
        return bool(self.include or self.avoid)

    def satisfied(self, tokens: Sequence[int], continuing: torch.Tensor | None = None) -> bool:
        """Whether ``tokens`` contain every include phrase and no avoid phrase; with
        ``continuing`` ((V,) bool, ``continuing_pieces``) an include phrase counts only where
        no piece continuing its last word follows."""
        return (all(contains(tokens, p, continuing) for p in self.include)
                and not any(contains(tokens, p) for p in self.avoid))


def contains(tokens: Sequence[int], phrase: Phrase, continuing: torch.Tensor | None = None
             ) -> bool:
    """Whether ``phrase`` occurs in ``tokens`` as a contiguous run (not followed by a piece
    that ``continuing`` marks, when given)."""
    tokens, n = list(tokens), len(phrase)
    return any(tuple(tokens[i:i + n]) == phrase
               and (continuing is None or i + n == len(tokens)
                    or not bool(continuing[tokens[i + n]]))
               for i in range(len(tokens) - n + 1))


def continuing_pieces(pieces: Sequence[str]) -> torch.Tensor:
    """(V,) bool: the SentencePiece pieces (in id order) that continue the previous piece's
    word: no word-start mark and a letter or digit first."""
    return torch.tensor([not p.startswith("\u2581") and p[:1].isalnum() for p in pieces],
                        dtype=torch.bool)


def space_mask(mask: torch.Tensor, restriction: Restriction | None, sentences: int
               ) -> torch.Tensor:
    """A vocabulary mask (V,) in each sentence's output space: (sentences, C)."""
    if restriction is None:
        return mask.expand(sentences, -1)
    shared = mask[restriction.shared].expand(sentences, -1)
    own = mask[restriction.own] & restriction.own_valid
    return torch.cat([shared, own], dim=1)


def restriction_with(shortlist: Shortlist, src: torch.Tensor,
                     constraints: Sequence[Constraints]) -> Restriction:
    """``shortlist.restriction(src)`` with each sentence's include ids among its own
    candidates (the same layout: shared ids, then its own in id order, padding last)."""
    allowed = shortlist.allowed(src)
    for row, sentence in enumerate(constraints):
        ids = [i for phrase in sentence.include for i in phrase]
        allowed[row, ids] = True
    return shortlist.restriction_of(allowed, src.device)


def space_positions(restriction: Restriction | None, sentence: int) -> dict[int, int] | None:
    """Vocabulary id -> position in the sentence's output space (None: the whole vocabulary,
    where positions are the ids)."""
    if restriction is None:
        return None
    where = {i: p for p, i in enumerate(restriction.shared.tolist())}
    base = len(where)
    own = restriction.own[sentence].tolist()
    valid = restriction.own_valid[sentence].tolist()
    where.update({i: base + p for p, (i, ok) in enumerate(zip(own, valid)) if ok})
    return where


@dataclass
class Phrases:
    """Every active sentence's phrases in its output-space positions: tokens (S, C, L), -1 as
    padding; lengths (S, C), 0 where there is no phrase; avoid (S, C) bool."""

    tokens: torch.Tensor
    lengths: torch.Tensor
    avoid: torch.Tensor

    @property
    def include(self) -> torch.Tensor:
        """(S, C) bool: a real include phrase."""
        return (self.lengths > 0) & ~self.avoid

    def select(self, index: torch.Tensor) -> Phrases:
        """Keep/reorder sentences (index: (n,) long) or repeat them per row."""
        return Phrases(self.tokens[index], self.lengths[index], self.avoid[index])

    def per_row(self, rows: int) -> Phrases:
        """Each sentence's phrases repeated for its ``rows`` beams: (S * rows, ...)."""
        index = torch.arange(self.lengths.size(0), device=self.lengths.device)
        return self.select(index.repeat_interleave(rows))


def phrase_table(constraints: Sequence[Constraints], restriction: Restriction | None,
                 device: torch.device) -> Phrases:
    """The batch's phrases in output-space positions. An avoid phrase with a piece outside its
    sentence's space can never be produced and is left out; an include phrase must be inside
    (ValueError otherwise: see ``restriction_with``)."""
    rows: list[list[tuple[list[int], bool]]] = []
    for sentence, own in enumerate(constraints):
        where = space_positions(restriction, sentence)
        mapped = []
        for phrase, avoid in [(p, False) for p in own.include] + [(p, True) for p in own.avoid]:
            positions = list(phrase) if where is None else [where.get(i, -1) for i in phrase]
            if -1 not in positions:
                mapped.append((positions, avoid))
            elif not avoid:
                raise ValueError(f"include phrase {phrase} is outside sentence {sentence}'s "
                                 "output space")
        rows.append(mapped)
    count = max([1, *(len(r) for r in rows)])
    longest = max([1, *(len(p) for r in rows for p, _ in r)])
    tokens = torch.full((len(rows), count, longest), -1, dtype=torch.long)
    lengths = torch.zeros((len(rows), count), dtype=torch.long)
    avoids = torch.zeros((len(rows), count), dtype=torch.bool)
    for s, mapped in enumerate(rows):
        for c, (positions, is_avoid) in enumerate(mapped):
            tokens[s, c, : len(positions)] = torch.tensor(positions)
            lengths[s, c], avoids[s, c] = len(positions), is_avoid
    return Phrases(tokens.to(device), lengths.to(device), avoids.to(device))


@dataclass
class Progress:
    """Each row's progress through its sentence's phrases: match (rows, C, L + 1) bool,
    match[..., j]: the row's last j tokens are the phrase's first j (always true for j = 0);
    met (rows, C) bool: the phrase has been produced."""

    match: torch.Tensor
    met: torch.Tensor

    @classmethod
    def start(cls, phrases: Phrases) -> Progress:
        """One row per sentence, nothing produced yet."""
        sentences, count, longest = phrases.tokens.shape
        match = torch.zeros((sentences, count, longest + 1), dtype=torch.bool,
                            device=phrases.tokens.device)
        match[..., 0] = True
        return cls(match, torch.zeros((sentences, count), dtype=torch.bool,
                                      device=match.device))

    def select(self, rows: torch.Tensor) -> Progress:
        return Progress(self.match[rows], self.met[rows])


def ended(progress: Progress, phrases: Phrases) -> torch.Tensor:
    """(..., C) bool: the include phrases the row's last tokens complete."""
    end = progress.match.gather(-1, phrases.lengths.unsqueeze(-1)).squeeze(-1)
    return end & phrases.include


def fulfilled(progress: Progress, phrases: Phrases) -> torch.Tensor:
    """(..., C) bool: include phrases met, or just completed (met unless a piece continuing
    their last word follows)."""
    return progress.met | ended(progress, phrases)


def extend(progress: Progress, phrases: Phrases, tokens: torch.Tensor,
           glued: torch.Tensor | None = None) -> Progress:
    """Progress after appending ``tokens`` (...), for progress (..., C, L + 1) and phrases
    (..., C, L) of the same leading shape; glued (...) bool: whether each token continues the
    previous piece's word (None: none does). A just completed phrase is met unless its token
    is glued to it."""
    done = ended(progress, phrases)
    if glued is not None:
        done &= ~glued.unsqueeze(-1)
    hit = phrases.tokens == tokens[..., None, None]                   # (..., C, L)
    match = torch.cat([progress.match[..., :1], progress.match[..., :-1] & hit], dim=-1)
    return Progress(match, progress.met | done)


def matched_prefix(progress: Progress, phrases: Phrases) -> torch.Tensor:
    """(..., C) long: the longest prefix of each phrase, shorter than it, that ends the row."""
    j = torch.arange(progress.match.size(-1), device=progress.match.device)
    partial = progress.match & (j < phrases.lengths.unsqueeze(-1))
    return (partial * j).amax(-1)


def met_tokens(progress: Progress, phrases: Phrases) -> torch.Tensor:
    """(...,) long: include tokens met; a fulfilled phrase counts its length, one in progress
    its matched prefix."""
    per_phrase = torch.where(fulfilled(progress, phrases), phrases.lengths,
                             matched_prefix(progress, phrases))
    return (per_phrase * phrases.include).sum(-1)


def forbid(log_probs: torch.Tensor, progress: Progress, phrases: Phrases) -> None:
    """Mask log_probs (rows, V) in place: EOS for a row with an include phrase unmet, the last
    piece of an avoid phrase whose rest ends the row. progress, phrases: per row."""
    unmet = (phrases.include & ~fulfilled(progress, phrases)).any(-1)
    log_probs[unmet, EOS_ID] = NEG_INF
    last = (phrases.lengths - 1).clamp(min=0).unsqueeze(-1)
    armed = progress.match.gather(-1, last).squeeze(-1) & phrases.avoid & (phrases.lengths > 0)
    rows, phrase = armed.nonzero(as_tuple=True)
    log_probs[rows, phrases.tokens.gather(-1, last).squeeze(-1)[rows, phrase]] = NEG_INF


def keep_words_whole(log_probs: torch.Tensor, progress: Progress, phrases: Phrases,
                     continuing: torch.Tensor, rows: int) -> None:
    """Mask log_probs (S * rows, V) in place: right after an include phrase not met before,
    no piece that continues its word (continuing: (S, V) bool), unless the piece advances
    another include phrase in progress ("hound" then "s" of "hounds"). progress, phrases: per
    row."""
    pending = (ended(progress, phrases) & ~progress.met).any(-1)
    if not bool(pending.any()):
        return
    index = pending.nonzero(as_tuple=True)[0]
    glue = continuing[index // rows, : log_probs.size(1)].clone()
    progress, phrases = progress.select(index), phrases.select(index)
    tokens, valid = advancing_tokens(progress, phrases)
    valid &= matched_prefix(progress, phrases)[:, : valid.size(1)] > 0
    row, phrase = valid.nonzero(as_tuple=True)
    glue[row, tokens[row, phrase]] = False
    log_probs[index] = log_probs[index].masked_fill(glue, NEG_INF)


def advancing_tokens(progress: Progress, phrases: Phrases) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's next piece of every include phrase it has not fulfilled: tokens (rows, I)
    (0 where there is none), valid (rows, I) bool, over the first I phrases, where a sentence
    keeps its include phrases (at most I), before its avoid phrases."""
    count = int(phrases.include.sum(1).max()) if phrases.include.numel() else 0
    prefix = matched_prefix(progress, phrases)[:, :count].unsqueeze(-1)
    tokens = phrases.tokens[:, :count].gather(-1, prefix).squeeze(-1)
    valid = (phrases.include & ~fulfilled(progress, phrases))[:, :count]
    return tokens.clamp(min=0), valid


def drop_repeats(scores: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """scores (S, N) with -inf for a candidate whose key (S, N) an earlier one has."""
    n = keys.size(1)
    earlier = torch.ones((n, n), dtype=torch.bool, device=keys.device).tril(-1)
    repeat = ((keys.unsqueeze(2) == keys.unsqueeze(1)) & earlier).any(2)
    return scores.masked_fill(repeat, NEG_INF)


def allocation_order(scores: torch.Tensor, banks: torch.Tensor) -> torch.Tensor:
    """scores, banks (S, N) -> (S, N) candidate indices in the order the beam takes them:
    round-robin over banks, each bank best first, fuller banks first within a round; -inf
    candidates last. The order of a sentence's candidates depends on them alone."""
    n = scores.size(1)
    by_score = scores.argsort(dim=1, descending=True, stable=True)
    place = torch.empty_like(by_score).scatter_(
        1, by_score, torch.arange(n, device=scores.device).expand_as(by_score))
    valid = scores > NEG_INF
    same_bank = (banks.unsqueeze(2) == banks.unsqueeze(1)) & valid.unsqueeze(1)
    rank = (same_bank & (place.unsqueeze(1) < place.unsqueeze(2))).sum(2)   # within its bank
    top = int(banks.max()) + 1
    key = (rank * top + (top - 1 - banks)).masked_fill(~valid, n * top + top)
    return key.argsort(dim=1, stable=True)


def constrained_candidates(beam_scores: torch.Tensor, log_probs: torch.Tensor, k: int,
                           progress: Progress, phrases: Phrases,
                           continuing: torch.Tensor | None = None) -> Candidates:
    """beam_scores (S, R); log_probs (S * R, V), masked; progress, phrases: per row;
    continuing: (S, V) bool or None (see ``extend``). The candidates of dynamic beam
    allocation in the order the beam takes them: (S, N) each."""
    sentences, rows = beam_scores.shape
    top = top_candidates(beam_scores, log_probs, k)
    best_scores, best_tokens = log_probs.max(dim=1)
    advance, valid = advancing_tokens(progress, phrases)
    count = advance.size(1)
    advance_scores = log_probs.gather(1, advance).masked_fill(~valid, NEG_INF)
    beam_ids = torch.arange(rows, device=log_probs.device).expand(sentences, rows)
    scores = torch.cat([top.scores, beam_scores + best_scores.view(sentences, rows),
                        (beam_scores.unsqueeze(2) + advance_scores.view(sentences, rows, count)
                         ).view(sentences, rows * count)], dim=1)
    beams = torch.cat([top.beams, beam_ids,
                       beam_ids.repeat_interleave(count, dim=1)], dim=1)
    tokens = torch.cat([top.tokens, best_tokens.view(sentences, rows),
                        advance.view(sentences, rows * count)], dim=1)
    scores = drop_repeats(scores, beams * log_probs.size(1) + tokens)
    row = beams + torch.arange(sentences, device=beams.device).unsqueeze(1) * rows
    glued = None if continuing is None else continuing.gather(1, tokens)
    banks = met_tokens(extend(progress.select(row), phrases.select(row), tokens, glued),
                       phrases.select(row))
    order = allocation_order(scores, banks)
    return Candidates(scores.gather(1, order), beams.gather(1, order), tokens.gather(1, order))


def continuations_in_order(candidates: Candidates, k: int) -> Candidates:
    """The first k candidates per sentence that do not end in EOS, in order: (S, k) each."""
    n = candidates.tokens.size(1)
    place = torch.arange(n, device=candidates.tokens.device).expand_as(candidates.tokens)
    place = place.masked_fill(candidates.tokens == EOS_ID, n)
    order = place.argsort(dim=1, stable=True)[:, : min(k, n)]
    return Candidates(candidates.scores.gather(1, order), candidates.beams.gather(1, order),
                      candidates.tokens.gather(1, order))


def chosen_rows(chosen: Candidates, rows_before: int) -> torch.Tensor:
    """The flat rows (S * k,) the chosen candidates extend."""
    offsets = torch.arange(chosen.beams.size(0), device=chosen.beams.device).unsqueeze(1)
    return (chosen.beams + offsets * rows_before).view(-1)


def ranked(hyps: list[Hypothesis], constraints: Constraints, n_best: int,
           continuing: torch.Tensor | None = None) -> list[Hypothesis]:
    """The n best: hypotheses meeting the constraints first, each part by normalized score."""
    return sorted(hyps, key=lambda h: (not constraints.satisfied(h.tokens, continuing),
                                       -h.rank_score))[:n_best]


def constrained_beam_search(model: StepModel, src: torch.Tensor, src_lens: torch.Tensor,
                            options: SearchOptions, constraints: Sequence[Constraints],
                            restriction: Restriction | None = None,
                            continuing: torch.Tensor | None = None) -> list[list[Hypothesis]]:
    """``constrained_beam_steps`` run to its end."""
    return run_to_end(constrained_beam_steps(model, src, src_lens, options, constraints,
                                             restriction, continuing=continuing))


@torch.no_grad()
def constrained_beam_steps(model: StepModel, src: torch.Tensor, src_lens: torch.Tensor,
                           options: SearchOptions, constraints: Sequence[Constraints],
                           restriction: Restriction | None = None,
                           interrupt: Interrupt = NO_INTERRUPT,
                           continuing: torch.Tensor | None = None,
                           n_bests: Sequence[int] | None = None
                           ) -> Steps[list[list[Hypothesis]]]:
    """Beam search (s2s.inference.beam.beam_steps) under each row's ``constraints``; src:
    (batch, src_len); src_lens: (batch,); continuing: (V,) bool, the pieces that may not
    follow an include phrase (``continuing_pieces``; None: any may). A beam size of 1 runs
    this search with one beam (it takes a phrase as soon as it may). Returns per row its
    n-best hypotheses (n_bests, default options.n_best), those meeting the constraints first."""
    k = options.beam_size
    wanted = list(n_bests) if n_bests is not None else [options.n_best] * src.size(0)
    beams = start_beams(model, src, src_lens, options, restriction)
    phrases = phrase_table(constraints, restriction, src.device)
    progress = Progress.start(phrases)
    pieces_continuing, continuing = continuing, None
    if pieces_continuing is not None:
        continuing = space_mask(pieces_continuing.to(src.device), restriction, src.size(0))
    finished: list[list[Hypothesis]] = [[] for _ in range(src.size(0))]
    prev = torch.full((src.size(0),), BOS_ID, dtype=torch.long, device=src.device)
    step = 0
    while beams.sentence_ids:
        log_probs, state, weights = model.decode_step(prev, beams.encoded, beams.state,
                                                      beams.space)
        row_phrases = phrases.per_row(beams.rows)
        forbid(log_probs, progress, row_phrases)
        if continuing is not None:
            keep_words_whole(log_probs, progress, row_phrases, continuing, beams.rows)
        apply_constraints(log_probs, step, beams.min_lens, beams.max_lens, beams.history, options)
        attention = beams.attention
        if attention is not None:
            attention = torch.cat([attention, weights.float().unsqueeze(1)], dim=1)
        candidates = constrained_candidates(beams.scores, log_probs, k, progress, row_phrases,
                                            continuing)
        collect_finished(candidates, k, beams, attention, finished, options.length_penalty)
        chosen = continuations_in_order(candidates, k)
        rows = chosen_rows(chosen, beams.rows)
        glued = None if continuing is None else continuing.gather(1, chosen.tokens).view(-1)
        progress = extend(progress.select(rows), row_phrases.select(rows), chosen.tokens.view(-1),
                          glued)
        beams.attention = attention
        beams.advance(chosen, state, weights)
        step += 1
        done = search_finished(chosen.scores.amax(1), beams.max_lens[::beams.rows], step,
                               [finished[s] for s in beams.sentence_ids], options,
                               [wanted[s] for s in beams.sentence_ids])
        if interrupt.active:
            for position in interrupt.dropped(beams.sentence_ids):
                done[position], finished[beams.sentence_ids[position]] = True, []
        if bool(done.any()):
            keep = (~done).nonzero(as_tuple=True)[0]
            progress = progress.select(kept_rows(keep, beams.rows))
            beams.keep(keep)
            phrases = phrases.select(keep)
            continuing = None if continuing is None else continuing[keep]
        prev = vocab_ids(beams.space, beams.history[:, -1], beams.rows)
        yield
    return [ranked(hyps, sentence, n, pieces_continuing)
            for hyps, sentence, n in zip(finished, constraints, wanted)]


def kept_rows(sentences: torch.Tensor, rows: int) -> torch.Tensor:
    """The flat rows (n * rows,) of the kept active sentences (n,)."""
    offsets = torch.arange(rows, device=sentences.device)
    return (sentences.unsqueeze(1) * rows + offsets).view(-1)
