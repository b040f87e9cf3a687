"""HTML cut into tokens whose raw texts partition the input (Python's ``html.parser`` used as a
tokenizer only), so untouched markup is re-emitted byte for byte."""

from __future__ import annotations

import html as html_entities
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

# Closers the stdlib searches for from a "<!--" or "<![": supersets of its patterns (Python
# 3.11: "--\s*>", "]\s*]\s*>", "]\s*>"; later versions also end comments with "--!>").
_COMMENT_CLOSE = re.compile(r"-[\s!]*>")
_SECTION_CLOSE = re.compile(r"\]\s*>")
_SECTION_NAME = re.compile(r"[a-zA-Z][-_.a-zA-Z0-9]*\s*")  # as the stdlib scans it
_SECTION_NAMES = frozenset({"temp", "cdata", "ignore", "include", "rcdata", "if", "else",
                            "endif"})  # those whose closer the stdlib searches for


class MarkupError(ValueError):
    """The markup cannot be handled (only raised for unusable arguments)."""


# --------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True, slots=True)
class Token:
    """A piece of the input: kind is start, empty, end, text, comment or decl."""

    kind: str
    name: str
    raw: str


class _Recorder(HTMLParser):
    """html.parser that records (line, column, kind, name, own length) of every token."""

    def __init__(self) -> None:
        # convert_charrefs=True: text runs up to the next "<". With False the stdlib stops at
        # "&#" not followed by digits and, at the end, takes all the rest for text.
        super().__init__(convert_charrefs=True)
        self.marks: list[tuple[int, int, str, str, int | None]] = []
        self._close_for: str | None = None
        self._close_at = -1
        self._closers_for: str | None = None
        self._comment_close_at = self._section_close_at = -1

    def _mark(self, kind: str, name: str = "", own: int | None = None) -> None:
        line, column = self.getpos()
        self.marks.append((line, column, kind, name, own))

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self._mark("start", tag, len(self.get_starttag_text() or ""))

    def handle_startendtag(self, tag: str, attrs: Any) -> None:
        self._mark("empty", tag, len(self.get_starttag_text() or ""))

    def handle_endtag(self, tag: str) -> None:
        self._mark("end", tag)

    def handle_data(self, data: str) -> None:
        self._mark("text")

    def handle_comment(self, data: str) -> None:
        self._mark("comment")

    def handle_decl(self, decl: str) -> None:
        self._mark("decl")

    def handle_pi(self, data: str) -> None:
        self._mark("decl")

    def unknown_decl(self, data: str) -> None:
        self._mark("decl")

    def parse_starttag(self, i: int) -> int:
        """Without a ">" further on no start tag can end: say "incomplete" at once. (The stdlib
        would scan the rest of the input for each such "<", quadratic time.)"""
        if i > self._last_close():
            return -1
        return super().parse_starttag(i)

    def _last_close(self) -> int:
        """Offset of the last ">" in the buffer (cached per buffer)."""
        if self._close_for is not self.rawdata:
            self._close_for = self.rawdata
            self._close_at = self.rawdata.rfind(">")
        return self._close_at

    def _last_closers(self) -> tuple[int, int]:
        """Start of the last possible comment and marked-section closer in the buffer (found
        once per buffer, linear: every closer ends at its own ">")."""
        if self._closers_for is not self.rawdata:
            self._closers_for = self.rawdata
            self._comment_close_at = max(
                (found.start() for found in _COMMENT_CLOSE.finditer(self.rawdata)), default=-1)
            self._section_close_at = max(
                (found.start() for found in _SECTION_CLOSE.finditer(self.rawdata)), default=-1)
        return self._comment_close_at, self._section_close_at

    def parse_comment(self, i: int, report: bool = True) -> int:
        """A "<!--" that no closer follows is "incomplete" at once. (The stdlib searches the
        rest of the input for each one, even when a ">" ends it as text a few characters on:
        quadratic time on thousands of them.)"""
        if self._last_closers()[0] < i + 2:
            return -1
        return super().parse_comment(i, report)

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        """``<![foo[`` makes the stdlib assert: take it as a bogus declaration up to ``>``. One
        that no closer follows is "incomplete" at once (the stdlib would search the rest of
        the input for each)."""
        if self._last_closers()[1] < i + 3:
            name = _SECTION_NAME.match(self.rawdata, i + 3)
            if name and name.group().strip().lower() in _SECTION_NAMES:
                return -1
        try:
            return super().parse_marked_section(i, report)
        except AssertionError:
            end = self.rawdata.find(">", i + 3)
            if end < 0:
                return -1
            self.unknown_decl(self.rawdata[i + 3:end])
            return end + 1


def entity_refs(text: str, longest: int = 40) -> list[str]:
    """The character references (``&name;``, ``&#39;``, ``&#x27;``) written in a raw text."""
    found: list[str] = []
    start = text.find("&")
    while start >= 0:
        end = text.find(";", start + 1, start + longest)
        candidate = text[start:end + 1] if end > start else ""
        if candidate and html_entities.unescape(candidate) != candidate \
                and "&" not in candidate[1:]:
            found.append(candidate)
        start = text.find("&", start + 1)
    return found


def _line_starts(text: str) -> list[int]:
    """Offsets where html.parser's lines (split at "\\n") begin."""
    starts = [0]
    found = text.find("\n")
    while found >= 0:
        starts.append(found + 1)
        found = text.find("\n", found + 1)
    return starts


def tokenize(html: str) -> list[Token]:
    """The tokens of html; their raw texts joined give html back exactly.

    What follows the last ">" is one text token: no tag, comment or declaration can end there,
    and the stdlib, at the end of the input, would search the rest of it for a ">" from each
    "<" in it (quadratic time on thousands of unclosed "<!--", "</x" or "<?")."""
    head_end = html.rfind(">") + 1
    tokens = _tokenize(html[:head_end]) if head_end else []
    if head_end < len(html):
        tokens.append(Token("text", "", html[head_end:]))
    return tokens


def _tokenize(html: str) -> list[Token]:
    recorder = _Recorder()
    failed_at: tuple[int, int] | None = None
    try:
        recorder.feed(html)
        recorder.close()
    except Exception:  # the stdlib tokenizer has asserted on odd declarations before
        failed_at = recorder.getpos()
    starts = _line_starts(html)
    marks = [(starts[line - 1] + column, kind, name, own)
             for line, column, kind, name, own in recorder.marks]
    if failed_at is not None:
        marks.append((starts[failed_at[0] - 1] + failed_at[1], "decl", "", None))
    return _cut(html, marks)


def _cut(html: str, marks: list[tuple[int, str, str, int | None]]) -> list[Token]:
    """Tokens from (offset, kind, name, own length) marks: each runs up to the next mark."""
    tokens: list[Token] = []
    offsets = [offset for offset, *_ in marks] + [len(html)]
    previous = 0
    if offsets[0] > 0:
        tokens.append(Token("text", "", html[:offsets[0]]))
    for index, (offset, kind, name, own) in enumerate(marks):
        begin = max(offset, previous)
        end = max(begin, min(offsets[index + 1], len(html)))
        previous = end
        raw = html[begin:end]
        if not raw:
            continue
        if kind in ("start", "empty") and own and own < len(raw):
            # e.g. an unclosed <script> at the end: the stdlib drops its content
            tokens.append(Token(kind, name, raw[:own]))
            tokens.append(Token("text", "", raw[own:]))
        else:
            tokens.append(Token(kind, name, raw))
    return tokens


# --------------------------------------------------------------------------------------------
# Runs of inline content and their segments


