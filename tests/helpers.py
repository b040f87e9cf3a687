"""Tiny, fast configurations shared by the tests."""

from __future__ import annotations

from pathlib import Path

from s2s.config import Config, config_from_dict


def tiny_demo_config(run_dir: Path, **train_overrides) -> Config:
    """The demo task at toy size: trains a few steps per second on one CPU thread."""
    train = {"seed": 3, "threads": 1, "batch_tokens": 300, "lr": 0.005, "valid_every": 5,
             "max_steps": 20, "log_every": 1, "valid_max_sentences": 10,
             "early_stopping_patience": 0, "label_smoothing": 0.1, **train_overrides}
    return config_from_dict({
        "name": "tiny", "out_dir": str(run_dir),
        "data": {"corpus": "demo", "demo_train_size": 400, "demo_valid_size": 10,
                 "demo_test_size": 10, "max_len_ratio": 10},
        "tokenizer": {"vocab_size": 60},
        "model": {"emb_dim": 16, "enc_hidden": 32, "dec_hidden": 32, "dropout": 0.1,
                  "emb_dropout": 0.1},
        "train": train,
    })
