"""Ensemble decoding: several models with the same vocabularies behind one step interface.

``Ensemble`` implements s2s.inference.step.StepModel over member models (each a StepModel,
usually a Seq2Seq; their sizes and configurations may differ, their source and target
vocabularies may not). Every member encodes the batch and scores every step; the ensemble's
log-probabilities are the mean of the members' log-probabilities: each member's log_softmax,
then their arithmetic mean, not renormalized (the log of the unnormalized geometric mean of the
members' distributions). A hypothesis's score is thus the mean of the scores its members give
it, and a token that any member forbids (-inf) stays forbidden. The attention weights are the
mean of the members' (for return_attention and replace_unk).

An ensemble of one returns its member's tensors unchanged, so it decodes exactly as the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from s2s.inference.step import OutputSpace, Selectable, StepModel


@dataclass(frozen=True)
class Members:
    """One selectable per member (an encoding or a decoder state), selected together."""

    parts: tuple[Selectable, ...]

    def select(self, index: torch.Tensor) -> Members:
        """Keep/reorder/repeat the entries (sentences or rows) of every member: index (n,)."""
        return Members(tuple(part.select(index) for part in self.parts))


@dataclass(frozen=True)
class EnsembleSpace:
    """The members' output spaces for one restriction. They map positions to vocabulary ids
    the same way (same restriction, same vocabulary), so the first member's maps them."""

    parts: tuple[OutputSpace, ...]

    def select(self, index: torch.Tensor) -> EnsembleSpace:
        """Keep/reorder sentences: index (new_batch,) of active sentence numbers."""
        return EnsembleSpace(tuple(part.select(index) for part in self.parts))

    def vocab_ids(self, positions: torch.Tensor, group: int) -> torch.Tensor:
        """positions (rows,) in each row's space -> vocabulary ids (rows,)."""
        return self.parts[0].vocab_ids(positions, group)

    def row_vocab_ids(self, row: int, positions: torch.Tensor, group: int) -> list[int]:
        """positions (t,) of decoder row ``row`` -> its vocabulary ids."""
        return self.parts[0].row_vocab_ids(row, positions, group)


def mean_of(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The element-wise mean of same-shaped tensors, in float32; one tensor comes back as it
    is (so an ensemble of one is bit-identical to its model)."""
    if len(tensors) == 1:
        return tensors[0]
    total = tensors[0].float().clone()
    for tensor in tensors[1:]:
        total += tensor.float()
    return total / len(tensors)


class Ensemble(nn.Module):
    """A StepModel over ``members`` (StepModels with the same source and target vocabularies).

    The encoding and the decoder state are ``Members`` (member i's at ``parts[i]``), the output
    space an ``EnsembleSpace``; shapes per member are the member's own (see Seq2Seq). An
    nn.Module when the members are, so ``modules()`` / ``parameters()`` reach them."""

    def __init__(self, members: Sequence[StepModel]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one model")
        self.steps: tuple[StepModel, ...] = tuple(members)   # what decoding calls, in order
        modules = [member for member in members if isinstance(member, nn.Module)]
        if len(modules) == len(members):
            # registered, so modules() / parameters() / to() reach them (plain step models,
            # as tests' scripted ones, are not modules)
            self.members = nn.ModuleList(modules)

    def __len__(self) -> int:
        return len(self.steps)

    def encode_for_steps(self, src: torch.Tensor, src_lens: torch.Tensor
                         ) -> tuple[Members, Members]:
        """src: (batch, src_len); src_lens: (batch,) -> every member's encoding (one entry per
        sentence) and initial decoder state (one row per sentence)."""
        pairs = [member.encode_for_steps(src, src_lens) for member in self.steps]
        return Members(tuple(p[0] for p in pairs)), Members(tuple(p[1] for p in pairs))

    def output_space(self, shared: torch.Tensor, own: torch.Tensor, own_valid: torch.Tensor
                     ) -> EnsembleSpace:
        """Every member's output space for the same restriction: shared (S,), own (batch, P),
        own_valid (batch, P) (see Seq2Seq.output_space)."""
        return EnsembleSpace(tuple(member.output_space(shared, own, own_valid)
                                   for member in self.steps))

    def decode_step(self, prev_tokens: torch.Tensor, encoded: Members, state: Members,
                    space: EnsembleSpace | None = None
                    ) -> tuple[torch.Tensor, Members, torch.Tensor]:
        """prev_tokens: (rows,) vocabulary ids -> the mean of the members' log-probabilities
        (rows, C) (C: the vocabulary or the space's size), every member's new state, the mean
        of their attention weights (rows, src_len)."""
        log_probs, states, weights = [], [], []
        for i, member in enumerate(self.steps):
            member_space = None if space is None else space.parts[i]
            scores, new_state, attention = member.decode_step(
                prev_tokens, encoded.parts[i], state.parts[i], member_space)
            log_probs.append(scores)
            states.append(new_state)
            weights.append(attention)
        return mean_of(log_probs), Members(tuple(states)), mean_of(weights)


def step_model(members: Sequence[StepModel]) -> StepModel:
    """What search should drive: the model itself for one member, else their Ensemble."""
    return members[0] if len(members) == 1 else Ensemble(members)
