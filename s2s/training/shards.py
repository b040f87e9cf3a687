"""Prepared token data on disk, memory-mapped: one flat integer array per corpus side, with
per-pair lengths and offsets.

    <corpus>.<side>.tokens        the ids of every kept pair, back to back (uint16 when the
                                  vocabulary fits, else int32), raw little-endian
    <corpus>.<side>.lengths.npy   pieces per pair (uint16)
    <corpus>.<side>.offsets.npy   start of each pair in .tokens, and the end (int64, pairs + 1)

Opened with ``np.memmap``/``np.load(mmap_mode="r")``, so every process (training, resume,
each DDP rank) shares the operating system's page cache instead of holding its own copy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from s2s.ragged import flatten

SIDES = ("src", "tgt")


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest id type the prepared files use for a vocabulary."""
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(
        np.int32)


def shard_files(folder: Path, corpus: str, side: str) -> dict[str, Path]:
    stem = f"{corpus}.{side}"
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
    def open(cls, folder: Path, corpus: str, side: str, dtype: np.dtype) -> TokenShard:
        files = shard_files(folder, corpus, side)
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

    def __init__(self, folder: Path, corpus: str, side: str, dtype: np.dtype):
        self.files = shard_files(folder, corpus, side)
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
    """A prepared corpus: both sides and its sampling weight."""

    name: str
    src: TokenShard
    tgt: TokenShard
    weight: float = 1.0

    def __len__(self) -> int:
        return len(self.src)


class TrainingSet:
    """Several prepared corpora seen as one index space (corpus after corpus).

    Holds only the corpora's memory maps and two length arrays over all pairs: ``src_lens``
    and ``tgt_lens`` (target pieces + EOS), int32.
    """

    def __init__(self, corpora: list[CorpusShards]):
        self.corpora = corpora
        sizes = np.array([len(c) for c in corpora], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(sizes)])
        self.src_lens = np.concatenate([np.asarray(c.src.lengths, dtype=np.int32)
                                        for c in corpora])
        self.tgt_lens = np.concatenate([np.asarray(c.tgt.lengths, dtype=np.int32)
                                        for c in corpora]) + 1

    def __len__(self) -> int:
        return int(self.starts[-1])

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Pair ``index`` (global): its source and target ids."""
        corpus = int(np.searchsorted(self.starts, index, side="right")) - 1
        local = index - int(self.starts[corpus])
        shards = self.corpora[corpus]
        return shards.src[local], shards.tgt[local]

    def counts(self) -> dict[str, int]:
        return {c.name: len(c) for c in self.corpora}
