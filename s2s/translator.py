"""Translator: a model file -> translate(list of strings) -> results, in input order.

Sentences are encoded, sorted by length, cut into batches by a token budget, decoded, and put
back in input order. Empty or whitespace-only input gives empty output; input longer than the
model's maximum source length is an error (never silently truncated).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from s2s.data import pad, split_by_tokens
from s2s.model_file import LoadedModel, load_model_file
from s2s.search import greedy_search


class InputTooLongError(ValueError):
    """A sentence has more subword pieces than the model accepts."""


@dataclass
class Translation:
    text: str
    score: float
    tokens: list[str]


@dataclass
class DecodingOptions:
    max_len_a: float = 1.5
    max_len_b: int = 10
    batch_tokens: int = 4000


class Translator:
    def __init__(self, loaded: LoadedModel, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.model = loaded.model.to(self.device).eval()
        self.tokenizer = loaded.tokenizer
        self.meta = loaded.meta
        self.max_src_len = self.model.config.max_src_len

    @classmethod
    def from_file(cls, path: str | Path, device: str | torch.device = "cpu") -> Translator:
        return cls(load_model_file(path), device)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Piece ids per text ([] for blank text); raises InputTooLongError naming the line."""
        ids = self.tokenizer.src.encode([t.strip() for t in texts])
        for number, seq in enumerate(ids):
            if len(seq) > self.max_src_len:
                raise InputTooLongError(
                    f"input {number} has {len(seq)} subword pieces; the model accepts at most "
                    f"{self.max_src_len}")
        return ids

    @torch.no_grad()
    def translate(self, texts: Sequence[str], options: DecodingOptions | None = None
                  ) -> list[Translation]:
        options = options or DecodingOptions()
        sources = self.encode(texts)
        results = [Translation("", 0.0, []) for _ in texts]
        order = sorted((i for i, s in enumerate(sources) if s), key=lambda i: len(sources[i]))
        lengths = [len(s) for s in sources]
        for chunk in split_by_tokens(order, lengths, options.batch_tokens):
            src = pad([sources[i] for i in chunk]).to(self.device)
            src_lens = torch.tensor([lengths[i] for i in chunk], device=self.device)
            hyps = greedy_search(self.model, src, src_lens, options.max_len_a, options.max_len_b)
            for index, hyp in zip(chunk, hyps):
                results[index] = Translation(self.tokenizer.tgt.decode([hyp.tokens])[0],
                                             hyp.score, self.tokenizer.tgt.id_to_piece(hyp.tokens))
        return results
