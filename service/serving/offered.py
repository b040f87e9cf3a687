"""The load offered to a model: an exponentially weighted rate of the sentences that asked to
be queued (admitted or refused), so that admission can tell a backlog of a burst from
overload (offered faster than the model sustains); and the sentences per byte of recent
uploaded files, so that a file can be refused before it is parsed."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

WINDOW_S = 10.0   # time constant of the average: a burst fades, overload persists


class OfferedRate:
    """Sentences per second offered, averaged over about ``window_s`` seconds."""

    def __init__(self, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic):
        self._window_s, self._clock = window_s, clock
        self._weight, self._at = 0.0, clock()
        self._started = self._at

    def add(self, sentences: int) -> None:
        self._decay()
        self._weight += sentences

    @property
    def per_second(self) -> float:
        """The average over the time since the start while that is shorter than the window,
        but over at least half a window (a just-started model's first file is not overload)."""
        self._decay()
        seen = max(self._at - self._started, self._window_s / 2)
        return self._weight / (self._window_s * (1.0 - math.exp(-seen / self._window_s)))

    def _decay(self) -> None:
        now = self._clock()
        self._weight *= math.exp(-(now - self._at) / self._window_s)
        self._at = now


class FileDensity:
    """Sentences per uploaded byte, a moving average over recent files (0 before the first)."""

    def __init__(self, weight: float = 0.2):
        self._weight = weight
        self.per_byte = 0.0

    def add(self, sentences: int, upload_bytes: int) -> None:
        if upload_bytes <= 0:
            return
        ratio = sentences / upload_bytes
        self.per_byte = ratio if not self.per_byte else (
            (1 - self._weight) * self.per_byte + self._weight * ratio)
