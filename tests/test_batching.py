"""The one batching rule (s2s.batching): padded size within a budget."""

from __future__ import annotations

import random

import pytest

from s2s.batching import BatchBudget, cut_sorted, plan_batches


def random_lengths(seed: int = 4) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(1, 30) for _ in range(300)] + [120, 150]   # two over-long ones


def test_batches_fit_the_token_budget_and_keep_the_order():
    lengths = random_lengths()
    indices = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = cut_sorted(indices, lengths, BatchBudget(100))
    assert [i for batch in batches for i in batch] == indices
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 100 or len(batch) == 1, batch
    assert [len(b) for b in batches if max(lengths[i] for i in b) > 100] == [1, 1]


def test_batches_fit_the_sentence_budget():
    batches = cut_sorted(list(range(50)), [2] * 50, BatchBudget(10_000, sentences=8))
    assert [len(b) for b in batches] == [8] * 6 + [2]


def test_a_plan_skips_empty_sources_and_sorts_by_length():
    lengths = [5, 0, 2, 9, 0, 2]
    assert plan_batches(lengths, BatchBudget(1000)) == [[2, 5, 0, 3]]


def test_sources_planned_as_one_batch_stay_one_batch_once_sorted():
    """What the service's batcher relies on: a set that fits in arrival order also fits as the
    translator re-plans it (sorted), so the translator never splits it."""
    rng = random.Random(7)
    budget = BatchBudget(400, sentences=16)
    for _ in range(200):
        lengths = [rng.randint(1, 40) for _ in range(rng.randint(1, 16))]
        if budget.fits(len(lengths), max(lengths)):
            assert len(plan_batches(lengths, budget)) == 1


@pytest.mark.parametrize("tokens, sentences", [(0, None), (10, 0)])
def test_an_empty_budget_is_refused(tokens, sentences):
    with pytest.raises(ValueError):
        BatchBudget(tokens, sentences)
