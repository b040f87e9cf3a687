"""Checkpoint averaging: the mean of several training states' weights as a model file.

Each state contributes what its run's model files hold (s2s.training.ema.model_weights): the
EMA weights of a run with ``train.ema_decay`` on, else the raw weights."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from s2s.checkpoint import (
    TRAIN_STATE_FORMAT,
    CheckpointError,
    average_state_dicts,
    load_checkpoint,
)
from s2s.config import saved_config_from_dict
from s2s.model import Seq2Seq, upgrade_state_dict
from s2s.model.model_file import (
    save_model_file,
    shortlist_from_payload,
    tokenizer_from_payload,
)
from s2s.training.ema import model_weights


def average_training_states(paths: Sequence[str | Path], output: str | Path) -> None:
    """Average the model weights of training states of one run (their EMA weights where they
    carry them) and write a model file."""
    if not paths:
        raise CheckpointError("no checkpoint to average")
    states = [load_checkpoint(path, TRAIN_STATE_FORMAT) for path in paths]
    configs = [saved_config_from_dict(state["config"]) for state in states]
    if any(c.model != configs[0].model for c in configs):
        raise CheckpointError("checkpoints to average have different model configs")
    tokenizer = tokenizer_from_payload(states[-1])
    model = Seq2Seq(configs[0].model, len(tokenizer.src), len(tokenizer.tgt))
    averaged = average_state_dicts([upgrade_state_dict(model_weights(state), state["version"])
                                     for state in states])
    meta = {"averaged_from": [str(p) for p in paths],
            "steps": [state["progress"]["step"] for state in states],
            "ema": [bool(state.get("ema")) for state in states],
            "src_lang": configs[0].data.src_lang, "tgt_lang": configs[0].data.tgt_lang}
    save_model_file(output, model, tokenizer, meta, averaged, shortlist_from_payload(states[-1]))
