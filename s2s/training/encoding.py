"""Encoding and filtering of corpus chunks, in the prepare step's worker processes.

This module imports only numpy and SentencePiece, so a spawned worker (where the platform
cannot fork) starts in well under a second. A chunk goes in as two byte ranges of plain files,
which the worker reads itself (or, for compressed files, as two lists of lines read by the main
process), and comes back as flat token arrays plus lengths: no per-pair Python objects cross
the process boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sentencepiece as spm

from s2s.ragged import flatten
from s2s.training.segmentation import SegmentSampling, sample_encode, sampling_seed


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
    """Kept pairs of a chunk: flat token ids and per-pair lengths of each side; ``sampled``:
    the same four arrays for each sampled segmentation of the kept pairs."""

    src_tokens: np.ndarray
    src_lengths: np.ndarray
    tgt_tokens: np.ndarray
    tgt_lengths: np.ndarray
    stats: FilterStats = field(default_factory=FilterStats)
    sampled: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=list)


class CorpusTextError(ValueError):
    """A chunk of a corpus that is not UTF-8 text, or whose sides differ in lines."""


@dataclass(frozen=True)
class FileRange:
    """Bytes [start, end) of a plain text file: whole lines, each ending in "\n" (the file's
    last line may lack it)."""

    path: str
    start: int
    end: int


@dataclass(frozen=True)
class Exclusions:
    """Training pairs left out: each corpus's held-out pairs, and every pair whose source is
    a held-out source (counted as ``holdout_duplicate``)."""

    held_pairs: dict[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    held_sources: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ChunkTask:
    """One chunk of a corpus: its lines (``lines``) or where to read them (``ranges``); with
    ``sampling``, its kept pairs are also encoded with sampled segmentations (seeded by the
    corpus and the chunk's ``number``)."""

    corpus: str
    rule: LengthFilter
    dtype: str
    ranges: tuple[FileRange, FileRange] | None = None
    lines: tuple[list[str], list[str]] | None = None
    number: int = 0
    sampling: SegmentSampling | None = None


_processors: tuple[spm.SentencePieceProcessor, spm.SentencePieceProcessor] | None = None
_exclusions = Exclusions()


def load_processors(src_model: bytes, tgt_model: bytes | None,
                    exclusions: Exclusions = Exclusions()) -> None:
    """Worker initializer: the SentencePiece models (tgt None = joint vocabulary) and the
    pairs to leave out."""
    global _processors, _exclusions
    _exclusions = exclusions
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


def read_range(part: FileRange) -> list[str]:
    """The lines of a byte range, without line ends (as ``corpus_files.iter_lines``)."""
    with open(part.path, "rb") as handle:
        handle.seek(part.start)
        data = handle.read(part.end - part.start)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CorpusTextError(f"corpus file {part.path} is not UTF-8: {error}") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def chunk_lines(task: ChunkTask) -> tuple[list[str], list[str]]:
    if task.lines is not None:
        return task.lines
    assert task.ranges is not None
    src_lines, tgt_lines = read_range(task.ranges[0]), read_range(task.ranges[1])
    if len(src_lines) != len(tgt_lines):
        raise CorpusTextError(f"{task.ranges[0].path} and {task.ranges[1].path} are not "
                              "line-aligned")
    return src_lines, tgt_lines


def drop_excluded(src_lines: list[str], tgt_lines: list[str], corpus: str, stats: FilterStats
                  ) -> tuple[list[str], list[str]]:
    """The pairs that ``_exclusions`` keeps; counts holdout duplicates in ``stats``."""
    held_pairs = _exclusions.held_pairs.get(corpus, frozenset())
    held_sources = _exclusions.held_sources
    if not held_pairs and not held_sources:
        return src_lines, tgt_lines
    kept_src, kept_tgt = [], []
    for src, tgt in zip(src_lines, tgt_lines):
        if (src, tgt) in held_pairs:
            continue
        if src in held_sources:
            stats.holdout_duplicate += 1
            continue
        kept_src.append(src)
        kept_tgt.append(tgt)
    return kept_src, kept_tgt


def encode_chunk(task: ChunkTask) -> EncodedChunk:
    """Read (when given as ranges), leave out the excluded pairs, encode and filter a chunk;
    then sample the kept pairs' segmentations when the task asks for it."""
    assert _processors is not None, "load_processors first"
    stats = FilterStats()
    lines = drop_excluded(*chunk_lines(task), task.corpus, stats)
    stats.read = len(lines[0])
    dtype = np.dtype(task.dtype)
    ids = [processor.encode(side_lines, out_type=int)
           for processor, side_lines in zip(_processors, lines)]
    (src_flat, src_lengths), (tgt_flat, tgt_lengths) = (flatten(side, dtype) for side in ids)
    keep = keep_mask(src_lengths, tgt_lengths, task.rule, stats)
    stats.kept = int(keep.sum())
    src_flat, src_lengths = select(src_flat, src_lengths, keep)
    tgt_flat, tgt_lengths = select(tgt_flat, tgt_lengths, keep)
    chunk = EncodedChunk(src_flat, src_lengths, tgt_flat, tgt_lengths, stats)
    if task.sampling is not None:
        kept = np.flatnonzero(keep).tolist()
        kept_lines = [[side[i] for i in kept] for side in lines]
        kept_ids = [[side[i] for i in kept] for side in ids]
        chunk.sampled = [sampled_segmentation(task, number, kept_lines, kept_ids)
                         for number in range(1, task.sampling.copies + 1)]
    return chunk


def sampled_segmentation(task: ChunkTask, number: int, lines: list[list[str]],
                         best: list[list[list[int]]]
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sampled segmentation ``number`` of a chunk's kept pairs (``lines`` per side, encoded
    deterministically as ``best``): a pair whose sample ``task.rule`` would drop keeps
    ``best``, so every segmentation holds the same pairs."""
    assert _processors is not None and task.sampling is not None
    sampling = task.sampling
    sides = [sample_encode(processor, side_lines, sampling.alpha,
                           sampling_seed(sampling.seed, task.corpus, task.number, number, side))
             for side, (processor, side_lines) in enumerate(zip(_processors, lines))]
    src_lengths, tgt_lengths = (np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
                                for ids in sides)
    fits = keep_mask(src_lengths, tgt_lengths, task.rule, FilterStats()).tolist()
    dtype = np.dtype(task.dtype)
    (src_flat, src_lengths), (tgt_flat, tgt_lengths) = (
        flatten([ids if ok else fallback for ids, fallback, ok in zip(sampled, kept, fits)],
                dtype) for sampled, kept in zip(sides, best))
    return src_flat, src_lengths, tgt_flat, tgt_lengths
