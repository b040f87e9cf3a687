"""Seq2Seq behaviour: padding invariance, overfitting a tiny set, tied embeddings, input feeding."""

from __future__ import annotations

import pytest
import torch

from s2s.config import ConfigError, config_from_dict
from s2s.constants import PAD_ID
from s2s.training.data import batch_loss, collate

CELLS_AND_FEEDING = [("lstm", False), ("lstm", True), ("gru", False), ("gru", True)]


def ids(generator: torch.Generator, length: int, vocab: int = 40) -> list[int]:
    return torch.randint(4, vocab, (length,), generator=generator).tolist()


@pytest.fixture
def alone_and_padded():
    """One pair alone, and the same pair (source length 3) in a batch with longer sentences.
    Returns (alone batch, padded batch, row of the pair in the padded batch)."""
    generator = torch.Generator().manual_seed(11)
    src, tgt = ids(generator, 3), ids(generator, 4)
    others_src = [ids(generator, 8), ids(generator, 5)]
    others_tgt = [ids(generator, 9), ids(generator, 2)]
    alone = collate([src], [tgt])
    batch = collate([*others_src, src], [*others_tgt, tgt])  # collate re-sorts the rows
    row = batch.src_lens.tolist().index(3)
    assert batch.src[row, :3].tolist() == src and row != 0
    assert batch.src.size(1) == 8 and batch.tgt_out.size(1) == 10  # really padded
    return alone, batch, row


@pytest.mark.parametrize(("cell", "feeding"), CELLS_AND_FEEDING)
def test_encoder_memory_is_padding_invariant(make_model, alone_and_padded, cell, feeding):
    model = make_model(cell=cell, input_feeding=feeding).eval()
    alone, batch, row = alone_and_padded
    with torch.no_grad():
        encoded_alone, _ = model.encode(alone.src, alone.src_lens)
        encoded_batch, _ = model.encode(batch.src, batch.src_lens)
    torch.testing.assert_close(encoded_batch.memory[row, :3], encoded_alone.memory[0],
                               atol=1e-5, rtol=0)


@pytest.mark.parametrize(("cell", "feeding"), CELLS_AND_FEEDING)
def test_encoder_final_states_are_padding_invariant(make_model, alone_and_padded, cell, feeding):
    model = make_model(cell=cell, input_feeding=feeding).eval()
    alone, batch, row = alone_and_padded
    with torch.no_grad():
        _, hidden_alone, cell_alone = model.encoder(alone.src, alone.src_lens)
        _, hidden_batch, cell_batch = model.encoder(batch.src, batch.src_lens)
    torch.testing.assert_close(hidden_batch[row], hidden_alone[0], atol=1e-5, rtol=0)
    assert (cell_alone is None) == (cell == "gru")
    if cell == "lstm":
        torch.testing.assert_close(cell_batch[row], cell_alone[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize(("cell", "feeding"), CELLS_AND_FEEDING)
def test_sentence_loss_is_padding_invariant(make_model, alone_and_padded, cell, feeding):
    model = make_model(cell=cell, input_feeding=feeding).eval()
    alone, batch, row = alone_and_padded
    with torch.no_grad():
        loss_alone = model.sentence_losses(alone.src, alone.src_lens, alone.tgt_in, alone.tgt_out)
        loss_batch = model.sentence_losses(batch.src, batch.src_lens, batch.tgt_in, batch.tgt_out)
    assert loss_alone.shape == (1,) and loss_batch.shape == (3,)
    torch.testing.assert_close(loss_batch[row], loss_alone[0], atol=1e-5, rtol=0)


def test_model_overfits_a_tiny_fixed_set(make_model):
    model = make_model(vocab=30)
    generator = torch.Generator().manual_seed(5)
    lengths = torch.randint(3, 7, (16,), generator=generator).tolist()
    batch = collate([ids(generator, n, 30) for n in lengths[:8]],
                    [ids(generator, n, 30) for n in lengths[8:]])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        loss = batch_loss(model, batch)
        loss.backward()
        optimizer.step()
        if loss.item() / batch.n_tokens < 0.02:
            break
    model.eval()
    with torch.no_grad():
        per_token = batch_loss(model, batch).item() / batch.n_tokens
    assert per_token < 0.05


def test_tied_embeddings_share_the_output_weight(make_model):
    model = make_model(emb_dim=32, tie_embeddings=True)
    assert model.output.linear.weight is model.decoder.embed.weight
    assert model.output.linear.weight.data_ptr() == model.decoder.embed.weight.data_ptr()


def test_untied_model_has_its_own_output_weight(make_model):
    model = make_model(emb_dim=32)
    assert model.output.linear.weight is not model.decoder.embed.weight


def test_glorot_init_bounds_every_matrix_and_keeps_padding_rows_zero(make_model):
    model = make_model(emb_dim=32, init="glorot")
    for name, param in model.named_parameters():
        if param.dim() > 1:
            limit = (6 / (param.size(0) + param.size(1))) ** 0.5
            assert param.abs().max() <= limit, name
        else:
            assert param.abs().max() <= 0.1, name
    assert not model.encoder.embed.weight[PAD_ID].any()
    assert not model.decoder.embed.weight[PAD_ID].any()
    assert make_model(emb_dim=32).encoder.embed.weight.abs().max() > 1  # torch's N(0, 1)


def test_uniform_init_bounds_every_parameter(make_model):
    model = make_model(emb_dim=32, init="uniform", init_range=0.05)
    assert all(param.abs().max() <= 0.05 for param in model.parameters())
    assert model.encoder.embed.weight.abs().max() > 0.04
    assert not model.decoder.embed.weight[PAD_ID].any()


def test_tie_embeddings_with_different_sizes_is_a_config_error():
    with pytest.raises(ConfigError, match=r"model\.tie_embeddings"):
        config_from_dict({"model": {"tie_embeddings": True, "emb_dim": 16, "dec_hidden": 32}})


def small_batch():
    generator = torch.Generator().manual_seed(7)
    return collate([ids(generator, n) for n in (5, 3, 4)], [ids(generator, n) for n in (4, 6, 2)])


@pytest.mark.parametrize("feeding", [False, True])
def test_model_trains_with_and_without_input_feeding(make_model, feeding):
    model = make_model(input_feeding=feeding)
    assert model.decoder.rnn.input_size == 16 + (32 if feeding else 0)
    batch = small_batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = batch_loss(model, batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


def test_input_feeding_does_not_change_output_shapes(make_model):
    batch = small_batch()
    outputs = {}
    for feeding in (False, True):
        model = make_model(input_feeding=feeding).eval()
        with torch.no_grad():
            attentional, weights = model.teacher_forced(batch.src, batch.src_lens, batch.tgt_in)
        outputs[feeding] = (attentional.shape, weights.shape)
    assert outputs[False] == outputs[True] == (
        (3, batch.tgt_in.size(1), 32), (3, batch.tgt_in.size(1), batch.src.size(1)))
