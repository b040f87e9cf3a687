"""Texts to sentences and back: line breaks are kept, a line's sentences are rejoined by a space."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from s2s.inference.sentences import split_sentences

LINE_BREAK = re.compile(r"\r\n|\r|\n")


def split_text(text: str) -> list[list[str]]:
    """The sentences of each line; [] for an empty or whitespace-only text."""
    if not text.strip():
        return []
    return [split_sentences(line) for line in LINE_BREAK.split(text)]


def sentences_of(lines: list[list[str]]) -> list[str]:
    return [sentence for line in lines for sentence in line]


def join_text(lines: list[list[str]], translations: Iterable[str]) -> str:
    """Put translations (one per sentence, in order) back into the text's line structure."""
    found: Iterator[str] = iter(translations)
    return "\n".join(" ".join(next(found) for _ in line) for line in lines)
