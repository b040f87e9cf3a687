import numpy as np

from s2s.ragged import flatten, positions_within


def test_flatten_lays_sequences_back_to_back_with_their_lengths():
    flat, lengths = flatten([[5, 6], [], [7], [8, 9, 10]], np.uint16)
    assert flat.dtype == np.uint16
    assert flat.tolist() == [5, 6, 7, 8, 9, 10]
    assert lengths.tolist() == [2, 0, 1, 3]


def test_flatten_of_no_sequences_is_empty():
    flat, lengths = flatten([], np.int64)
    assert flat.shape == (0,) and lengths.shape == (0,)


def test_positions_within_count_from_zero_in_each_run():
    assert positions_within(np.array([2, 0, 3])).tolist() == [0, 1, 0, 1, 2]
