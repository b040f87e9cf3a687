"""Batching and corpus handling: token budgets, reproducible plans, sharding, resuming, filters."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
import torch

from s2s.batching import BatchBudget, cut_sorted
from s2s.training.corpus_files import DataError, read_parallel
from s2s.training.data import (
    BatchPlan,
    cut_pools,
    epoch_draws,
    length_keys,
    sort_within_pools,
)
from s2s.training.encoding import FilterStats, LengthFilter, keep_mask
from s2s.training.shards import CorpusShards, TokenShard, TrainingSet


class Pairs(TrainingSet):
    """A TrainingSet that also keeps its lists (what the tests compare against)."""

    def __init__(self, src: list[list[int]], tgt: list[list[int]]):
        super().__init__([CorpusShards("train", TokenShard.from_lists(src),
                                       TokenShard.from_lists(tgt))])
        self.src, self.tgt = src, tgt


def make_data(count: int = 200, seed: int = 0) -> Pairs:
    """Pairs whose sources are unique (first two tokens encode the index), lengths 2..14."""
    rng = random.Random(seed)
    src = [[4 + i % 40, 4 + i // 40] + [rng.randrange(4, 44) for _ in range(rng.randint(0, 12))]
           for i in range(count)]
    tgt = [[rng.randrange(4, 44) for _ in range(rng.randint(1, 14))] for _ in range(count)]
    return Pairs(src, tgt)


def source_keys(batch) -> list[tuple[int, ...]]:
    return [tuple(batch.src[row, :length].tolist()) for row, length in
            enumerate(batch.src_lens.tolist())]


def make_plan(data: TrainingSet, seed: int = 1, rank: int = 0, world_size: int = 1) -> BatchPlan:
    return BatchPlan(data, batch_tokens=60, bucket_size=3, seed=seed, rank=rank,
                     world_size=world_size)


def test_same_seed_gives_the_same_batches():
    data = make_data()
    first, second = make_plan(data, seed=3), make_plan(data, seed=3)
    for _ in range(len(first) + 2):  # into the next epoch
        a, b = first.next_batch(), second.next_batch()
        assert torch.equal(a.src, b.src) and torch.equal(a.tgt_out, b.tgt_out)


def test_different_seed_gives_a_different_order():
    data = make_data()
    assert make_plan(data, seed=3).epoch_batches() != make_plan(data, seed=4).epoch_batches()


def test_every_pair_appears_exactly_once_per_epoch():
    data = make_data()
    plan = make_plan(data)
    seen = Counter()
    for _ in range(len(plan)):
        seen.update(source_keys(plan.next_batch()))
    assert plan.epoch == 0
    assert seen == Counter(tuple(s) for s in data.src)
    assert set(seen.values()) == {1}


def test_two_ranks_get_disjoint_batches_of_equal_number():
    data = make_data(203)
    rank0, rank1 = (make_plan(data, rank=r, world_size=2) for r in (0, 1))
    batches0, batches1 = rank0.epoch_batches(), rank1.epoch_batches()
    assert len(batches0) == len(batches1) > 0
    pairs0 = {i for batch in batches0 for i in batch}
    pairs1 = {i for batch in batches1 for i in batch}
    assert not pairs0 & pairs1
    assert len(pairs0 | pairs1) > 0.8 * len(data)


@pytest.mark.parametrize("drawn", [0, 3, "epoch"])
def test_restored_state_continues_with_the_next_batch(drawn):
    data = make_data()
    plan = make_plan(data, seed=5)
    for _ in range(len(plan) if drawn == "epoch" else drawn):
        plan.next_batch()
    state = plan.state_dict()
    expected = [plan.next_batch() for _ in range(2)]

    restored = make_plan(data, seed=99)  # the seed comes from the state
    restored.load_state_dict(state)
    for want in expected:
        got = restored.next_batch()
        assert torch.equal(got.src, want.src) and torch.equal(got.tgt_out, want.tgt_out)


@pytest.mark.parametrize(("src_len", "tgt_len"), [
    (11, 5),   # source longer than max_len
    (5, 11),   # target longer than max_len
    (0, 2),    # empty source
    (2, 0),    # empty target
    (1, 4),    # length ratio 4 > 3
], ids=["long-source", "long-target", "empty-source", "empty-target", "ratio"])
def test_length_filter_drops_bad_pairs(src_len, tgt_len):
    src = np.array([3, 10, src_len, 2])
    tgt = np.array([2, 10, tgt_len, 6])
    kept = keep_mask(src, tgt, LengthFilter(max_len=10, max_ratio=3.0), FilterStats())
    assert kept.tolist() == [True, True, False, True]


def sorted_cut_bounds(lengths, budget: int) -> list[tuple[int, int]]:
    """(start, end) of the batches cut_sorted (the inference batching rule) makes."""
    ends = np.cumsum([len(b) for b in cut_sorted(range(len(lengths)), lengths,
                                                 BatchBudget(budget))]).tolist()
    return list(zip([0, *ends[:-1]], ends))


def test_cut_pools_makes_the_batches_of_cut_sorted():
    rng = random.Random(2)
    lengths = sorted(rng.randint(1, 90) for _ in range(500))
    for budget in (1, 50, 200, 1000):
        bounds = cut_pools(np.array(lengths), np.array([0]), np.array([len(lengths)]),
                           BatchBudget(budget))
        assert [tuple(b) for b in bounds.tolist()] == sorted_cut_bounds(lengths, budget)


def test_cut_pools_cuts_each_pool_as_if_alone():
    rng = np.random.default_rng(3)
    pools = [np.sort(rng.integers(1, 90, size=n)) for n in (0, 1, 37, 400, 5)]
    starts = np.cumsum([0] + [len(p) for p in pools[:-1]])
    bounds = cut_pools(np.concatenate(pools), starts, starts + [len(p) for p in pools],
                       BatchBudget(300))
    expected = [(int(start) + a, int(start) + b) for start, pool in zip(starts, pools)
                for a, b in sorted_cut_bounds(pool.tolist(), 300)]
    assert [tuple(b) for b in bounds.tolist()] == expected


@pytest.mark.parametrize("wide", [False, True])
def test_sort_within_pools_sorts_by_target_then_source_length_keeping_ties_in_order(wide):
    rng = np.random.default_rng(4)
    tgt, src = rng.integers(1, 6, size=100), rng.integers(1, 6, size=100)
    if wide:
        src = src * 1000   # keys beyond 16 bits
    order = rng.permutation(100)
    sorted_order = sort_within_pools(order, 30, length_keys(tgt, src))
    for start in range(0, 100, 30):
        pool = order[start:start + 30]
        expected = pool[np.lexsort((src[pool], tgt[pool]))]
        assert sorted_order[start:start + 30].tolist() == expected.tolist()


def test_weights_set_how_often_each_corpus_is_drawn():
    small = [[4, 5]] * 10
    large = [[6, 7]] * 60
    data = TrainingSet([
        CorpusShards("small", TokenShard.from_lists(small), TokenShard.from_lists(small), 1.0),
        CorpusShards("large", TokenShard.from_lists(large), TokenShard.from_lists(large), 3.0)])
    draws = epoch_draws(data, torch.Generator().manual_seed(0))
    from_small = int((draws < 10).sum())
    assert (from_small, len(draws) - from_small) == (20, 60)   # 1:3, the large corpus once
    assert set(np.bincount(draws[draws < 10]).tolist()) == {2}   # small one: two whole passes


def test_two_ranks_read_disjoint_pairs_of_a_weighted_set():
    pairs = [[4 + i % 40, 4 + i // 40] for i in range(300)]
    data = TrainingSet([
        CorpusShards("a", TokenShard.from_lists(pairs[:100]), TokenShard.from_lists(pairs[:100])),
        CorpusShards("b", TokenShard.from_lists(pairs[100:]), TokenShard.from_lists(pairs[100:]),
                     2.0)])
    plans = [BatchPlan(data, 40, 2, seed=1, rank=r, world_size=2) for r in (0, 1)]
    batches = [{tuple(b) for b in plan.epoch_batches()} for plan in plans]
    assert not batches[0] & batches[1]


def test_read_parallel_refuses_misaligned_files(tmp_path):
    src_path, tgt_path = tmp_path / "train.de", tmp_path / "train.en"
    src_path.write_text("eins\nzwei\ndrei\n", encoding="utf-8")
    tgt_path.write_text("one\ntwo\n", encoding="utf-8")
    with pytest.raises(DataError) as error:
        read_parallel(src_path, tgt_path)
    assert str(src_path) in str(error.value) and str(tgt_path) in str(error.value)
