"""A stand-in for Seq2Seq whose next-token distribution is a fixed bigram table.

Search only talks to a model through the step interface (s2s.inference.step.StepModel);
scripting the distribution makes the expected search result exact.
"""

from __future__ import annotations

import torch

from s2s.constants import BOS_ID, EOS_ID
from s2s.model.decoder import DecoderState, EncoderOutput
from s2s.model.output import OutputSpace, SharedRows

VOCAB = 8


class ScriptedModel:
    """log P(next | prev) = log_softmax(table[prev]); the source is ignored."""

    def __init__(self, transitions: dict[int, dict[int, float]], default: float = -20.0):
        self.table = torch.full((VOCAB, VOCAB), default)
        for prev, nexts in transitions.items():
            for token, logit in nexts.items():
                self.table[prev, token] = logit

    def encode_for_steps(self, src: torch.Tensor, src_lens: torch.Tensor):
        batch, length = src.shape
        memory = torch.zeros(batch, length, 2)
        encoded = EncoderOutput(memory, memory, src != 0)
        return encoded, DecoderState(torch.zeros(1, batch, 2), None, None)

    def output_space(self, shared: torch.Tensor, own: torch.Tensor, own_valid: torch.Tensor):
        """Only the shared ids (no per-sentence ids)."""
        return OutputSpace(SharedRows(shared, None, None))

    def decode_step(self, prev: torch.Tensor, encoded: EncoderOutput, state: DecoderState,
                    space: OutputSpace | None = None):
        logits = self.table[prev]
        if space is not None:
            logits = logits[:, space.shared.ids]
        log_probs = torch.log_softmax(logits, dim=-1)
        weights = torch.softmax(torch.zeros(prev.size(0), encoded.memory.size(1)), dim=-1)
        return log_probs, state, weights


def source(batch: int = 1, length: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """A dummy source batch: (batch, length) ids and lengths."""
    return torch.full((batch, length), 5), torch.full((batch,), length)


__all__ = ["BOS_ID", "EOS_ID", "ScriptedModel", "source"]
