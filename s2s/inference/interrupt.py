"""Stopping decoding from outside: inputs nobody waits for any more, and a wall-time limit.

Search checks its ``Interrupt`` between steps: inputs no longer wanted leave the active batch
(their results come back empty), and past the deadline decoding stops with
DecodingInterrupted. Decoding is also a generator that yields after every step (``*_steps``
functions), so a caller can run several decodings interleaved, a slice at a time; ``run_to_end``
drives one to its result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

T = TypeVar("T")
Steps = Generator[None, None, T]


class DecodingInterrupted(RuntimeError):
    """Decoding ran past its deadline."""


@dataclass(frozen=True)
class Interrupt:
    """wanted(i): whether input i (of the decoding call) is still wanted (None: all are);
    deadline: a time.monotonic() value after which decoding stops (None: no limit)."""

    wanted: Callable[[int], bool] | None = None
    deadline: float | None = None

    @property
    def active(self) -> bool:
        return self.wanted is not None or self.deadline is not None

    def subset(self, indices: Sequence[int]) -> Interrupt:
        """The same interrupt for a call over ``inputs[indices]``."""
        if self.wanted is None:
            return self
        parent = self.wanted
        return replace(self, wanted=lambda i: parent(indices[i]))

    def dropped(self, inputs: Sequence[int]) -> list[int]:
        """Positions in ``inputs`` (input numbers) that nobody wants any more; raises
        DecodingInterrupted past the deadline."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise DecodingInterrupted("decoding ran past its time limit")
        if self.wanted is None:
            return []
        return [position for position, i in enumerate(inputs) if not self.wanted(i)]


NO_INTERRUPT = Interrupt()


def run_to_end(steps: Steps[T]) -> T:
    """Advance a step generator until it returns; its return value."""
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return finished.value
