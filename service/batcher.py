"""Dynamic batching for one model: sentences of concurrent requests share model batches.

``submit`` puts a request's prepared sentences (``Source``s from the current translator's
``prepare``: tokenized and length-checked once) into a bounded queue (capacity counted in
sentences; a request that does not fit is refused whole with QueueFull) and returns one future
per sentence. One worker task forms batches: items with equal TranslateOptions only, in arrival
order, within a ``BatchBudget`` of ``max_sentences`` and ``max_tokens`` (rows x longest source,
the rule of s2s.inference.batching, which the translator applies too, so it never splits the
batch again), as soon as a batch is full or
once no sentence arrived for ``max_wait_s``, counted from the later of its first item's arrival
and the end of the previous batch, but at most ``max_delay_s`` after that. Counting from the end
of the previous batch lets the clients just answered send their next sentences into the same
batch as those that queued meanwhile, and waiting while sentences keep arriving lets a whole
wave of answered clients come back, so concurrent closed-loop clients share one full batch
instead of splitting into groups that alternate. A batch starts at once, without waiting, when
as many sentences are queued as the last wave had (the last batch's sentences plus those queued
while it ran): then everyone who was waiting is back, and a lone client is not held up by
``max_wait_s`` on every request. The batch, sorted by length, runs in a one-thread
executor (one batch at a time, never on the event loop; the service shares one among all models,
see service.models); each future gets exactly its sentence's result. A sentence prepared by a
translator that a reload has since replaced is prepared again by the new one. Cancelled futures
(deadline, client gone) are skipped when batches are formed, so their work is dropped. CUDA
out-of-memory splits a batch in halves and retries, down to single sentences.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from s2s.inference.batching import BatchBudget
from s2s.inference.translator import Source, TranslateOptions
from service.errors import NotReady, QueueFull, TooLarge
from service.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Item:
    source: Source
    prepared_by: Any          # the translator whose prepare() made ``source``
    future: asyncio.Future
    enqueued: float
    queued: bool = True

    @property
    def n_tokens(self) -> int:
        return len(self.source)


def translate_splitting_on_oom(translate: Callable[[list[Source], TranslateOptions], list],
                               sources: list[Source], options: TranslateOptions,
                               on_split: Callable[[], None] | None = None) -> list[Any]:
    """translate(sources) with CUDA out-of-memory handled by halving the batch; returns one
    result per source, in order: a Translation, or the exception for a single source that
    still fails."""
    try:
        results = list(translate(sources, options))
    except torch.cuda.OutOfMemoryError as error:
        if len(sources) == 1:
            return [error]
        if on_split is not None:
            on_split()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        half = len(sources) // 2
        return (translate_splitting_on_oom(translate, sources[:half], options, on_split)
                + translate_splitting_on_oom(translate, sources[half:], options, on_split))
    if len(results) != len(sources):
        raise RuntimeError(f"translator returned {len(results)} results for {len(sources)} "
                           "inputs")
    return results


def run_batch(translator: Any, items: list[_Item], options: TranslateOptions,
              budget: BatchBudget, on_split: Callable[[], None]) -> list[Any]:
    """In the torch thread: translate the items' sources (prepared again where a reload
    replaced the translator that prepared them); one result or exception per item."""
    results: list[Any] = [None] * len(items)
    sources, positions = [], []
    for position, item in enumerate(items):
        try:
            source = (item.source if item.prepared_by is translator
                      else translator.prepare([item.source.text])[0])
        except ValueError as error:   # the new model's length limit
            results[position] = error
            continue
        sources.append(source)
        positions.append(position)
    if sources:
        translate = partial(translator.translate_sources, budget=budget)
        for position, result in zip(positions, translate_splitting_on_oom(
                translate, sources, options, on_split)):
            results[position] = result
    return results


class Batcher:
    def __init__(self, name: str, translator: Any, *, max_tokens: int, max_sentences: int,
                 max_wait_s: float, capacity: int, metrics: Metrics | None = None,
                 max_delay_s: float | None = None, executor: ThreadPoolExecutor | None = None):
        """executor: a one-thread executor for the batches (None: the batcher's own, shut down
        by close())."""
        self.name = name
        self.translator = translator          # swapped by a reload; read once per batch
        self.budget = BatchBudget(max_tokens, max_sentences)
        self.max_wait_s = max_wait_s
        self.max_delay_s = max_wait_s if max_delay_s is None else max(max_wait_s, max_delay_s)
        self.capacity = capacity
        self.metrics = metrics or Metrics()
        self._groups: dict[TranslateOptions, deque[_Item]] = {}
        self._depth = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task | None = None
        self._free_since = float("-inf")   # loop time the last batch finished
        self._wave = math.inf   # sentences the last batch had plus those queued meanwhile
        self._last_arrival = float("-inf")  # loop time the last sentence was queued
        self._owns_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix=f"batcher-{name}")

    @property
    def depth(self) -> int:
        """Sentences waiting (not yet in a batch)."""
        return self._depth

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name=f"batcher-{self.name}")

    async def close(self) -> None:
        """Stop taking work, finish everything queued, then stop the worker."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._owns_executor:
            self._executor.shutdown(wait=False)

    def submit(self, sources: Sequence[Source], options: TranslateOptions
               ) -> list[asyncio.Future]:
        """Queue sentences that the current translator prepared (non-blank); one future per
        sentence."""
        if self._closing:
            raise NotReady(f"model {self.name} is shutting down")
        if len(sources) > self.capacity:
            raise TooLarge(f"the request has {len(sources)} sentences; at most {self.capacity} "
                           "fit in the queue")
        if self._depth + len(sources) > self.capacity:
            raise QueueFull(f"the queue of {self.name} is full ({self._depth} sentences waiting); "
                            "retry later")
        loop = asyncio.get_running_loop()
        now = loop.time()
        group = self._groups.setdefault(options, deque())
        futures = []
        for source in sources:
            item = _Item(source, self.translator, loop.create_future(), now)
            item.future.add_done_callback(partial(self._forget, item))
            group.append(item)
            futures.append(item.future)
        self._set_depth(self._depth + len(sources))
        self._last_arrival = now
        self._wake.set()
        return futures

    def _forget(self, item: _Item, _future: asyncio.Future) -> None:
        if item.queued:  # cancelled while waiting: its work is dropped
            item.queued = False
            self._set_depth(self._depth - 1)

    def _set_depth(self, depth: int) -> None:
        self._depth = depth
        self.metrics.queue_depth.labels(self.name).set(depth)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            picked, wait = self._next_batch(loop.time())
            if picked is not None:
                await self._execute(*picked)
                self._free_since = loop.time()
                self._wave = len(picked[1]) + self._depth
                continue
            if self._closing and not self._groups:
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _plan(self, items: deque[_Item]) -> tuple[int, bool]:
        """How many live items from the front form the next batch, and whether it is full."""
        count = longest = 0
        for item in items:
            if not item.queued:
                continue
            grown = max(longest, item.n_tokens)
            if count and not self.budget.fits(count + 1, grown):
                return count, True
            count, longest = count + 1, grown
        return count, count == self.budget.sentences

    def _next_batch(self, now: float
                    ) -> tuple[tuple[TranslateOptions, list[_Item]] | None, float | None]:
        """A batch to run now, else (None, seconds until one is due or None to wait for work)."""
        oldest: tuple[float, TranslateOptions, int] | None = None
        for options, items in list(self._groups.items()):
            while items and not items[0].queued:
                items.popleft()
            if not items:
                del self._groups[options]
                continue
            count, full = self._plan(items)
            if full or self._closing or count >= self._wave:
                return (options, self._take(options, count)), None
            if oldest is None or items[0].enqueued < oldest[0]:
                oldest = (items[0].enqueued, options, count)
        if oldest is None:
            return None, None
        start = max(oldest[0], self._free_since)
        due = min(max(start, self._last_arrival) + self.max_wait_s, start + self.max_delay_s)
        if now >= due:
            return (oldest[1], self._take(oldest[1], oldest[2])), None
        return None, due - now

    def _take(self, options: TranslateOptions, count: int) -> list[_Item]:
        items = self._groups[options]
        batch: list[_Item] = []
        while items and len(batch) < count:
            item = items.popleft()
            if item.queued:
                item.queued = False
                batch.append(item)
        if not items:
            del self._groups[options]
        self._set_depth(self._depth - len(batch))
        return batch

    async def _execute(self, options: TranslateOptions, items: list[_Item]) -> None:
        items.sort(key=lambda item: item.n_tokens)
        padded = len(items) * max(item.n_tokens for item in items)
        m = self.metrics
        m.batch_size.labels(self.name).observe(len(items))
        m.batch_tokens.labels(self.name).observe(padded)
        on_split = m.oom_splits.labels(self.name).inc
        started = time.perf_counter()
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._executor, run_batch, self.translator, items, options, self.budget,
                on_split)
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
                item.future.set_result(result)
