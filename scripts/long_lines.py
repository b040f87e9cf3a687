"""Input lines over the model's subword limit, for s2s-translate and s2s-evaluate.

``--long-lines split`` (the default) translates such a line in pieces (at sentence boundaries,
then between words, within the model's limit) and joins the pieces' translations with spaces;
``skip`` writes an empty output line for it; ``error`` stops before translating anything. Every
message numbers lines from 1. One long line never aborts the rest of the file.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from s2s.inference.sentences import split_sentences
from s2s.inference.translator import TranslateOptions, Translation, Translator

LONG_LINE_MODES = ("split", "skip", "error")


class LongLineError(ValueError):
    """A line over the model's limit with ``--long-lines error``."""


def add_long_lines_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--long-lines", choices=LONG_LINE_MODES, default="split",
        help="a line with more subword pieces than the model accepts: split = translate it in "
             "pieces (sentences, else word runs) within the limit and join them; skip = an "
             "empty output line; error = stop before translating")


@dataclass
class LineResult:
    """One input line's output: n-best (text, normalized score) pairs, best first."""

    alternatives: list[tuple[str, float]]

    @property
    def text(self) -> str:
        return self.alternatives[0][0] if self.alternatives else ""


def split_within_limit(text: str, count: Callable[[str], int], limit: int) -> list[str]:
    """Pieces of ``text``, in order, each of at most ``limit`` subword pieces by ``count``:
    its sentences; a sentence still too long is cut between words, a word too long between
    characters."""
    pieces: list[str] = []
    for sentence in split_sentences(text) or [text]:
        if count(sentence) <= limit:
            pieces.append(sentence)
            continue
        current: list[str] = []
        for word in sentence.split():
            if count(word) > limit:
                if current:
                    pieces.append(" ".join(current))
                    current = []
                pieces.extend(_split_word(word, count, limit))
            elif current and count(" ".join([*current, word])) > limit:
                pieces.append(" ".join(current))
                current = [word]
            else:
                current.append(word)
        if current:
            pieces.append(" ".join(current))
    return pieces


def _split_word(word: str, count: Callable[[str], int], limit: int) -> list[str]:
    if len(word) <= 1 or count(word) <= limit:
        return [word]
    middle = len(word) // 2
    return _split_word(word[:middle], count, limit) + _split_word(word[middle:], count, limit)


def translate_lines(translator: Translator, lines: Sequence[str], options: TranslateOptions,
                    mode: str = "split", chunk: int = 256,
                    warn: Callable[[str], None] = print,
                    progress: Callable[[int], None] = lambda count: None) -> list[LineResult]:
    """Translate ``lines`` in order, ``chunk`` units at a time, handling the lines over the
    model's limit by ``mode`` (LONG_LINE_MODES); ``warn`` gets one message per such line,
    ``progress`` the number of lines done after each chunk."""
    limit = translator.max_src_len
    encode = translator.tokenizer.src.encode
    stripped = [line.strip() for line in lines]
    lengths = [len(ids) for ids in encode(stripped)] if stripped else []
    units: list[str] = []
    owners: list[list[int]] = []
    for number, (text, length) in enumerate(zip(stripped, lengths), start=1):
        if length <= limit:
            owners.append([len(units)])
            units.append(text)
            continue
        what = f"line {number} has {length} subword pieces; the model accepts at most {limit}"
        if mode == "error":
            raise LongLineError(f"{what} (--long-lines split translates it in pieces, skip "
                                "leaves its output line empty)")
        if mode == "skip":
            warn(f"{what}: skipped (empty output line)")
            owners.append([])
            continue
        pieces = split_within_limit(text, lambda t: len(encode([t])[0]), limit)
        warn(f"{what}: translated in {len(pieces)} pieces")
        owners.append(list(range(len(units), len(units) + len(pieces))))
        units.extend(pieces)
    translations: list[Translation] = []
    for start in range(0, len(units), chunk):
        translations.extend(translator.translate(units[start:start + chunk], options))
        done = sum(1 for owned in owners if owned and owned[-1] < len(translations))
        progress(done)
    return [_combine([translations[i] for i in owned]) for owned in owners]


def _combine(parts: list[Translation]) -> LineResult:
    """The k-th candidate of a split line joins every piece's k-th (or last) candidate; its
    score is the pieces' mean."""
    if not parts:
        return LineResult([])
    if len(parts) == 1:
        result = parts[0]
        if not result.alternatives:
            return LineResult([(result.text, 0.0)]) if result.text else LineResult([])
        return LineResult([(c.text, c.normalized_score) for c in result.alternatives])
    depth = max(len(p.alternatives) for p in parts) or 1
    combined = []
    for k in range(depth):
        chosen = [p.alternatives[min(k, len(p.alternatives) - 1)] if p.alternatives else None
                  for p in parts]
        text = " ".join(c.text for c in chosen if c is not None and c.text)
        scores = [c.normalized_score for c in chosen if c is not None]
        combined.append((text, sum(scores) / len(scores) if scores else 0.0))
    return LineResult(combined)
