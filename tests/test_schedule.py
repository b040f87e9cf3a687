"""Learning-rate schedule: linear warm-up, decay on a validation plateau, floor, state."""

from __future__ import annotations

import pytest

from s2s.training.schedule import LRSchedule


def make(**values) -> LRSchedule:
    knobs = dict(base_lr=1e-3, warmup_steps=4, factor=0.5, patience=1, min_lr=1e-5)
    return LRSchedule(**{**knobs, **values})


def test_warm_up_rises_linearly_to_the_base_rate():
    schedule = make()
    assert [schedule.lr(step) for step in (1, 2, 4, 10)] == pytest.approx(
        [2.5e-4, 5e-4, 1e-3, 1e-3])


def test_without_warm_up_the_first_step_has_the_base_rate():
    assert make(warmup_steps=0).lr(1) == 1e-3


def test_the_rate_decays_only_after_patience_is_exhausted():
    schedule = make(patience=2)
    decayed = [schedule.on_validation(improved=False) for _ in range(3)]
    assert decayed == [False, False, True]
    assert schedule.lr(100) == pytest.approx(5e-4)


def test_an_improvement_resets_the_patience():
    schedule = make(patience=1)
    schedule.on_validation(improved=False)
    schedule.on_validation(improved=True)
    assert not schedule.on_validation(improved=False)
    assert schedule.lr(100) == pytest.approx(1e-3)


def test_the_rate_never_falls_below_the_floor():
    schedule = make(patience=0, min_lr=2e-4)
    for _ in range(10):
        schedule.on_validation(improved=False)
    assert schedule.lr(100) == pytest.approx(2e-4)


def test_the_state_restores_the_decay():
    schedule = make(patience=0)
    schedule.on_validation(improved=False)
    restored = make(patience=0)
    restored.load_state_dict(schedule.state_dict())
    assert restored.lr(100) == schedule.lr(100)
    assert restored.on_validation(False) == schedule.on_validation(False)
