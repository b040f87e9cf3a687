"""Shared test set-up: repo root on sys.path, one CPU thread, tiny models and tokenizers."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# A long training run shares the CPU: keep every test on one thread.
torch.set_num_threads(1)

from s2s.config import ModelConfig, TokenizerConfig  # noqa: E402
from s2s.model import Seq2Seq  # noqa: E402
from s2s.tokenizer import Tokenizer  # noqa: E402

SRC_WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "in", "mat", "hat", "big", "red"]
TGT_WORDS = ["le", "la", "chat", "chien", "assis", "sur", "un", "rouge", "grand"]


@pytest.fixture
def make_model():
    """Factory for a seeded tiny Seq2Seq (emb 16, hidden 32, vocab 40, no dropout)."""

    def make(seed: int = 0, vocab: int = 40, **overrides) -> Seq2Seq:
        values = dict(emb_dim=16, enc_hidden=32, dec_hidden=32, dropout=0.0, emb_dropout=0.0)
        values.update(overrides)
        torch.manual_seed(seed)
        return Seq2Seq(ModelConfig(**values), vocab, vocab)

    return make


def _sentences(count: int, seed: int, words: list[str]) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(2, 7))) for _ in range(count)]


@pytest.fixture(scope="session")
def corpus() -> tuple[list[str], list[str]]:
    """40 generated sentence pairs over a small alphabet (fits a 40-piece vocabulary)."""
    return _sentences(40, 1, SRC_WORDS), _sentences(40, 2, TGT_WORDS)


@pytest.fixture(scope="session")
def tokenizer(corpus) -> Tokenizer:
    """A joint SentencePiece tokenizer with 40 pieces trained on ``corpus``."""
    src, tgt = corpus
    return Tokenizer.train(src, tgt, TokenizerConfig(vocab_size=40), seed=1)


@pytest.fixture(scope="session")
def trained_demo_run(tmp_path_factory) -> Path:
    """A run folder of the demo task trained for 60 tiny steps (a few seconds): has best.pt,
    model.pt and step-*.pt training states."""
    from s2s.training.trainer import Trainer
    from tests.helpers import tiny_demo_config

    run_dir = tmp_path_factory.mktemp("demo_run")
    Trainer.build(tiny_demo_config(run_dir, max_steps=60, valid_every=20)).train()
    return run_dir
