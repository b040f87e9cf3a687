"""Attention weights: a distribution over the real source tokens, exactly zero on padding."""

from __future__ import annotations

import pytest
import torch

from s2s.training.data import collate


def padded_batch():
    generator = torch.Generator().manual_seed(3)
    src = [torch.randint(4, 40, (n,), generator=generator).tolist() for n in (7, 2, 4, 5)]
    tgt = [torch.randint(4, 40, (n,), generator=generator).tolist() for n in (3, 6, 2, 4)]
    return collate(src, tgt)


@pytest.mark.parametrize("kind", ["dot", "general", "bahdanau"])
def test_weights_sum_to_one_over_real_tokens_and_are_zero_on_padding(make_model, kind):
    model = make_model(attention=kind).eval()
    batch = padded_batch()
    assert len(set(batch.src_lens.tolist())) == 4  # really different source lengths
    with torch.no_grad():
        _, weights = model.teacher_forced(batch.src, batch.src_lens, batch.tgt_in)

    assert weights.shape == (4, batch.tgt_in.size(1), batch.src.size(1))
    real = torch.arange(batch.src.size(1)) < batch.src_lens.unsqueeze(1)  # (batch, src_len)
    real = real.unsqueeze(1).expand_as(weights)
    assert torch.all(weights[~real] == 0)
    assert torch.all(weights[real] > 0)
    sums = weights.sum(-1)
    torch.testing.assert_close(sums, torch.ones_like(sums), atol=1e-6, rtol=0)
