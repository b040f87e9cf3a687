"""The fair queue of one model's batcher: which waiting sentences form the next batch.

Sentences wait in groups, one per *batch key*: the decoding options that change what search
computes (beam size, length penalty, length limits, ...). Options that only change what is
returned (attention, the number of candidates) are not part of the key, so a plain request,
an HTML request (it asks for attention), an ``alternatives`` request and the web page's request
share batches; the batch computes the superset, search stops each sentence by its own n-best
size (so it translates as it would alone), and each gets back what its request asked for
(``trim``).

Within a group every caller (API key, else client address) has its own line, and a batch takes
one sentence from each caller in turn, the caller waiting longest first: a caller with a
thousand queued sentences and a caller with one both get a row in the next batch. Across
groups, the group whose oldest sentence has waited longest goes first among those due, and
every group falls due within ``max_delay_s`` of its oldest sentence, so no kind of request
waits for another kind to stop. A caller may hold at most ``caller_share`` of the queue (429
with Retry-After beyond it), and at most ``max_groups`` option groups are live at once, so
requests that each bring unique options cannot turn the queue into batches of one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from itertools import islice

from s2s.batching import BatchBudget, take_batch
from s2s.inference.translator import Source, TranslateOptions, Translation


def batch_key(options: TranslateOptions) -> TranslateOptions:
    """The options a batch runs with, minus what only changes what is returned (attention, the
    number of candidates: search stops each sentence by its own n-best size)."""
    return replace(options, search=replace(options.search, return_attention=False, n_best=1))


def superset(key: TranslateOptions, wanted: list[TranslateOptions]) -> TranslateOptions:
    """The options one batch of ``key`` runs with so every request gets what it asked for."""
    attention = any(options.search.return_attention for options in wanted)
    n_best = max(options.search.n_best for options in wanted)
    return replace(key, search=replace(key.search, return_attention=attention, n_best=n_best))


def trim(result: Translation, options: TranslateOptions) -> Translation:
    """A batch result cut down to what a request with ``options`` asked for."""
    if options.search.return_attention:
        return result
    return replace(result, attention=None,
                   alternatives=[replace(c, attention=None) for c in result.alternatives])


@dataclass(eq=False)
class Item:
    """One queued sentence."""

    source: Source
    prepared_by: object        # the translator whose prepare() made ``source``
    future: asyncio.Future
    enqueued: float            # loop time
    options: TranslateOptions  # what its request asked for
    caller: str
    queued: bool = True

    @property
    def n_tokens(self) -> int:
        return len(self.source)


@dataclass
class Group:
    """The queued sentences of one batch key, a line per caller (oldest first)."""

    key: TranslateOptions
    lines: dict[str, deque[Item]] = field(default_factory=dict)

    def prune(self) -> None:
        """Drop sentences that left the queue (cancelled) from the front of every line."""
        for caller in list(self.lines):
            line = self.lines[caller]
            while line and not line[0].queued:
                line.popleft()
            if not line:
                del self.lines[caller]

    def oldest(self) -> float:
        """Arrival time of the group's oldest live sentence (call ``prune`` first)."""
        return min(line[0].enqueued for line in self.lines.values())

    def in_turn(self) -> Iterator[Item]:
        """Live sentences, one per caller in turn, callers by their oldest sentence."""
        lines = sorted(self.lines.values(), key=lambda line: line[0].enqueued)
        positions = [0] * len(lines)
        while True:
            progressed = False
            for number, line in enumerate(lines):
                while positions[number] < len(line) and not line[positions[number]].queued:
                    positions[number] += 1
                if positions[number] < len(line):
                    yield line[positions[number]]
                    positions[number] += 1
                    progressed = True
            if not progressed:
                return


def plan(group: Group, budget: BatchBudget) -> tuple[list[Item], bool]:
    """The sentences of the group's next batch (taken in turn, cut by the library's one
    batching rule) and whether it is full."""
    candidates = list(islice(group.in_turn(), budget.most_rows + 1))
    end, full = take_batch(candidates, lambda item: item.n_tokens, budget)
    return candidates[:end], full


class FairQueue:
    """Queued sentences by batch key and caller, with per-caller and group bounds."""

    def __init__(self, capacity: int, caller_share: float, max_groups: int,
                 on_depth: Callable[[int], None]):
        self.capacity = capacity
        self.caller_limit = max(1, int(capacity * caller_share))
        self.max_groups = max_groups
        self.groups: dict[TranslateOptions, Group] = {}
        self.depth = 0
        self.per_caller: dict[str, int] = {}
        self._on_depth = on_depth

    def refusal(self, caller: str, count: int, key: TranslateOptions) -> str | None:
        """Why ``count`` more sentences of ``caller`` under ``key`` do not fit, or None."""
        if self.depth + count > self.capacity:
            return "queue"
        if self.per_caller.get(caller, 0) + count > self.caller_limit:
            return "caller"
        if key not in self.groups and len(self.live_groups()) >= self.max_groups:
            return "groups"
        return None

    def add(self, items: list[Item]) -> None:
        for item in items:
            group = self.groups.setdefault(batch_key(item.options), Group(batch_key(item.options)))
            group.lines.setdefault(item.caller, deque()).append(item)
            self.per_caller[item.caller] = self.per_caller.get(item.caller, 0) + 1
        self._set_depth(self.depth + len(items))

    def leave(self, item: Item) -> None:
        """A queued sentence leaves the queue (taken into a batch, or cancelled)."""
        item.queued = False
        left = self.per_caller[item.caller] - 1
        if left:
            self.per_caller[item.caller] = left
        else:
            del self.per_caller[item.caller]
        self._set_depth(self.depth - 1)

    def live_groups(self) -> list[Group]:
        """Groups with queued sentences (emptied ones are dropped)."""
        for key in list(self.groups):
            self.groups[key].prune()
            if not self.groups[key].lines:
                del self.groups[key]
        return list(self.groups.values())

    def take(self, items: list[Item]) -> list[Item]:
        for item in items:
            self.leave(item)
        return items

    def all_items(self) -> Iterator[Item]:
        for group in self.groups.values():
            for line in group.lines.values():
                yield from line

    def _set_depth(self, depth: int) -> None:
        self.depth = depth
        self._on_depth(depth)
