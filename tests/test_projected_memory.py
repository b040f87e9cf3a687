"""Decoding steps over the projected memory (Decoder.project_memory) against the plain ones."""

from __future__ import annotations

import pytest
import torch

from s2s.model.decoder import ProjectedEncoderOutput


@pytest.mark.parametrize("attention", ["general", "bahdanau", "dot"])
def test_a_step_over_the_projected_memory_equals_the_plain_step(make_model, attention):
    model = make_model(seed=3, attention=attention).eval()
    src = torch.randint(4, 40, (3, 6), generator=torch.Generator().manual_seed(2))
    src_lens = torch.tensor([6, 4, 2])
    src[1, 4:], src[2, 2:] = 0, 0
    tokens = torch.tensor([2, 9, 17])
    with torch.no_grad():
        encoded, state = model.encode(src, src_lens)
        plain = model.decode_step(tokens, encoded, state)
        projected = model.decode_step(tokens, model.decoder.project_memory(encoded), state)
    torch.testing.assert_close(projected[0], plain[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(projected[2], plain[2])


def test_search_encodes_with_the_projected_memory(make_model):
    model = make_model(seed=3).eval()
    src = torch.randint(4, 40, (2, 5))
    with torch.no_grad():
        encoded, _ = model.encode_for_steps(src, torch.full((2,), 5))
    assert isinstance(encoded, ProjectedEncoderOutput)
    assert encoded.memory.shape == (2, 5, model.config.dec_hidden)
