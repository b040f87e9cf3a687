"""Dynamic batching for one model: sentences of concurrent requests share model batches.

``submit`` puts a request's prepared sentences (``Source``s from the current translator's
``prepare``: tokenized and length-checked once) into a bounded queue (capacity counted in
sentences; a request that does not fit is refused whole with QueueFull) and returns one future
per sentence. One worker task forms batches from the fair queue (serving.scheduler: sentences of
one batch key, one from each caller in turn, a caller's requests in order; the group waiting
longest first once a batch is due; per-caller and option-group bounds), within a ``BatchBudget``
of ``max_sentences`` and ``max_tokens`` (rows x longest source, the rule of s2s.batching, which
the translator applies too, so it never splits the batch again), as soon as a batch is full or
once no sentence arrived for ``max_wait_s``, counted from the later of its first item's arrival
and the end of the previous batch, but at most ``max_delay_s`` after that. Counting from the end
of the previous batch lets the clients just answered send their next sentences into the same
batch as those that queued meanwhile, and waiting while sentences keep arriving lets a whole
wave of answered clients come back, so concurrent closed-loop clients share one full batch
instead of splitting into groups that alternate. A batch starts at once, without waiting, when
as many sentences are queued as the last wave had (the last batch's sentences plus those queued
while it ran): then everyone who was waiting is back, and a lone client is not held up by
``max_wait_s`` on every request. The batch, sorted by length, runs in the torch thread
(serving.torch_worker: never on the event loop, a slice at a time alternating with the other
running batches); each future gets exactly its sentence's result. While a batch holding
sentences of a large request (a file's wave: more than ``express_sentences``) runs, small
requests do not wait for it: one *express* batch of their sentences may run beside it, the two
alternating step slices, so a one-sentence request answers in about twice its own batch time
instead of after the long one. Admission (``max_queue_wait_s``) counts, for each new request,
the queued sentences served before it is done (``FairQueue.delay_ahead``) at the rate recent
full batches sustained (what a backlog gets): the bulk of a backlog is refused at once (503)
while short requests still fit. A file is admitted whole (``admit_file``, and before it is
parsed ``check_upload``); under overload (``offered``: more sentences ask for the queue than
the model sustains) it must be done within the limit, the rest of earlier files counted
(``FileReservation``); its chunks keep the turn it was admitted with (``QueuePlace``), so what
arrives later does not slip in between them. A sentence prepared by a translator that a reload
has since replaced is prepared again by the new one. Cancelled futures (deadline, client gone)
are skipped when batches are formed, and a running batch drops them at its next decoding step,
so their work stops; a batch running longer than ``max_batch_seconds`` stops and its sentences
fail with DecodingInterrupted. CUDA out-of-memory splits a batch in halves and retries, down to
single sentences.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Protocol

import torch

from s2s.batching import BatchBudget
from s2s.inference.glossary import Glossary
from s2s.inference.interrupt import DecodingInterrupted, Interrupt, Steps
from s2s.inference.translator import Source, TranslateOptions, Translation
from service.errors import CallerQueueFull, NotReady, QueueFull, TooLarge
from service.serving.metrics import Metrics
from service.serving.offered import FileDensity, OfferedRate
from service.serving.scheduler import FairQueue, Group, Item, batch_key, plan, superset, trim
from service.serving.torch_worker import TorchWorker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueuePlace:
    """An admitted file's turn in its batcher's queue: the request number and arrival time it
    was given when admitted. Each of its chunks is queued with them, so a later chunk keeps
    the file's turn instead of queueing behind what arrived since (first come, first served by
    file, which is what the file's admission estimate counted)."""

    owner: Batcher    # the one that gave it (another batcher, after a reload, ignores it)
    request: int
    since: float      # loop time


@dataclass(frozen=True)
class Admission:
    """How a request's sentences enter the queue. ``check``: refused (503) when the queue
    ahead would delay them beyond max_queue_wait_s (False: the rest of a request already
    admitted, never refused halfway). ``express``: may run in the express lane when small
    (False: a file's chunks, batch work that keeps the lane for interactive requests).
    ``file_part``: the sentences are a chunk of an admitted file (files are served first
    come, first served across callers). ``place``: the turn of the admitted file the
    sentences belong to (None: a new turn)."""

    check: bool = True
    express: bool = True
    file_part: bool = False
    place: QueuePlace | None = None


NEW = Admission()
CONTINUED = Admission(check=False)
FILE_PART = Admission(check=False, express=False, file_part=True)


class FileReservation:
    """The sentences of an admitted file that are not queued yet (its chunks are queued one at
    a time): they count ahead of every file admitted after it (Batcher.check_wait); ``place``
    is the file's turn, which its chunks keep."""

    def __init__(self, batcher: Batcher, count: int, place: QueuePlace):
        self._batcher, self._left = batcher, count
        self.place = place
        batcher.reserved += count

    def queued(self, count: int) -> None:
        """``count`` of its sentences are about to be queued (negative: given back)."""
        count = min(count, self._left)
        self._left -= count
        self._batcher.reserved -= count

    def close(self) -> None:
        self.queued(self._left)


def steps_halving_on_oom(translate: Callable[[list[int]], Steps[list[Translation]]],
                         indices: list[int], on_split: Callable[[], None] | None = None
                         ) -> Steps[list[Translation | Exception]]:
    """translate(indices) (a step generator over those sources of the batch) with CUDA
    out-of-memory handled by halving; returns one result per index, in order: a Translation,
    or the exception for a single source that still fails."""
    try:
        results: list[Translation | Exception] = list((yield from translate(indices)))
    except torch.cuda.OutOfMemoryError as error:
        if len(indices) == 1:
            return [error]
        if on_split is not None:
            on_split()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        half = len(indices) // 2
        first = yield from steps_halving_on_oom(translate, indices[:half], on_split)
        second = yield from steps_halving_on_oom(translate, indices[half:], on_split)
        return first + second
    if len(results) != len(indices):
        raise RuntimeError(f"translator returned {len(results)} results for {len(indices)} "
                           "inputs")
    return results


def current_sources(translator: Translating, items: list[Item]) -> list[Source | Exception]:
    """Each item's source, prepared again where a reload replaced the translator that
    prepared it (the exception where the new model refuses it)."""
    sources: list[Source | Exception] = []
    for item in items:
        glossary = getattr(item.source, "glossary", None)   # pipeline.GlossarySource
        try:
            sources.append(item.source if item.prepared_by is translator
                           else translator.prepare([item.source.text],
                                                   *([glossary] if glossary else []))[0])
        except ValueError as error:   # the new model's length limit
            sources.append(error)
    return sources


def translate_batch_steps(translator: Translating, items: list[Item],
                          options: TranslateOptions, budget: BatchBudget, max_seconds: float,
                          on_split: Callable[[], None]
                          ) -> Steps[list[Translation | Exception]]:
    """In the torch thread, a step at a time: translate the items; one result or exception per
    item. Items whose futures are done (cancelled: deadline, client gone) leave the batch at
    the next step; past ``max_seconds`` the batch stops with DecodingInterrupted."""
    sources = current_sources(translator, items)
    prepared = {i: source for i, source in enumerate(sources)
                if not isinstance(source, Exception)}
    usable = list(prepared)
    interrupt = Interrupt(wanted=lambda i: not items[i].future.done(),
                          deadline=time.monotonic() + max_seconds)

    def translate(indices: list[int]) -> Steps[list[Translation]]:
        return translator.translation_steps([prepared[i] for i in indices],
                                            replace(options, budget=budget),
                                            interrupt.subset(indices),
                                            [items[i].options.search.n_best for i in indices])

    translated: list[Translation | Exception] = []
    if usable:
        translated = yield from steps_halving_on_oom(translate, usable, on_split)
    by_index = dict(zip(usable, translated))
    return [source if isinstance(source, Exception) else by_index[i]
            for i, source in enumerate(sources)]


class Translating(Protocol):
    """What a batcher needs of a model: the Translator's preparation and its step interface."""

    def prepare(self, texts: Sequence[str], glossary: Glossary | None = None
                ) -> list[Source]: ...

    def translation_steps(self, sources: Sequence[Source], options: TranslateOptions | None = None,
                          interrupt: Interrupt = ..., n_bests: Sequence[int] | None = None
                          ) -> Steps[list[Translation]]: ...

    def translate(self, texts: Sequence[str], options: TranslateOptions | None = None
                  ) -> list[Translation]: ...


class Batcher:
    def __init__(self, name: str, translator: Translating, worker: TorchWorker, *,
                 max_tokens: int, max_sentences: int, max_wait_s: float, capacity: int,
                 metrics: Metrics | None = None, max_delay_s: float | None = None,
                 max_batch_seconds: float = 60.0, caller_share: float = 1.0,
                 max_groups: int = 64, retry_after_s: int = 1,
                 max_queue_wait_s: float | None = None, express_sentences: int = 0):
        """worker: the torch thread the batches run in (shared by all models);
        max_queue_wait_s: refuse a request (503) when the queue ahead of it would delay it by
        more than this at the recent rate (None: only the capacity bounds the queue);
        express_sentences: requests of at most this many sentences may run in a batch beside
        a long one (0: one batch at a time)."""
        self.name = name
        self.translator = translator          # swapped by a reload; read once per batch
        self.budget = BatchBudget(max_tokens, max_sentences)
        self.max_wait_s = max_wait_s
        self.max_delay_s = max_wait_s if max_delay_s is None else max(max_wait_s, max_delay_s)
        self.metrics = metrics or Metrics()
        self.queue = FairQueue(capacity, caller_share, max_groups, self._report_depth)
        self.retry_after_s = retry_after_s
        self.max_queue_wait_s = max_queue_wait_s
        self.express_sentences = express_sentences
        self._served = [0.0, 0.0]   # decayed sums of sentences done and busy seconds
        self._served_full = [0.0, 0.0]   # the same, of main batches at least half full
        self._busy_mark = 0.0       # loop time busy seconds are counted up to
        self._pending = [0.0, 0.0]  # express batches' share, counted with the next main one
        self.reserved = 0  # admitted files' sentences not queued yet (FileReservation)
        self.offered = OfferedRate()  # sentences asking to be queued, admitted or not
        self.file_density = FileDensity()  # sentences per uploaded byte of recent files
        self._requests = 0          # submit() calls so far: each request's id
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task | None = None
        self._free_since = float("-inf")   # loop time the last batch finished
        self._wave = math.inf   # sentences the last batch had plus those queued meanwhile
        self._last_arrival = float("-inf")  # loop time the last sentence was queued
        self._lanes: dict[asyncio.Task, list[Item]] = {}   # running batches and their items
        self.worker = worker
        self.max_batch_seconds = max_batch_seconds

    @property
    def capacity(self) -> int:
        return self.queue.capacity

    @property
    def depth(self) -> int:
        """Sentences waiting (not yet in a batch)."""
        return self.queue.depth

    def _report_depth(self, depth: int) -> None:
        self.metrics.queue_depth.labels(self.name).set(depth)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name=f"batcher-{self.name}")

    async def close(self, drain: bool = True) -> None:
        """Stop taking work; finish everything queued (``drain``) or cancel it (queued and
        running sentences: a running batch stops at its next step); then stop."""
        self._closing = True
        if not drain:
            self.cancel_all()
        self._wake.set()
        if self._task is not None:
            await self._task

    def cancel_all(self) -> None:
        """Cancel every queued sentence and every sentence of the running batch."""
        for item in list(self.queue.all_items()):
            item.future.cancel()
        for items in self._lanes.values():
            for item in items:
                item.future.cancel()

    def submit(self, sources: Sequence[Source], options: TranslateOptions,
               caller: str = "", admission: Admission = NEW) -> list[asyncio.Future]:
        """Queue sentences that the current translator prepared (non-blank) for ``caller``
        (its API key or address); one future per sentence."""
        if self._closing:
            raise NotReady(f"model {self.name} is shutting down")
        if len(sources) > self.capacity:
            raise TooLarge(f"the request has {len(sources)} sentences; at most {self.capacity} "
                           "fit in the queue (queue_capacity)")
        self._check_room(caller, len(sources), batch_key(options))
        express = admission.express and self._is_small(len(sources))
        if admission.check:
            self.check_wait(caller, len(sources), express)
        loop = asyncio.get_running_loop()
        now = loop.time()
        place = admission.place
        if place is None or place.owner is not self:
            self._requests += 1
            place = QueuePlace(self, self._requests, now)
        items = [Item(source, self.translator, loop.create_future(), place.since, options,
                      caller, place.request, express, admission.file_part) for source in sources]
        for item in items:
            item.future.add_done_callback(partial(self._forget, item))
        self.queue.add(items)
        self._last_arrival = now
        self._wake.set()
        return [item.future for item in items]

    def _check_room(self, caller: str, count: int, key: TranslateOptions) -> None:
        why = self.queue.refusal(caller, count, key)
        if why == "queue":
            raise QueueFull(f"the queue of {self.name} is full ({self.depth} sentences "
                            "waiting); retry later")
        if why == "caller":
            raise CallerQueueFull(
                f"you have {self.queue.per_caller.get(caller, 0)} sentences waiting for "
                f"{self.name}; a caller may hold at most {self.queue.caller_limit} "
                "(caller_queue_share of queue_capacity); retry when they are done",
                headers={"Retry-After": str(self.retry_after_s)})
        if why == "groups":
            raise QueueFull(f"{self.queue.max_groups} different sets of decoding options are "
                            f"waiting for {self.name} (max_option_groups); retry later")

    @property
    def rate(self) -> float | None:
        """Sentences per second that recent batches sustained: those at least half full
        (what a backlog gets) once there are any, else all (None before the first batch)."""
        full = self._full_rate
        if full is not None:
            return full
        sentences, seconds = self._served
        return sentences / seconds if seconds > 0 else None

    @property
    def _full_rate(self) -> float | None:
        """Sentences per second of recent batches at least half full (None before any)."""
        sentences, seconds = self._served_full
        return sentences / seconds if seconds > 0 else None

    @property
    def overloaded(self) -> bool:
        """Whether more sentences are offered than the model sustains: known once batches at
        least half full have measured what a backlog gets (small batches, all a just-started
        server has run, understate it)."""
        full = self._full_rate
        return full is not None and self.offered.per_second > full

    def expected_wait_s(self, caller: str, count: int, express: bool,
                        whole: bool = False) -> float | None:
        """How long the queue would delay a new request of ``count`` sentences of
        ``caller`` at the recent rate (None: no rate yet); an ``express`` request only counts
        the small ones ahead (the express lane runs it beside the large ones). ``whole`` (a
        file), while more is offered than the model sustains (overload, not a burst): until
        it is done, counting its own sentences and the unqueued rest of the files admitted
        before it; 0 when nothing else waits (a file alone is never refused)."""
        rate = self.rate
        if not rate:
            return None
        ahead = self.queue.delay_ahead(caller, count, express, file=whole)
        if whole and self.overloaded:
            ahead += self.reserved
            return (ahead + count) / rate if ahead else 0.0
        return ahead / rate

    def check_upload(self, caller: str, upload_bytes: int) -> None:
        """check_wait for a file before it is parsed, with the sentences that recent files had
        per byte (at least one)."""
        count = max(1, round(upload_bytes * self.file_density.per_byte))
        try:
            self.check_wait(caller, count, express=False, whole=True, offer=False)
        except QueueFull:
            self.offered.add(count)   # a file let through is offered once, parsed (admit_file)
            raise

    def admit_file(self, caller: str, count: int, upload_bytes: int = 0) -> FileReservation:
        """Admission of a whole file of ``count`` sentences (check_wait), then its reservation
        until its chunks are queued; ``upload_bytes`` teaches check_upload."""
        self.file_density.add(count, upload_bytes)
        self.check_wait(caller, count, express=False, whole=True)
        self._requests += 1
        place = QueuePlace(self, self._requests, asyncio.get_running_loop().time())
        return FileReservation(self, count, place)

    def _is_small(self, count: int) -> bool:
        """Whether a request of ``count`` sentences may run in the express lane."""
        return count <= self.express_sentences

    def check_wait(self, caller: str, count: int, express: bool, whole: bool = False,
                   offer: bool = True) -> None:
        """503 (Retry-After) when the queue ahead would delay a request of ``count``
        sentences beyond max_queue_wait_s: overload is refused at once instead of queued into
        answers that come too late, the largest requests first. Under overload a file
        (``whole``) is refused when it would not be done within max_queue_wait_s (never while
        nothing else waits); it is checked whole before its first chunk is prepared, and before
        it is parsed with the sentences expected from its size (check_upload). ``offer``:
        count the sentences in the offered rate."""
        if offer:
            self.offered.add(count)
        wait = self.expected_wait_s(caller, count, express, whole)
        if self.max_queue_wait_s is not None and wait is not None and wait > self.max_queue_wait_s:
            what = (f"these {count} sentences would be done in" if whole else
                    f"the queue would delay these {count} sentences by")
            raise QueueFull(f"{self.name}: {what} about {wait:.1f} s; the limit is "
                            f"max_queue_wait_s="
                            f"{self.max_queue_wait_s:g}; retry later",
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})

    def _record_rate(self, sentences: int, seconds: float, beside: bool, full: bool) -> None:
        """Decayed sums of sentences and busy wall seconds (two lanes at once count once)
        over the last few dozen batches, of all and of those whose main batch was at least
        half full; a batch run ``beside`` the main one (express) counts with the next main one."""
        self._pending = [self._pending[0] + sentences, self._pending[1] + max(seconds, 0.0)]
        if beside:
            return
        done, busy = self._pending
        self._pending = [0.0, 0.0]
        if busy <= 0 or not done:
            return
        for pair in [self._served, self._served_full] if full else [self._served]:
            pair[0] = 0.95 * pair[0] + done
            pair[1] = 0.95 * pair[1] + busy

    def _forget(self, item: Item, _future: asyncio.Future) -> None:
        if item.queued:  # cancelled while waiting: its work is dropped
            self.queue.leave(item)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            picked, wait = self._next_batch(loop.time())
            if picked is not None:
                beside = bool(self._lanes)   # the second lane: an express batch
                if not beside:
                    self._busy_mark = loop.time()
                task = loop.create_task(self._execute(*picked))
                self._lanes[task] = picked[1]
                task.add_done_callback(partial(self._lane_done, picked[1], beside))
                continue
            if self._closing and not self._lanes and not self.queue.live_groups():
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _lane_done(self, items: list[Item], beside: bool, task: asyncio.Task) -> None:
        del self._lanes[task]
        now = asyncio.get_running_loop().time()
        longest = max(item.n_tokens for item in items)
        half_full = not self.budget.fits(2 * len(items), longest)
        self._record_rate(len(items), now - self._busy_mark, beside, half_full)
        self._busy_mark = now
        if not beside:
            self._free_since = now
            self._wave = len(items) + self.depth
        self._wake.set()

    def _due(self, oldest: float) -> float:
        """When a group whose oldest sentence arrived at ``oldest`` must start."""
        start = max(oldest, self._free_since)
        return min(max(start, self._last_arrival) + self.max_wait_s, start + self.max_delay_s)

    def _express_lane_open(self) -> bool:
        """Whether an express batch may start now: exactly one batch runs and it holds
        sentences of a large request."""
        if len(self._lanes) != 1 or not self.express_sentences:
            return False
        (running,) = self._lanes.values()
        return any(not item.express for item in running)

    def _next_batch(self, now: float
                    ) -> tuple[tuple[TranslateOptions, list[Item]] | None, float | None]:
        """A batch to run now, else (None, seconds until one is due, or None to wait for
        work or a running batch to finish). A group is due when its batch is full, the last
        wave is back, the batcher is closing, or it waited long enough. When some group is
        due, any group whose oldest sentence has waited ``max_delay_s`` competes too (however
        busy the model has been), and the group whose oldest sentence waited longest runs.
        While a batch runs, only an express batch may start (``_express_lane_open``): small
        requests' sentences, after ``max_wait_s`` for more of them."""
        if self._lanes:
            return self._express_batch(now) if self._express_lane_open() else (None, None)
        due_now: list[tuple[float, Group, list[Item]]] = []
        overdue: list[tuple[float, Group, list[Item]]] = []
        next_due = math.inf
        for group in self.queue.live_groups():
            oldest = group.oldest()
            items, full = plan(group, self.budget)
            due = self._due(oldest)
            if full or self._closing or len(items) >= self._wave or now >= due:
                due_now.append((oldest, group, items))
            elif now >= oldest + self.max_delay_s:
                overdue.append((oldest, group, items))
            next_due = min(next_due, due)
        if due_now:
            _, group, items = min(due_now + overdue, key=lambda entry: entry[0])
            return self._take(group, items), None
        if next_due == math.inf:
            return None, None
        return None, next_due - now

    def _express_batch(self, now: float
                       ) -> tuple[tuple[TranslateOptions, list[Item]] | None, float | None]:
        """The small requests' sentences of the group that waited longest for them, once
        none arrived for ``max_wait_s`` (else None and the seconds until then)."""
        best: tuple[float, Group, list[Item]] | None = None
        for group in self.queue.live_groups():
            items, _ = plan(group, self.budget, only_express=True)
            oldest = min((item.enqueued for item in items), default=math.inf)
            if items and (best is None or oldest < best[0]):
                best = (oldest, group, items)
        if best is None:
            return None, None
        if now < self._last_arrival + self.max_wait_s:
            return None, self._last_arrival + self.max_wait_s - now
        return self._take(best[1], best[2]), None

    def _take(self, group: Group, items: list[Item]) -> tuple[TranslateOptions, list[Item]]:
        wanted = [item.options for item in items]
        return superset(group.key, wanted), self.queue.take(items)

    async def _execute(self, options: TranslateOptions, items: list[Item]) -> None:
        items.sort(key=lambda item: item.n_tokens)
        padded = len(items) * max(item.n_tokens for item in items)
        m = self.metrics
        m.batch_size.labels(self.name).observe(len(items))
        m.batch_tokens.labels(self.name).observe(padded)
        on_split = m.oom_splits.labels(self.name).inc
        started = time.perf_counter()
        try:
            results = await self.worker.run_steps(translate_batch_steps(
                self.translator, items, options, self.budget, self.max_batch_seconds, on_split))
        except DecodingInterrupted as error:
            log.warning("batch of %d sentences on %s stopped after %.1f s", len(items),
                        self.name, time.perf_counter() - started)
            results = [error] * len(items)
        except Exception as error:  # the model failed: every sentence of the batch gets it
            log.exception("batch of %d sentences failed on %s", len(items), self.name)
            results = [error] * len(items)
        m.batch_seconds.labels(self.name).observe(time.perf_counter() - started)
        for item, result in zip(items, results):
            if isinstance(result, BaseException):
                if not item.future.done():
                    item.future.set_exception(result)
                continue
            m.sentences.labels(self.name).inc()
            m.translated_tokens.labels(self.name, "source").inc(item.n_tokens)
            m.translated_tokens.labels(self.name, "target").inc(len(result.tokens))
            if not item.future.done():
                item.future.set_result(trim(result, item.options))
