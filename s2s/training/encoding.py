"""Encoding and filtering of corpus chunks, in the prepare step's worker processes.

This module imports only numpy and SentencePiece, so a spawned worker starts in well under a
second. A chunk goes in as two lists of lines and comes back as flat token arrays plus lengths:
no per-pair Python objects cross the process boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sentencepiece as spm

from s2s.ragged import flatten


@dataclass(frozen=True)
class LengthFilter:
    """Drop a pair with an empty side, a side over ``max_len`` pieces or a longer/shorter
    length ratio over ``max_ratio``."""

    max_len: int
    max_ratio: float


@dataclass
class FilterStats:
    """Pairs seen and why pairs were dropped."""

    read: int = 0
    kept: int = 0
    empty: int = 0
    too_long: int = 0
    ratio: int = 0
    held_out: int = 0
    holdout_duplicate: int = 0

    def add(self, other: FilterStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class EncodedChunk:
    """Kept pairs of a chunk: flat token ids and per-pair lengths of each side."""

    src_tokens: np.ndarray
    src_lengths: np.ndarray
    tgt_tokens: np.ndarray
    tgt_lengths: np.ndarray
    stats: FilterStats = field(default_factory=FilterStats)


_processors: tuple[spm.SentencePieceProcessor, spm.SentencePieceProcessor] | None = None


def load_processors(src_model: bytes, tgt_model: bytes | None) -> None:
    """Worker initializer: the SentencePiece models (tgt None = joint vocabulary)."""
    global _processors
    src = spm.SentencePieceProcessor()
    src.LoadFromSerializedProto(src_model)
    tgt = src
    if tgt_model is not None:
        tgt = spm.SentencePieceProcessor()
        tgt.LoadFromSerializedProto(tgt_model)
    _processors = (src, tgt)


def keep_mask(src_lengths: np.ndarray, tgt_lengths: np.ndarray, rule: LengthFilter,
              stats: FilterStats) -> np.ndarray:
    """(pairs,) bool: which pairs pass ``rule``; counts the dropped ones in ``stats``."""
    empty = (src_lengths == 0) | (tgt_lengths == 0)
    too_long = ~empty & ((src_lengths > rule.max_len) | (tgt_lengths > rule.max_len))
    longer = np.maximum(src_lengths, tgt_lengths)
    shorter = np.maximum(np.minimum(src_lengths, tgt_lengths), 1)
    ratio = ~empty & ~too_long & (longer / shorter > rule.max_ratio)
    stats.empty += int(empty.sum())
    stats.too_long += int(too_long.sum())
    stats.ratio += int(ratio.sum())
    return ~(empty | too_long | ratio)


def select(flat: np.ndarray, lengths: np.ndarray, keep: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """The flat ids and lengths of the kept sequences only."""
    return flat[np.repeat(keep, lengths)], lengths[keep]


def encode_chunk(task: tuple[list[str], list[str], LengthFilter, str]) -> EncodedChunk:
    """Encode and filter one chunk: (source lines, target lines, filter, numpy dtype name)."""
    src_lines, tgt_lines, rule, dtype = task
    assert _processors is not None, "load_processors first"
    src_sp, tgt_sp = _processors
    stats = FilterStats(read=len(src_lines))
    src_flat, src_lengths = flatten(src_sp.encode(src_lines, out_type=int), np.dtype(dtype))
    tgt_flat, tgt_lengths = flatten(tgt_sp.encode(tgt_lines, out_type=int), np.dtype(dtype))
    keep = keep_mask(src_lengths, tgt_lengths, rule, stats)
    stats.kept = int(keep.sum())
    src_flat, src_lengths = select(src_flat, src_lengths, keep)
    tgt_flat, tgt_lengths = select(tgt_flat, tgt_lengths, keep)
    return EncodedChunk(src_flat, src_lengths, tgt_flat, tgt_lengths, stats)
