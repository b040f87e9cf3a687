"""Confidence per sentence: the model's mean log-probability per token through a fitted curve."""

from __future__ import annotations

import math

import pytest

from s2s.inference.confidence import Calibration, confidence


def test_a_likelier_translation_gets_a_higher_confidence():
    assert confidence(-1.0, 9) > confidence(-5.0, 9) > confidence(-20.0, 9)


def test_confidence_is_per_token_not_per_sentence():
    assert confidence(-2.0, 9) == confidence(-4.0, 19)      # same mean over 10 and 20 tokens


def test_confidence_stays_within_0_and_100():
    calibration = Calibration(slope=1000.0, intercept=0.0)
    assert confidence(0.0, 3, calibration) <= 100.0
    assert confidence(-1e9, 3, calibration) >= 0.0


def test_an_empty_or_impossible_output_has_no_confidence():
    assert confidence(0.0, 0) == 0.0
    assert confidence(-math.inf, 5) == 0.0


def test_a_calibration_needs_finite_numbers():
    with pytest.raises(ValueError):
        Calibration(slope=math.nan, intercept=0.0)
