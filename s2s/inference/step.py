"""The step interface between search and a model (or an ensemble of models).

Search drives decoding one token at a time through three calls and never looks inside what they
return: ``encode_for_steps`` gives an encoding (one entry per sentence) and a decoder state (one
row per hypothesis); ``output_space`` turns a restriction (s2s.shortlist) into what
``decode_step`` scores; ``decode_step`` gives log-probabilities over that space. The encoding and
the space keep or reorder sentences with ``select``; the state keeps or reorders rows. Row r of a
step belongs to sentence r // group, where group is the rows per sentence (beams).

``StepModel`` is generic in its output space: a model's ``decode_step`` takes the space its own
``output_space`` makes (Seq2Seq: s2s.model.output.OutputSpace; Ensemble: EnsembleSpace), which
search hands back unopened. Search takes any step model (``StepModel``, i.e. ``StepModel[Any]``).
"""

from __future__ import annotations

from typing import Any, Protocol, Self, TypeVar

import torch

from s2s.shortlist import Restriction


class Selectable(Protocol):
    def select(self, index: torch.Tensor) -> Any: ...


class OutputSpace(Selectable, Protocol):
    def select(self, index: torch.Tensor) -> Self: ...

    def vocab_ids(self, positions: torch.Tensor, group: int) -> torch.Tensor: ...

    def row_vocab_ids(self, row: int, positions: torch.Tensor, group: int) -> list[int]: ...


SpaceT = TypeVar("SpaceT", bound=OutputSpace)


class StepModel(Protocol[SpaceT]):
    """What search needs of a model whose output spaces are ``SpaceT``; s2s.model.Seq2Seq
    implements it, and so does s2s.inference.ensemble.Ensemble over several of them."""

    def encode_for_steps(self, src: torch.Tensor, src_lens: torch.Tensor
                         ) -> tuple[Selectable, Selectable]:
        """src: (batch, src_len); src_lens: (batch,) -> encoding, initial decoder state."""

    def output_space(self, shared: torch.Tensor, own: torch.Tensor, own_valid: torch.Tensor
                     ) -> SpaceT:
        """The ids each sentence may emit (see Restriction) as a space decode_step scores."""

    def decode_step(self, prev_tokens: torch.Tensor, encoded: Any, state: Any,
                    space: SpaceT | None = None) -> tuple[torch.Tensor, Any, torch.Tensor]:
        """prev_tokens: (rows,) vocabulary ids -> log-probabilities (rows, C), new state,
        attention weights (rows, src_len)."""


def start(model: StepModel[SpaceT], src: torch.Tensor, src_lens: torch.Tensor,
          restriction: Restriction | None) -> tuple[Any, Any, SpaceT | None]:
    """Encode a batch for decoding: encoding, initial state, and the output space of the
    restriction (None: the whole vocabulary)."""
    encoded, state = model.encode_for_steps(src, src_lens)
    space = None
    if restriction is not None:
        space = model.output_space(restriction.shared, restriction.own, restriction.own_valid)
    return encoded, state, space


def select_space(space: SpaceT | None, index: torch.Tensor) -> SpaceT | None:
    return None if space is None else space.select(index)


def vocab_ids(space: OutputSpace | None, positions: torch.Tensor, group: int) -> torch.Tensor:
    """Output-space positions (rows,) -> vocabulary ids (identity for the whole vocabulary)."""
    return positions if space is None else space.vocab_ids(positions, group)


def row_vocab_ids(space: OutputSpace | None, row: int, positions: torch.Tensor,
                  group: int) -> list[int]:
    """Output-space positions of decoder row ``row`` (t,) -> vocabulary ids."""
    return positions.tolist() if space is None else space.row_vocab_ids(row, positions, group)
