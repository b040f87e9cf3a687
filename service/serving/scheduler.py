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
thousand queued sentences and a caller with one both get a row in the next batch. A caller's
own requests are served in the order they came, an admitted file counting as one request whose
chunks keep its turn (first come, first served keeps the slowest of its files the least late;
measured against shortest-first and turns by request under mixed load); its small requests do
not wait for its files because they run in the batcher's express lane beside a long batch.
Admitted files are first come, first served across callers too: of the callers whose next
request is a file, only the one with the earliest file takes turns, the others fill what rows
are left (each file's admission counted the files admitted before it whole).
Across groups, the group whose oldest sentence has waited longest goes first among those due,
and every group falls due within ``max_delay_s`` of its oldest sentence, so no kind of request
waits for another kind to stop. A caller may hold at most ``caller_share`` of the queue (429
with Retry-After beyond it), and at most ``max_groups`` option groups are live at once, so
requests that each bring unique options cannot turn the queue into batches of one.

So a new request of ``n`` sentences waits for at most ``min(r, n)`` sentences of each other
caller's request (``r`` its queued sentences: turns share the batches) and for all of its own
caller's queued requests; ``FairQueue.delay_ahead`` counts that for the batcher's admission.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from itertools import chain, islice

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
    enqueued: float            # loop time (an admitted file's chunks: the file's admission)
    options: TranslateOptions  # what its request asked for
    caller: str
    request: int = 0           # the submit() it came with, or its admitted file (served in order)
    express: bool = False      # its request is small (may run beside a long batch)
    file_part: bool = False    # it belongs to an admitted file
    queued: bool = True

    @property
    def flow(self) -> tuple[str, int]:
        return self.caller, self.request

    @property
    def n_tokens(self) -> int:
        return len(self.source)


@dataclass
class Group:
    """The queued sentences of one batch key, a line per request (caller, submit), lines in
    the order of their request numbers (an emptied line is dropped; an admitted file's chunks
    share the file's number, so a later chunk's line goes back to the file's place)."""

    key: TranslateOptions
    lines: dict[tuple[str, int], deque[Item]] = field(default_factory=dict)

    def line_of(self, flow: tuple[str, int]) -> deque[Item]:
        """The line of ``flow``; a new one takes its request's place among the lines (an
        admitted file's later chunk comes back with the file's earlier request number)."""
        line = self.lines.get(flow)
        if line is None:
            later = self.lines and next(reversed(self.lines))[1] > flow[1]
            line = self.lines[flow] = deque()
            if later:
                self.lines = dict(sorted(self.lines.items(), key=lambda entry: entry[0][1]))
        return line

    def prune(self) -> None:
        """Drop sentences that left the queue (cancelled) from the front of every line."""
        for flow in list(self.lines):
            line = self.lines[flow]
            while line and not line[0].queued:
                line.popleft()
            if not line:
                del self.lines[flow]

    def oldest(self) -> float:
        """Arrival time of the group's oldest live sentence (call ``prune`` first)."""
        return min(line[0].enqueued for line in self.lines.values())

    def in_turn(self, only_express: bool = False) -> Iterator[Item]:
        """Live sentences, one per caller in turn (callers by their oldest sentence), each
        caller's requests in the order they came; of the callers whose oldest request is a
        file, only the earliest takes turns and the others follow, in order (files first
        come, first served); ``only_express``: sentences of small requests only."""
        by_caller: dict[str, list[deque[Item]]] = {}
        for (caller, _), line in self.lines.items():   # requests in the order they came
            if not only_express or line[0].express:
                by_caller.setdefault(caller, []).append(line)
        if len(by_caller) == 1:
            (lines,) = by_caller.values()
            return chain.from_iterable(live(line) for line in lines)
        streams = [chain.from_iterable(live(line) for line in lines)
                   for lines in by_caller.values()]
        files = [i for i, lines in enumerate(by_caller.values()) if lines[0][0].file_part]
        waiting = files[1:]           # files after the earliest one wait for it, in order
        return chain(interleave([s for i, s in enumerate(streams) if i not in waiting]),
                     *(streams[i] for i in waiting))


def live(line: deque[Item]) -> Iterator[Item]:
    """The line's queued items (lazily: consume before the queue changes)."""
    return (item for item in line if item.queued)


def interleave(streams: list[Iterator[Item]]) -> Iterator[Item]:
    """One item of each stream in turn until all are empty."""
    active = deque(streams)
    while active:
        stream = active.popleft()
        item = next(stream, None)
        if item is not None:
            yield item
            active.append(stream)


def plan(group: Group, budget: BatchBudget, only_express: bool = False
         ) -> tuple[list[Item], bool]:
    """The sentences of the group's next batch (taken in turn, cut by the library's one
    batching rule; ``only_express``: of small requests only) and whether it is full."""
    candidates = list(islice(group.in_turn(only_express), budget.most_rows + 1))
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
        self.per_flow: dict[tuple[str, int], int] = {}
        self.express_flows: set[tuple[str, int]] = set()
        self.file_flows: set[tuple[str, int]] = set()
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
            group.line_of(item.flow).append(item)
            self.per_caller[item.caller] = self.per_caller.get(item.caller, 0) + 1
            self.per_flow[item.flow] = self.per_flow.get(item.flow, 0) + 1
            if item.express:
                self.express_flows.add(item.flow)
            if item.file_part:
                self.file_flows.add(item.flow)
        self._set_depth(self.depth + len(items))

    def leave(self, item: Item) -> None:
        """A queued sentence leaves the queue (taken into a batch, or cancelled)."""
        item.queued = False
        left = self.per_caller[item.caller] - 1
        if left:
            self.per_caller[item.caller] = left
        else:
            del self.per_caller[item.caller]
        left = self.per_flow[item.flow] - 1
        if left:
            self.per_flow[item.flow] = left
        else:
            del self.per_flow[item.flow]
            self.express_flows.discard(item.flow)
            self.file_flows.discard(item.flow)
        self._set_depth(self.depth - 1)

    def delay_ahead(self, caller: str, count: int, express: bool = False,
                    file: bool = False) -> int:
        """At most how many queued sentences are served before a new request of ``count``
        sentences of ``caller`` is done: ``count`` of each other caller's request (turns
        share the batches) and all of its own (they came first), and for a ``file`` all of
        the files queued (first come, first served); for an ``express`` request only those
        of small requests (it runs beside the others)."""
        return sum(queued if flow[0] == caller or (file and flow in self.file_flows)
                   else min(queued, count)
                   for flow, queued in self.per_flow.items()
                   if not express or flow in self.express_flows)

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
