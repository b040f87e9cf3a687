"""How sure the model is of a translation: a number from 0 to 100 per sentence.

The feature is the model's own: the mean log-probability per output token (EOS included), that
is the log of the geometric mean probability of the tokens it chose. A one-feature logistic
curve maps it to the probability that the translation is usable; its two numbers are fitted on
a validation set (bench/confidence/fit_confidence.py: usable = sentence chrF >= 40) and kept
here, so every caller gets the same scale. Without a model behind it (an empty output, a
dropped sentence) the confidence is 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Calibration:
    """confidence = 100 * sigmoid(slope * mean_log_prob + intercept)."""

    slope: float
    intercept: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.slope) and math.isfinite(self.intercept)):
            raise ValueError("a calibration needs finite numbers")


# Fitted on Multi30k val (de->en reference recipe at 1,000 updates, beam 5): bench/confidence/.
DEFAULT_CALIBRATION = Calibration(slope=7.74, intercept=5.04)


def mean_log_prob(score: float, output_tokens: int) -> float:
    """The summed log-probability of a candidate per token, EOS counted."""
    return score / (output_tokens + 1)


def confidence(score: float, output_tokens: int,
               calibration: Calibration = DEFAULT_CALIBRATION) -> float:
    """0-100 for a candidate of ``output_tokens`` tokens (EOS not counted) whose summed
    log-probability is ``score``; 0 for a score that is not finite or an empty output."""
    if output_tokens == 0 or not math.isfinite(score):
        return 0.0
    z = calibration.slope * mean_log_prob(score, output_tokens) + calibration.intercept
    z = max(-60.0, min(60.0, z))
    return round(100.0 / (1.0 + math.exp(-z)), 1)
