"""Sentence splitting for texts longer than a model takes in one piece."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n+")


def split_sentences(text: str) -> list[str]:
    """Split text at line breaks and after sentence-final punctuation followed by space.
    The pieces keep their order; joining them with spaces gives the text back (modulo spacing)."""
    return [part for part in _SENTENCE_END.split(text) if part.strip()]
