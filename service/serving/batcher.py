"""Dynamic batching for one model: sentences of concurrent requests share model batches.

``submit`` puts a request's prepared sentences (``Source``s from the current translator's
``prepare``: tokenized and length-checked once) into a bounded queue (capacity counted in
sentences; a request that does not fit is refused whole with QueueFull) and returns one future
per sentence. One worker task forms batches from the fair queue (serving.scheduler: sentences
of one batch key, one from each caller in turn; the group waiting longest first once a batch is
due; per-caller and option-group bounds), within a ``BatchBudget`` of ``max_sentences`` and
``max_tokens`` (rows x longest source, the rule of s2s.batching, which the translator
applies too, so it never splits the batch again), as soon as a batch is full or once no
sentence arrived for ``max_wait_s``, counted from the later of its first item's arrival and the
end of the previous batch, but at most ``max_delay_s`` after that. Counting from the end
of the previous batch lets the clients just answered send their next sentences into the same
batch as those that queued meanwhile, and waiting while sentences keep arriving lets a whole
wave of answered clients come back, so concurrent closed-loop clients share one full batch
instead of splitting into groups that alternate. A batch starts at once, without waiting, when
as many sentences are queued as the last wave had (the last batch's sentences plus those queued
while it ran): then everyone who was waiting is back, and a lone client is not held up by
``max_wait_s`` on every request. The batch, sorted by length, runs in the torch thread
(serving.torch_worker: one batch per model at a time, never on the event loop, a slice at a time
alternating with the other models' batches); each future gets exactly its sentence's result. A
sentence prepared by a translator that a reload has since replaced is prepared again by the new
one. Cancelled futures (deadline, client gone) are skipped when batches are formed, and a
running batch drops them at its next decoding step, so their work stops; a batch running longer
than ``max_batch_seconds`` stops and its sentences fail with DecodingInterrupted. CUDA
out-of-memory splits a batch in halves and retries, down to single sentences.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Protocol

import torch

from s2s.batching import BatchBudget
from s2s.inference.glossary import Glossary
from s2s.inference.interrupt import DecodingInterrupted, Interrupt, Steps
from s2s.inference.translator import Source, TranslateOptions, Translation
from service.errors import CallerQueueFull, NotReady, QueueFull, TooLarge
from service.serving.metrics import Metrics
from service.serving.scheduler import FairQueue, Group, Item, batch_key, plan, superset, trim
from service.serving.torch_worker import TorchWorker

log = logging.getLogger(__name__)


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
                 max_queue_wait_s: float | None = None):
        """worker: the torch thread the batches run in (shared by all models);
        max_queue_wait_s: refuse new work (503) while the sentences already queued would take
        longer than this at the recent rate (None: only the capacity bounds the queue)."""
        self.name = name
        self.translator = translator          # swapped by a reload; read once per batch
        self.budget = BatchBudget(max_tokens, max_sentences)
        self.max_wait_s = max_wait_s
        self.max_delay_s = max_wait_s if max_delay_s is None else max(max_wait_s, max_delay_s)
        self.metrics = metrics or Metrics()
        self.queue = FairQueue(capacity, caller_share, max_groups, self._report_depth)
        self.retry_after_s = retry_after_s
        self.max_queue_wait_s = max_queue_wait_s
        self._rate: float | None = None   # sentences per second of recent batches (EWMA)
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task | None = None
        self._free_since = float("-inf")   # loop time the last batch finished
        self._wave = math.inf   # sentences the last batch had plus those queued meanwhile
        self._last_arrival = float("-inf")  # loop time the last sentence was queued
        self._running: list[Item] = []
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
        for item in self._running:
            item.future.cancel()

    def submit(self, sources: Sequence[Source], options: TranslateOptions,
               caller: str = "") -> list[asyncio.Future]:
        """Queue sentences that the current translator prepared (non-blank) for ``caller``
        (its API key or address); one future per sentence."""
        if self._closing:
            raise NotReady(f"model {self.name} is shutting down")
        if len(sources) > self.capacity:
            raise TooLarge(f"the request has {len(sources)} sentences; at most {self.capacity} "
                           "fit in the queue (queue_capacity)")
        self._check_room(caller, len(sources), batch_key(options))
        self._check_wait()
        loop = asyncio.get_running_loop()
        now = loop.time()
        items = [Item(source, self.translator, loop.create_future(), now, options, caller)
                 for source in sources]
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

    def expected_wait_s(self) -> float | None:
        """How long the queued sentences would take at the recent rate (None: no rate yet)."""
        return None if not self._rate else self.depth / self._rate

    def _check_wait(self) -> None:
        """503 (Retry-After) while the queue ahead would outlast max_queue_wait_s: overload is
        refused at once instead of queued into answers that come too late."""
        wait = self.expected_wait_s()
        if self.max_queue_wait_s is not None and wait is not None and wait > self.max_queue_wait_s:
            raise QueueFull(f"the queue of {self.name} holds about {wait:.1f} s of work; the "
                            f"limit is max_queue_wait_s={self.max_queue_wait_s:g}; retry later")

    def _record_rate(self, sentences: int, seconds: float) -> None:
        if seconds > 0 and sentences:
            sample = sentences / seconds
            self._rate = sample if self._rate is None else 0.7 * self._rate + 0.3 * sample

    def _forget(self, item: Item, _future: asyncio.Future) -> None:
        if item.queued:  # cancelled while waiting: its work is dropped
            self.queue.leave(item)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            picked, wait = self._next_batch(loop.time())
            if picked is not None:
                await self._execute(*picked)
                self._free_since = loop.time()
                self._wave = len(picked[1]) + self.depth
                continue
            if self._closing and not self.queue.live_groups():
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _due(self, oldest: float) -> float:
        """When a group whose oldest sentence arrived at ``oldest`` must start."""
        start = max(oldest, self._free_since)
        return min(max(start, self._last_arrival) + self.max_wait_s, start + self.max_delay_s)

    def _next_batch(self, now: float
                    ) -> tuple[tuple[TranslateOptions, list[Item]] | None, float | None]:
        """A batch to run now, else (None, seconds until one is due, or None to wait for
        work). A group is due when its batch is full, the last wave is back, the batcher is
        closing, or it waited long enough. When some group is due, any group whose oldest
        sentence has waited ``max_delay_s`` competes too (however busy the model has been),
        and the group whose oldest sentence waited longest runs."""
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
            wanted = [item.options for item in items]
            return (superset(group.key, wanted), self.queue.take(items)), None
        if next_due == math.inf:
            return None, None
        return None, next_due - now

    async def _execute(self, options: TranslateOptions, items: list[Item]) -> None:
        items.sort(key=lambda item: item.n_tokens)
        padded = len(items) * max(item.n_tokens for item in items)
        m = self.metrics
        m.batch_size.labels(self.name).observe(len(items))
        m.batch_tokens.labels(self.name).observe(padded)
        on_split = m.oom_splits.labels(self.name).inc
        started = time.perf_counter()
        self._running = items
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
        finally:
            self._running = []
        m.batch_seconds.labels(self.name).observe(time.perf_counter() - started)
        self._record_rate(len(items), time.perf_counter() - started)
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
