"""What s2s-train shows while it trains: a progress bar with the time left to the first limit
(steps or minutes) and the latest loss, learning rate and throughput; one line per validation,
resume and stop.

The bar is drawn from the trainer's events (``kind`` train / valid / resume / stop, see
s2s/training/trainer.py). The ETA arithmetic lives in ``eta`` (a pure function of the limits,
the step and the training time) so it can be tested without a clock or a terminal.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from tqdm import tqdm

STEP_LIMIT = "step limit"
TIME_LIMIT = "time limit"


@dataclass(frozen=True)
class Eta:
    """Seconds until the first limit stops the run, and which limit that is."""

    seconds: float
    limit: str  # STEP_LIMIT or TIME_LIMIT

    def __str__(self) -> str:
        return f"ETA {tqdm.format_interval(max(self.seconds, 0.0))} ({self.limit})"


def eta(step: int, elapsed_s: float, max_steps: int | None = None,
        max_minutes: float | None = None, steps_per_s: float | None = None) -> Eta | None:
    """Time left to whichever limit comes first.

    ``elapsed_s`` is the run's training time (the clock the trainer's max_minutes limit reads:
    it carries on across resumes); ``steps_per_s`` the measured speed (None or 0: not known
    yet, so only a time limit can give an ETA). Returns None when no limit applies or none can
    be estimated.
    """
    candidates = []
    if max_minutes:
        candidates.append(Eta(max(max_minutes * 60.0 - elapsed_s, 0.0), TIME_LIMIT))
    if max_steps and steps_per_s and steps_per_s > 0:
        candidates.append(Eta(max(max_steps - step, 0) / steps_per_s, STEP_LIMIT))
    return min(candidates, key=lambda candidate: candidate.seconds, default=None)


class SpeedMeter:
    """Steps per second of training time, measured from the trainer's train events.

    The reference point is step 0 at 0 s for a fresh run; after a resume (whose event carries
    no training time) it is the first train event that follows, so the time spent preparing
    data and restoring never counts as training.
    """

    def __init__(self) -> None:
        self.anchor: tuple[int, float] | None = (0, 0.0)
        self.step = 0
        self.elapsed_s: float | None = 0.0  # None: not known (resumed, no train event yet)
        self.steps_per_s: float | None = None

    def resume(self, step: int) -> None:
        self.anchor, self.step, self.elapsed_s, self.steps_per_s = None, step, None, None

    def update(self, step: int, elapsed_s: float) -> None:
        self.step, self.elapsed_s = step, elapsed_s
        if self.anchor is None:
            self.anchor = (step, elapsed_s)
            return
        anchor_step, anchor_s = self.anchor
        if step > anchor_step and elapsed_s > anchor_s:
            self.steps_per_s = (step - anchor_step) / (elapsed_s - anchor_s)


class TrainingProgress:
    """Turns trainer events into a progress bar and one line per validation, resume and stop.

    ``max_steps`` / ``max_minutes`` are the config's limits (0 or None: none); the bar's ETA
    counts down to whichever comes first. The bar (on ``bar_file``, default stderr) appears at
    the first event, so nothing sits at step 0 while the data is prepared; ``start_lines``
    and ``write`` lines go above it. ``enabled`` False hides the bar; the lines (start lines,
    validations, resume, stop, ``write``) are still written to ``out`` (default stdout), as
    s2s-train --quiet did before. ``clock`` is injectable for tests.
    """

    def __init__(self, max_steps: int | None = None, max_minutes: float | None = None,
                 enabled: bool = True, start_lines: Iterable[str] = (),
                 out: TextIO | None = None, bar_file: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.max_steps = max_steps or 0
        self.max_minutes = max_minutes or 0.0
        self.enabled = enabled
        self.out = out
        self.clock = clock
        self.speed = SpeedMeter()
        self.last_event_at: float | None = None  # clock time of the last timed event
        self.last_lr: float | None = None
        self.postfix = ""
        self.bar_file = bar_file
        self.bar: tqdm | None = None  # drawn at the first event, not during data preparation
        for line in start_lines:
            self.write(line)

    def _bar(self) -> tqdm:
        if self.bar is None:
            bar_format = ("{l_bar}{bar}| {n_fmt}/{total_fmt} steps{postfix}"
                          if self.max_steps else "{n_fmt} steps{postfix}")
            self.bar = tqdm(total=self.max_steps or None, disable=not self.enabled, unit="step",
                            dynamic_ncols=True, bar_format=bar_format,
                            file=self.bar_file if self.bar_file is not None else sys.stderr)
        return self.bar

    # ---- output -------------------------------------------------------------------------
    def write(self, line: str) -> None:
        """A line above the bar (the bar is redrawn below it)."""
        tqdm.write(line, file=self.out if self.out is not None else sys.stdout)

    def training_time(self) -> float | None:
        """The run's training time now (the clock max_minutes reads): that of the last event
        plus the time since it; None after a resume until the next train event."""
        elapsed = self.speed.elapsed_s
        if elapsed is not None and self.last_event_at is not None:
            elapsed += max(self.clock() - self.last_event_at, 0.0)
        return elapsed

    def eta(self) -> Eta | None:
        """Time left to the first limit, as of now."""
        elapsed = self.training_time()
        if elapsed is None:
            return None
        return eta(self.speed.step, elapsed, self.max_steps, self.max_minutes,
                   self.speed.steps_per_s)

    def status(self) -> str:
        """The bar's text after the step count: training time, ETA, loss, lr, tok/s."""
        elapsed, remaining = self.training_time(), self.eta()
        parts = [] if elapsed is None else [f"trained {tqdm.format_interval(elapsed)}"]
        parts += [] if remaining is None else [str(remaining)]
        return ", ".join(parts + ([self.postfix] if self.postfix else []))

    # ---- events -------------------------------------------------------------------------
    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        step = int(event.get("step", self.speed.step))
        if "elapsed_s" in event:
            self.speed.update(step, float(event["elapsed_s"]))
            self.last_event_at = self.clock()
        if kind == "train":
            self.last_lr = event["lr"]
            self.postfix = (f"loss {event['loss']:.3f}, lr {event['lr']:.2e}, "
                            f"tok/s {event['tokens_per_s']:.0f}")
        elif kind == "valid":
            self.write(validation_line(event, self.last_lr))
        elif kind == "resume":
            self.speed.resume(step)
            self.last_event_at = None
            self.write(f"resumed at step {step}")
        elif kind == "stop":
            took = (f" after {tqdm.format_interval(self.speed.elapsed_s)} of training"
                    if self.speed.elapsed_s else "")
            self.write(f"stopped at step {step}{took}: {event.get('reason') or 'done'}")
        bar = self._bar()
        bar.n = step
        bar.set_postfix_str(self.status(), refresh=False)
        bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def validation_line(event: dict[str, Any], lr: float | None = None) -> str:
    """One line for a validation event; ``lr``: the learning rate last logged, if any."""
    line = (f"step {event['step']}: valid loss {event['valid_loss']:.3f} "
            f"ppl {event['valid_ppl']:.2f} BLEU {event['bleu']:.2f} chrF {event['chrf']:.2f} "
            f"exact {event['exact']:.1f}%")
    if lr is not None:
        line += f" lr {lr:.2e}"
    return line + (" (best)" if event.get("improved") else "")
