"""A stand-in for Seq2Seq whose next-token distribution is a fixed bigram table.

Search only talks to a model through ``encode`` and ``decode_step``; scripting the
distribution makes the expected search result exact.
"""

from __future__ import annotations

import torch

from s2s.decoder import DecoderState, EncoderOutput
from s2s.tokenizer import BOS_ID, EOS_ID

VOCAB = 8


class ScriptedModel:
    """log P(next | prev) = log_softmax(table[prev]); the source is ignored."""

    def __init__(self, transitions: dict[int, dict[int, float]], default: float = -20.0):
        self.table = torch.full((VOCAB, VOCAB), default)
        for prev, nexts in transitions.items():
            for token, logit in nexts.items():
                self.table[prev, token] = logit

    def encode(self, src: torch.Tensor, src_lens: torch.Tensor):
        batch, length = src.shape
        memory = torch.zeros(batch, length, 2)
        encoded = EncoderOutput(memory, memory, src != 0)
        return encoded, DecoderState(torch.zeros(1, batch, 2), None, None)

    encode_for_steps = encode

    def decode_step(self, prev: torch.Tensor, encoded: EncoderOutput, state: DecoderState):
        log_probs = torch.log_softmax(self.table[prev], dim=-1)
        weights = torch.softmax(torch.zeros(prev.size(0), encoded.memory.size(1)), dim=-1)
        return log_probs, state, weights


def source(batch: int = 1, length: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """A dummy source batch: (batch, length) ids and lengths."""
    return torch.full((batch, length), 5), torch.full((batch,), length)


__all__ = ["BOS_ID", "EOS_ID", "ScriptedModel", "source"]
