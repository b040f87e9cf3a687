"""Batching and corpus handling: token budgets, reproducible plans, sharding, resuming, filters."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch

from s2s.training.data import (
    BatchPlan,
    DataError,
    ParallelData,
    filter_pairs,
    read_parallel,
)


def make_data(count: int = 200, seed: int = 0) -> ParallelData:
    """Pairs whose sources are unique (first two tokens encode the index), lengths 2..14."""
    rng = random.Random(seed)
    src = [[4 + i % 40, 4 + i // 40] + [rng.randrange(4, 44) for _ in range(rng.randint(0, 12))]
           for i in range(count)]
    tgt = [[rng.randrange(4, 44) for _ in range(rng.randint(1, 14))] for _ in range(count)]
    return ParallelData(src, tgt)


def source_keys(batch) -> list[tuple[int, ...]]:
    return [tuple(batch.src[row, :length].tolist()) for row, length in
            enumerate(batch.src_lens.tolist())]


def make_plan(data: ParallelData, seed: int = 1, rank: int = 0, world_size: int = 1) -> BatchPlan:
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


@pytest.mark.parametrize(("src", "tgt"), [
    ([5] * 11, [5] * 5),   # source longer than max_len
    ([5] * 5, [5] * 11),   # target longer than max_len
    ([], [5, 6]),          # empty source
    ([5, 6], []),          # empty target
    ([5], [5] * 4),        # length ratio 4 > 3
], ids=["long-source", "long-target", "empty-source", "empty-target", "ratio"])
def test_filter_pairs_drops_bad_pairs(src, tgt):
    good = ParallelData([[4, 5, 6], [7] * 10, [8, 9]], [[4, 5], [7] * 10, [8, 9, 10, 11, 12, 13]])
    data = ParallelData([good.src[0], src, *good.src[1:]], [good.tgt[0], tgt, *good.tgt[1:]])
    kept = filter_pairs(data, max_len=10, max_ratio=3.0)
    assert kept.src == good.src and kept.tgt == good.tgt


def test_read_parallel_refuses_misaligned_files(tmp_path):
    src_path, tgt_path = tmp_path / "train.de", tmp_path / "train.en"
    src_path.write_text("eins\nzwei\ndrei\n", encoding="utf-8")
    tgt_path.write_text("one\ntwo\n", encoding="utf-8")
    with pytest.raises(DataError) as error:
        read_parallel(src_path, tgt_path)
    assert str(src_path) in str(error.value) and str(tgt_path) in str(error.value)
