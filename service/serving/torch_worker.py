"""The one thread that runs all of the service's torch work.

OpenMP (torch's CPU threads) gives each calling thread its own team of worker threads; with a
second team the workers outnumber the cores and libgomp stops spinning between parallel regions
(64 clients, reference model, 2 cores: 160 against 203 sentences/s batched), so loading,
warm-up and every model's batches share this thread.

``call`` runs a function whole (loading, warm-up). ``run_steps`` runs a decoding step generator
(s2s.inference.interrupt) in slices of ``slice_s`` seconds, round-robin with the other pairs'
running batches: one pair's long batch holds up another pair's short one by at most a slice at
a time, not for its whole length.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

_STOP = object()


@dataclass(eq=False)
class _Task:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


@dataclass(eq=False)
class _Call(_Task):
    """A function to run whole."""

    function: Callable[[], Any]


@dataclass(eq=False)
class _Stepped(_Task):
    """A step generator to drive in slices."""

    steps: Generator[None, None, Any]


class TorchWorker:
    def __init__(self, slice_s: float = 0.05):
        self.slice_s = slice_s
        self._inbox: queue.SimpleQueue[_Call | _Stepped | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="torch", daemon=True)
        self._thread.start()

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """function(*args) in the torch thread, whole."""
        loop = asyncio.get_running_loop()
        return await self._submit(_Call(loop, loop.create_future(), lambda: function(*args)))

    async def run_steps(self, steps: Generator[None, None, Any]) -> Any:
        """Drive a step generator to its return value in the torch thread, in slices."""
        loop = asyncio.get_running_loop()
        return await self._submit(_Stepped(loop, loop.create_future(), steps))

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread; running step generators are closed, their callers get an error."""
        self._inbox.put(_STOP)
        self._thread.join(timeout)

    async def _submit(self, task: _Call | _Stepped) -> Any:
        self._inbox.put(task)
        return await task.future

    def _run(self) -> None:
        active: deque[_Stepped] = deque()
        while True:
            task: _Call | _Stepped | object | None   # object: _STOP; None: nothing waiting
            try:
                task = self._inbox.get(block=not active)
            except queue.Empty:
                task = None
            if task is _STOP:
                for job in active:
                    job.steps.close()
                    _resolve(job, error=RuntimeError("the torch worker stopped"))
                return
            if isinstance(task, _Call):
                _run_whole(task)
            elif isinstance(task, _Stepped):
                active.append(task)
            else:
                job = active.popleft()
                if not self._advance(job):
                    active.append(job)

    def _advance(self, job: _Stepped) -> bool:
        """Run one slice of a step generator; whether it finished."""
        until = time.perf_counter() + self.slice_s
        try:
            while time.perf_counter() < until:
                next(job.steps)
        except StopIteration as finished:
            _resolve(job, result=finished.value)
            return True
        except Exception as error:  # the caller decides what a failure means
            _resolve(job, error=error)
            return True
        return False


def _run_whole(task: _Call) -> None:
    try:
        result = task.function()
    except Exception as error:
        _resolve(task, error=error)
    else:
        _resolve(task, result=result)


def _resolve(task: _Task, result: Any = None, error: BaseException | None = None) -> None:
    def settle() -> None:
        if task.future.done():
            return
        if error is not None:
            task.future.set_exception(error)
        else:
            task.future.set_result(result)

    with contextlib.suppress(RuntimeError):   # the loop is closed: nobody waits any more
        task.loop.call_soon_threadsafe(settle)
