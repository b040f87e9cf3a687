"""Gradient clipping by total norm, as the trainer does it (s2s/train.py, train_step)."""

from __future__ import annotations

import math

import torch

from s2s.training.data import batch_loss, collate


def test_clip_grad_norm_bounds_the_total_norm_over_all_parameters(make_model):
    model = make_model()
    generator = torch.Generator().manual_seed(2)
    src = [torch.randint(4, 40, (n,), generator=generator).tolist() for n in (6, 3)]
    tgt = [torch.randint(4, 40, (n,), generator=generator).tolist() for n in (4, 5)]
    (1e6 * batch_loss(model, collate(src, tgt))).backward()  # a huge loss scale
    max_norm = 1.0

    pre_clip = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)

    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(grads) == len(list(model.parameters()))
    total = math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads))
    assert total <= max_norm * (1 + 1e-6)
    assert total > 0.99 * max_norm  # scaled down to the bound, not zeroed
    assert float(pre_clip) > 1e3 * max_norm
