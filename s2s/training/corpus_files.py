"""Corpus files: line-aligned text files, plain or gzip-compressed, read as a stream."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from s2s.checkpoint import atomic_write_text

LINE_BLOCK_BYTES = 1 << 24   # bytes read at a time by the binary line readers


class DataError(ValueError):
    """A corpus that cannot be used: missing file, misaligned sides, nothing left to train on."""


def open_binary(path: str | Path) -> io.BufferedIOBase:
    """A binary handle on a file (``.gz`` decompressed); DataError when missing."""
    path = Path(path)
    try:
        return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"corpus file not found: {path}") from None


def line_blocks(path: str | Path) -> Iterator[tuple[bytes, np.ndarray]]:
    """The file as (data, ends) blocks of whole lines: line k of a block is
    data[ends[k-1] + 1 : ends[k]] (from 0 for k = 0), without its "\n". The lines are those
    of ``iter_lines``; nothing is decoded."""
    carry = b""
    try:
        with open_binary(path) as handle:
            while block := handle.read(LINE_BLOCK_BYTES):
                data = carry + block
                ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
                if not len(ends):
                    carry = data
                    continue
                carry = data[ends[-1] + 1:]
                yield data, ends
    except (OSError, EOFError) as error:
        raise DataError(f"cannot read corpus file {path}: {error}") from None
    if carry:
        yield carry + b"\n", np.array([len(carry)])


def lines_at(path: str | Path, indices: np.ndarray) -> list[str]:
    """The lines at ``indices`` (ascending line numbers) of a file, decoded; DataError when
    one of them is not UTF-8. Reads the file in binary blocks, decoding only those lines."""
    chosen: list[str] = []
    first = 0
    for data, ends in line_blocks(path):
        if not len(indices) or first > indices[-1]:
            break
        wanted = indices[(indices >= first) & (indices < first + len(ends))] - first
        starts = np.concatenate([[0], ends[:-1] + 1])
        for start, end in zip(starts[wanted].tolist(), ends[wanted].tolist()):
            try:
                chosen.append(data[start:end].decode("utf-8").rstrip("\r"))
            except UnicodeDecodeError as error:
                raise DataError(f"corpus file {path} is not UTF-8: {error}") from None
        first += len(ends)
    return chosen


def open_text(path: str | Path) -> IO[str]:
    """A text handle on a UTF-8 file (``.gz`` decompressed); DataError when missing."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rt", encoding="utf-8", newline="\n")
        return open(path, encoding="utf-8", newline="\n")
    except FileNotFoundError:
        raise DataError(f"corpus file not found: {path}") from None


def iter_lines(path: str | Path) -> Iterator[str]:
    """The file's lines without their line ends; DataError when it is not UTF-8."""
    try:
        with open_text(path) as handle:
            for line in handle:
                yield line.rstrip("\n").rstrip("\r")
    except UnicodeDecodeError as error:
        raise DataError(f"corpus file {path} is not UTF-8: {error}") from None
    except (OSError, EOFError) as error:
        raise DataError(f"cannot read corpus file {path}: {error}") from None


def read_lines(path: str | Path) -> list[str]:
    return list(iter_lines(path))


def read_pairs(src_path: str | Path, tgt_path: str | Path) -> Iterator[tuple[str, str]]:
    """Pairs of two line-aligned files, streamed; a different number of lines is an error."""
    src_lines, tgt_lines = iter_lines(src_path), iter_lines(tgt_path)
    count = 0
    for src in src_lines:
        tgt = next(tgt_lines, None)
        if tgt is None:
            raise DataError(f"{tgt_path} has fewer lines ({count}) than {src_path}: "
                            "not line-aligned")
        count += 1
        yield src, tgt
    if next(tgt_lines, None) is not None:
        raise DataError(f"{tgt_path} has more lines than {src_path} ({count}): not line-aligned")


def read_parallel(src_path: str | Path, tgt_path: str | Path) -> tuple[list[str], list[str]]:
    """Two line-aligned files as lists; a different number of lines is an error."""
    pairs = list(read_pairs(src_path, tgt_path))
    return [s for s, _ in pairs], [t for _, t in pairs]


def count_lines(path: str | Path) -> int:
    """Lines of a file as ``iter_lines`` reads them, counted without decoding."""
    return sum(len(ends) for _, ends in line_blocks(path))


def write_lines(path: Path, lines: list[str]) -> None:
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def file_identity(path: Path) -> dict[str, Any]:
    """What tells a changed input file apart cheaply: path, size, modification time."""
    try:
        stat = Path(path).stat()
    except FileNotFoundError:
        raise DataError(f"corpus file not found: {path}") from None
    return {"path": str(path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
