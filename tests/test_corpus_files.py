"""Corpus files read in binary blocks (line counts, chosen lines, chunk byte ranges) give the
lines the text reader gives."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from s2s.training import corpus_files
from s2s.training.corpus_files import DataError, count_lines, iter_lines, lines_at
from s2s.training.encoding import FileRange, read_range
from s2s.training.prepare import chunk_cuts

TEXTS = ["", "a", "a\n", "a\n\n", "ab\r\ncd\néfghijklmnop\n\nq", "x" * 30 + "\ny\n",
         "\n".join(f"line {i}" for i in range(23))]


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(corpus_files, "LINE_BLOCK_BYTES", 7)   # lines span blocks


@pytest.mark.parametrize("text", TEXTS)
def test_count_lines_counts_the_text_readers_lines(tmp_path, text):
    path = tmp_path / "f.txt"
    path.write_bytes(text.encode())
    assert count_lines(path) == len(list(iter_lines(path)))


@pytest.mark.parametrize("text", TEXTS)
def test_lines_at_reads_the_chosen_lines(tmp_path, text):
    path = tmp_path / "f.txt"
    path.write_bytes(text.encode())
    lines = list(iter_lines(path))
    chosen = np.arange(0, len(lines), 2)
    assert lines_at(path, chosen) == [lines[i] for i in chosen]


@pytest.mark.parametrize("text", TEXTS)
def test_chunk_ranges_hold_the_files_lines_in_chunks(tmp_path, text):
    path = tmp_path / "f.txt"
    path.write_bytes(text.encode())
    cuts, count = chunk_cuts(path, 3)
    chunks = [read_range(FileRange(str(path), a, b)) for a, b in itertools.pairwise(cuts)]
    assert [line for chunk in chunks for line in chunk] == list(iter_lines(path))
    assert all(len(chunk) == 3 for chunk in chunks[:-1]) and count == len(list(iter_lines(path)))


def test_a_chosen_line_that_is_not_utf8_is_a_data_error(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"ok\n\xff\xfe\n")
    with pytest.raises(DataError, match="not UTF-8"):
        lines_at(path, np.array([1]))
