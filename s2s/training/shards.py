"""Prepared token data on disk, memory-mapped: one flat integer array per corpus side, with
per-pair lengths and offsets.

    <corpus>.<side>.tokens        the ids of every kept pair, back to back (uint16 when the
                                  vocabulary fits, else int32), raw little-endian
    <corpus>.<side>.lengths.npy   pieces per pair (uint16)
    <corpus>.<side>.offsets.npy   start of each pair in .tokens, and the end (int64, pairs + 1)
    <corpus>.<side>.sampled<k>.*  the same three files for sampled segmentation k of the same
                                  pairs (k = 1..tokenizer.sampled_copies; s2s.training.segmentation)

Opened with ``np.memmap``/``np.load(mmap_mode="r")``, so every process (training, resume,
each DDP rank) shares the operating system's page cache instead of holding its own copy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from s2s.ragged import flatten

SIDES = ("src", "tgt")


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest id type the prepared files use for a vocabulary."""
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(
        np.int32)


def shard_files(folder: Path, corpus: str, side: str, segmentation: int = 0
                ) -> dict[str, Path]:
    """The files of one corpus side (segmentation 0: the deterministic one, k: sampled k)."""
    stem = f"{corpus}.{side}" + (f".sampled{segmentation}" if segmentation else "")
    return {"tokens": folder / f"{stem}.tokens", "lengths": folder / f"{stem}.lengths.npy",
            "offsets": folder / f"{stem}.offsets.npy"}


class TokenShard:
    """One side of one corpus: ``shard[i]`` is pair i's ids (a numpy view, no copy)."""

    def __init__(self, tokens: np.ndarray, lengths: np.ndarray, offsets: np.ndarray):
        self.tokens = tokens
        self.lengths = lengths
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.tokens[self.offsets[index]:self.offsets[index + 1]]

    @classmethod
    def from_lists(cls, sequences: list[list[int]]) -> TokenShard:
        """An in-memory shard (tests, small validation sets)."""
        tokens, lengths = flatten(sequences)
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(tokens, lengths.astype(np.uint16), offsets)

    @classmethod
    def open(cls, folder: Path, corpus: str, side: str, dtype: np.dtype,
             segmentation: int = 0) -> TokenShard:
        files = shard_files(folder, corpus, side, segmentation)
        lengths = np.load(files["lengths"], mmap_mode="r")
        offsets = np.load(files["offsets"], mmap_mode="r")
        size = int(offsets[-1]) if len(offsets) else 0
        if files["tokens"].stat().st_size != size * dtype.itemsize:
            raise ValueError(f"{files['tokens']} does not hold the {size} ids its offsets say")
        tokens = (np.memmap(files["tokens"], dtype=dtype, mode="r", shape=(size,)) if size
                  else np.zeros(0, dtype=dtype))
        return cls(tokens, lengths, offsets)


class ShardWriter:
    """Appends encoded chunks of one corpus side to its files; ``close`` writes lengths and
    offsets and returns the files' checksums."""

    def __init__(self, folder: Path, corpus: str, side: str, dtype: np.dtype,
                 segmentation: int = 0):
        self.files = shard_files(folder, corpus, side, segmentation)
        self.dtype = dtype
        self._handle = open(self.files["tokens"], "wb")  # noqa: SIM115 (closed by close())
        self._hash = hashlib.sha256()
        self._lengths: list[np.ndarray] = []

    def append(self, flat: np.ndarray, lengths: np.ndarray) -> None:
        data = np.ascontiguousarray(flat, dtype=self.dtype).tobytes()
        self._handle.write(data)
        self._hash.update(data)
        self._lengths.append(lengths.astype(np.uint16))

    def close(self) -> dict[str, str]:
        self._handle.close()
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.uint16)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        np.save(self.files["lengths"], lengths)
        np.save(self.files["offsets"], offsets)
        return {self.files["tokens"].name: self._hash.hexdigest(),
                self.files["lengths"].name: file_sha256(self.files["lengths"]),
                self.files["offsets"].name: file_sha256(self.files["offsets"])}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class CorpusShards:
    """A prepared corpus: both sides, its sampling weight, and (src, tgt) of each sampled
    segmentation of the same pairs."""

    name: str
    src: TokenShard
    tgt: TokenShard
    weight: float = 1.0
    sampled: list[tuple[TokenShard, TokenShard]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.src)

    def sides(self, segmentation: int) -> tuple[TokenShard, TokenShard]:
        return (self.src, self.tgt) if segmentation == 0 else self.sampled[segmentation - 1]


class TrainingSet:
    """Several prepared corpora seen as one index space (corpus after corpus).

    Holds only the corpora's memory maps and two length arrays over all pairs: ``src_lens``
    and ``tgt_lens`` (target pieces + EOS), int32. With sampled segmentations
    (``segmentations`` > 1), ``segmented_src_lens``/``segmented_tgt_lens`` hold the lengths
    of every segmented index ``segmentation * len(self) + pair`` (without, they are
    ``src_lens``/``tgt_lens``).
    """

    def __init__(self, corpora: list[CorpusShards]):
        self.corpora = corpora
        sizes = np.array([len(c) for c in corpora], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(sizes)])
        self.segmentations = 1 + len(corpora[0].sampled) if corpora else 1
        if any(len(c.sampled) != self.segmentations - 1 for c in corpora):
            raise ValueError("the corpora have different numbers of sampled segmentations")
        self.src_lens, self.tgt_lens = self._lengths(0)
        self.segmented_src_lens, self.segmented_tgt_lens = self.src_lens, self.tgt_lens
        if self.segmentations > 1:
            lengths = [self._lengths(k) for k in range(self.segmentations)]
            self.segmented_src_lens = np.concatenate([src for src, _ in lengths])
            self.segmented_tgt_lens = np.concatenate([tgt for _, tgt in lengths])

    def _lengths(self, segmentation: int) -> tuple[np.ndarray, np.ndarray]:
        """(source lengths, target lengths + 1) of every pair in one segmentation, int32."""
        sides = [c.sides(segmentation) for c in self.corpora]
        return (np.concatenate([np.asarray(src.lengths, dtype=np.int32) for src, _ in sides]),
                np.concatenate([np.asarray(tgt.lengths, dtype=np.int32) for _, tgt in sides])
                + 1)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def pair(self, index: int, segmentation: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Pair ``index`` (global): its source and target ids in ``segmentation``."""
        corpus = int(np.searchsorted(self.starts, index, side="right")) - 1
        local = index - int(self.starts[corpus])
        src, tgt = self.corpora[corpus].sides(segmentation)
        return src[local], tgt[local]

    def segmented_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The pair at segmented index ``segmentation * len(self) + pair``."""
        segmentation, pair = divmod(index, len(self))
        return self.pair(pair, segmentation)

    def counts(self) -> dict[str, int]:
        return {c.name: len(c) for c in self.corpora}
