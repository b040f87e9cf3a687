"""Own output pieces scored in chunks of consecutive sentences (s2s.model.output)."""

from __future__ import annotations

import itertools

import torch

from s2s.model.output import OwnOutput, plan_chunks


def padded_cost(chunks, overhead):
    return sum((end - start) * width + overhead for start, end, width in chunks)


def test_chunks_cover_the_sentences_in_order_with_their_widest_list():
    widths = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
    chunks = plan_chunks(widths, overhead=4)
    assert [start for start, _, _ in chunks] == [0] + [end for _, end, _ in chunks[:-1]]
    assert chunks[-1][1] == len(widths)
    assert all(width == max(widths[start:end]) for start, end, width in chunks)


def test_the_plan_is_the_cheapest_split():
    widths = [2, 7, 3, 3, 8, 1, 9]
    best = min(padded_cost([(a, b, max(widths[a:b])) for a, b in zip(cuts, cuts[1:])], 5)
               for inner in itertools.product([0, 1], repeat=len(widths) - 1)
               for cuts in [[0] + [i + 1 for i, c in enumerate(inner) if c] + [len(widths)]])
    assert padded_cost(plan_chunks(widths, overhead=5), 5) == best


def test_growing_lists_are_split_and_equal_ones_are_not():
    assert len(plan_chunks([10] * 8 + [300] * 8, overhead=50)) == 2
    assert len(plan_chunks([40] * 16, overhead=50)) == 1


def own_output(widths: list[int], hidden_size: int = 6, vocab: int = 40) -> OwnOutput:
    generator = torch.Generator().manual_seed(0)
    width = max(widths)
    valid = torch.arange(width).unsqueeze(0) < torch.tensor(widths).unsqueeze(1)
    ids = torch.stack([torch.randperm(vocab, generator=generator)[:width] for _ in widths])
    weight = torch.randn(vocab, hidden_size, generator=generator)
    bias = torch.randn(vocab, generator=generator)
    table = torch.zeros(len(widths), width, dtype=torch.long)
    return OwnOutput(table, ids, valid, weight, bias, torch.float32,
                     chunks=plan_chunks(widths, overhead=2))


def test_chunked_scores_equal_the_scores_of_one_padded_product():
    own = own_output([1, 2, 2, 7, 7, 8])
    assert len(own.chunks) > 1
    hidden = torch.randn(6, 3, 6)
    whole = OwnOutput(own.table, own.ids, own.valid, own.layer_weight, own.layer_bias,
                      own.dtype, chunks=[(0, 6, 8)])
    torch.testing.assert_close(own.logits(hidden), whole.logits(hidden))
    assert torch.isinf(own.logits(hidden)[0, :, 1:]).all()


def test_scores_are_the_output_layer_rows_of_each_sentences_own_ids():
    own = own_output([2, 3])
    hidden = torch.randn(2, 3, 6)
    for sentence, width in enumerate([2, 3]):
        ids = own.ids[sentence, :width]
        expected = hidden[sentence] @ own.layer_weight[ids].T + own.layer_bias[ids]
        torch.testing.assert_close(own.logits(hidden)[sentence, :, :width], expected)


def test_chunks_follow_sentences_dropped_from_the_batch():
    own = own_output([1, 2, 2, 7, 7, 8])
    kept = own.select(torch.tensor([0, 5])).select(torch.tensor([1]))   # compacted: 1 of 6
    hidden = torch.randn(1, 3, 6)
    ids = own.ids[5]
    expected = hidden[0] @ own.layer_weight[ids].T + own.layer_bias[ids]
    torch.testing.assert_close(kept.logits(hidden)[0], expected)
