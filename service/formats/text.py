"""Texts to sentences and back: line breaks are kept, a line's sentences are rejoined by a space."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from s2s.inference.sentences import split_sentences

LINE_BREAK = re.compile(r"\r\n|\r|\n")


def split_text(text: str, language: str | None = None) -> list[list[str]]:
    """The sentences of each line, split by the rules of ``language`` (the text's source
    language when it is known); [] for an empty or whitespace-only text."""
    if not text.strip():
        return []
    return [split_sentences(line, language) for line in LINE_BREAK.split(text)]


def sentences_of(lines: list[list[str]]) -> list[str]:
    return [sentence for line in lines for sentence in line]


def join_text(lines: list[list[str]], translations: Iterable[str]) -> str:
    """Put translations (one per sentence, in order) back into the text's line structure."""
    found: Iterator[str] = iter(translations)
    return "\n".join(" ".join(next(found) for _ in line) for line in lines)


@dataclass(frozen=True)
class Piece:
    """A stretch of a text cut at sentence boundaries: its text (sentences joined by a space,
    lines by "\n"), its sentence count, whether its first line continues the previous piece's
    last line, and the number of the text it belongs to."""

    text: str
    sentences: int
    continues: bool = False
    owner: int = 0


def split_long(text: str, max_chars: int, max_sentences: int) -> list[Piece]:
    """text as one piece when it is within max_chars characters and max_sentences sentences;
    else cut at sentence boundaries into pieces that are, in linear time. A single sentence
    over max_chars is a piece of its own (and refused where it is translated). Putting the
    pieces' lines back in order, a continuing piece's first line onto the last line so far,
    gives the text's line structure back (a piece cut where a line begins ends with an empty
    line that the next piece's first line continues)."""
    lines = split_text(text)
    count = sum(len(line) for line in lines)
    if len(text) <= max_chars and count <= max_sentences:
        return [Piece(text, count)]
    pieces: list[Piece] = []
    current: list[list[str]] = [[]]
    continues = False
    chars = sentences = 0
    for number, line in enumerate(lines):
        if number:
            current.append([])
            chars += 1  # the "\n"
        for sentence in line:
            extra = len(sentence) + (1 if current[-1] else 0)
            if sentences and (chars + extra > max_chars or sentences + 1 > max_sentences):
                pieces.append(Piece(_joined(current), sentences, continues))
                current, continues, chars, sentences = [[]], True, 0, 0
                extra = len(sentence)
            current[-1].append(sentence)
            chars += extra
            sentences += 1
    if sentences or not pieces:
        pieces.append(Piece(_joined(current), sentences, continues))
    elif len(current) > 1:  # blank lines after the last sentence: onto the last piece
        last = pieces[-1]
        pieces[-1] = Piece(last.text + "\n" * (len(current) - 1), last.sentences,
                           last.continues)
    return pieces


def _joined(lines: list[list[str]]) -> str:
    return "\n".join(" ".join(line) for line in lines)
