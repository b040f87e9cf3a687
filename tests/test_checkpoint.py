"""Checkpoint and model files: round trip, refusal of bad files, atomic writes, rotation."""

from __future__ import annotations

import random

import pytest
import torch

from s2s.checkpoint import (
    FORMAT_VERSION,
    MODEL_FORMAT,
    TRAIN_STATE_FORMAT,
    CheckpointError,
    atomic_save,
    average_state_dicts,
    load_checkpoint,
)
from s2s.model.model_file import load_model_file, save_model_file
from s2s.training.run_folder import RunFolder


@pytest.fixture
def model_file(tmp_path, make_model, tokenizer):
    """(path, model) of a saved model file for a tiny model over ``tokenizer``."""
    model = make_model(vocab=len(tokenizer.src))
    path = tmp_path / "model.pt"
    save_model_file(path, model, tokenizer, meta={"step": 7})
    return path, model


def test_model_file_round_trip_keeps_the_weights(model_file):
    path, model = model_file
    loaded = load_model_file(path)
    original, restored = model.state_dict(), loaded.model.state_dict()
    assert restored.keys() == original.keys()
    for key, tensor in original.items():
        assert torch.equal(restored[key], tensor), key
    assert loaded.model.config == model.config
    assert loaded.meta == {"step": 7}


def test_model_file_round_trip_keeps_the_tokenizer(model_file, tokenizer, corpus):
    loaded = load_model_file(model_file[0])
    sentences = corpus[0][:10] + corpus[1][:10]
    assert loaded.tokenizer.joint
    assert loaded.tokenizer.src.encode(sentences) == tokenizer.src.encode(sentences)
    assert loaded.tokenizer.tgt.encode(sentences) == tokenizer.tgt.encode(sentences)


def test_truncated_file_is_refused_naming_the_path(model_file):
    path = model_file[0]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path, MODEL_FORMAT)
    assert str(path) in str(error.value)


def test_random_bytes_are_refused(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(random.Random(0).randbytes(4096))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path, MODEL_FORMAT)


@pytest.mark.parametrize("content", [b"a", b"J", b"K", b"\x80\x02."])
def test_short_garbage_files_are_refused_with_checkpoint_error(tmp_path, content):
    path = tmp_path / "garbage.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path, MODEL_FORMAT)


def test_file_of_the_other_format_is_refused_naming_both(tmp_path):
    path = tmp_path / "state.pt"
    atomic_save({"format": TRAIN_STATE_FORMAT, "version": FORMAT_VERSION}, path)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path, MODEL_FORMAT)
    assert TRAIN_STATE_FORMAT in str(error.value)
    assert MODEL_FORMAT in str(error.value)


def test_unknown_version_is_refused_naming_the_version(tmp_path):
    path = tmp_path / "future.pt"
    atomic_save({"format": MODEL_FORMAT, "version": 999}, path)
    with pytest.raises(CheckpointError, match="999"):
        load_checkpoint(path, MODEL_FORMAT)


def test_atomic_save_replaces_the_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "state.pt"
    atomic_save({"value": torch.tensor([1.0])}, path)
    atomic_save({"value": torch.tensor([2.0])}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]
    assert torch.load(path, weights_only=True)["value"].item() == 2.0


def test_average_of_identical_state_dicts_is_the_state_dict(make_model):
    state = make_model().state_dict()
    averaged = average_state_dicts([state, state, state])
    assert averaged.keys() == state.keys()
    for key, tensor in state.items():
        assert averaged[key].dtype == tensor.dtype
        assert torch.equal(averaged[key], tensor), key


def test_run_folder_keeps_the_last_states_and_finds_the_newest(tmp_path):
    checkpoints = RunFolder(tmp_path, keep_last=2)
    for step in (5, 10, 50, 100, 200):
        checkpoints.save_state({"format": TRAIN_STATE_FORMAT, "step": step}, step)
    assert checkpoints.states() == [checkpoints.state_file(100), checkpoints.state_file(200)]
    assert checkpoints.latest_state() == checkpoints.state_file(200)
    assert torch.load(checkpoints.latest_state(), weights_only=True)["step"] == 200


def test_a_pickled_object_is_refused_without_advice_to_load_it_unsafely(tmp_path):
    path = tmp_path / "evil.pt"
    path.write_bytes(b"\x80\x02cbuiltins\neval\nq\x00.")     # a pickle naming builtins.eval
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(path, MODEL_FORMAT)
    assert "weights_only" not in str(refused.value)
    assert "refuses" in str(refused.value)
