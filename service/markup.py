"""Translate the text of HTML and keep its markup (``format: "html"``).

Parser
    Python's own ``html.parser`` used as a tokenizer only. Each token's raw text is the slice of
    the input from its position (``getpos()`` at the handler call) to the next token's, so the
    tokens partition the input and untouched markup is re-emitted byte for byte: attribute
    quoting, upper-case tags, ``&nbsp;``/``&hellip;``/``&#39;`` spellings, stray ``<`` and broken
    entities alike. Text runs up to the next ``<`` (``convert_charrefs=True``; with False the
    stdlib stops at a ``&#`` without digits and takes the rest of the input for text) and is
    decoded with ``html.unescape``. Chosen with bench/html_parsers.py (figures in
    bench/html_parsers.json, 13 realistic fragments incl. a Mastodon status, Python 3.11):
    only this tokenizer gives all 13 back exactly; selectolax 1.0 (Lexbor), lxml 6.1 and
    BeautifulSoup 4.15 with html5lib or html.parser build a DOM and serialize it again, which
    rewrites quoting and entities and repairs malformed input (2-3 of 13 exact; lxml also cuts
    nesting at 255 levels). They are faster (Mastodon status: lxml 23 us, selectolax 52 us,
    this tokenizer 118 us, parse_html + render 370 us) but that is small next to translating a
    sentence. We build the small per-segment element tree ourselves; no extra dependency.

Segments
    Tokens are sorted into runs of inline content (text, the inline elements in ``INLINE``,
    atoms) separated by everything else (block and unknown elements, doctype, processing
    instructions), which is copied verbatim. Atoms take no characters: empty elements (``br``,
    ``img``, ``wbr``, ``input``, ``embed``), comments, stray end tags and the untranslated
    elements in ``OPAQUE_INLINE`` (``code``, ``script``, ``style``, ``textarea``, ...), whose
    whole content is copied. ``pre`` is an untranslated block. A run's text (entities decoded,
    ASCII whitespace collapsed, stripped; ``br`` separates words) is a segment when it has a
    letter or digit; otherwise the run stays verbatim, and so does the whitespace around a
    segment. The inline elements of a run form a tree of character spans over the segment
    text. Malformed nesting is absorbed there: an end tag closes the nearest open element of
    its name (elements opened above it end there, without an end tag), an end tag with nothing
    to close is an atom, elements still open at the end of the run extend to its end. Nothing
    recurses: trees are walked with explicit stacks, so thousands of nesting levels are fine.

Placement
    Source pieces are mapped to character spans of the segment text (NFKC, case and whitespace
    ignored, mismatches tolerated). Each target piece is aligned to the source piece with the
    highest attention weight; a target piece that copies its source piece exactly is cut where
    markup cuts the source (``@<span>anna</span>`` survives). An element covers the smallest
    contiguous range of target pieces aligned into it, clamped to its parent's range;
    overlapping siblings are separated at the boundary that misplaces the fewest aligned
    pieces. Atoms and elements without aligned pieces sit before the target piece aligned to
    the first source piece after their position (an element with text then wraps that piece
    when no sibling holds it); an element without end tag comes last among its siblings, so
    that re-parsing gives the same tree. Every tag of the input comes out once, with its raw
    text. Spaces between words go where the source had whitespace next to the tags there, but
    never just inside an element's edge. When the alignment is unusable (no pieces, no or
    garbled attention, pieces that do not match the text) a proportional one is used.

Limitations
    Attribute values (``title``, ``alt``, ``placeholder``) are not translated. Text entities
    other than those the segment itself used (and ``&amp; &lt; &gt; &nbsp;``) come out as
    characters. An end tag that closes an element opened outside its run (``<b>`` before a
    block, ``</b>`` inside the next one) is an atom and may move with the words. The stdlib
    tokenizer is quadratic on thousands of unclosed ``<!--`` (5 000 characters: 30 ms,
    50 000: 3 s); unclosed start tags, which were worse, are cut short here.
"""

from __future__ import annotations

import html as html_entities
import math
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

MARK = "\u2581"  # SentencePiece's word-start mark
WHITESPACE = " \t\n\r\f"  # HTML's (ASCII) whitespace; U+00A0 is text

INLINE = frozenset({
    "a", "abbr", "b", "bdi", "bdo", "big", "cite", "data", "del", "dfn", "em", "font", "i", "ins",
    "label", "mark", "q", "s", "small", "span", "strike", "strong", "sub", "sup", "time", "tt",
    "u",
})
VOID_INLINE = frozenset({"br", "embed", "img", "input", "wbr"})
BREAKS = frozenset({"br"})  # atoms that separate words
OPAQUE_INLINE = frozenset({"code", "kbd", "math", "samp", "script", "style", "svg", "textarea"})
OPAQUE_BLOCK = frozenset({"pre"})
OPAQUE = OPAQUE_INLINE | OPAQUE_BLOCK
ATOM_WHEN_EMPTY = INLINE | OPAQUE_INLINE  # <b/>, <code/>: atoms
CLOSABLE = INLINE | VOID_INLINE | OPAQUE_INLINE  # end tags that stay in a run

ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\u00a0": "&nbsp;"}
USABLE_MATCH = 0.5  # least share of source piece characters found in the text


class MarkupError(ValueError):
    """The markup cannot be handled (only raised for unusable arguments)."""


@dataclass(frozen=True)
class AlignedText:
    """One translated segment."""

    source_pieces: list[str]
    target_pieces: list[str]
    attention: list[list[float]]
    text: str


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

    def parse_marked_section(self, i: int, report: int = 1) -> int:
        """``<![foo[`` makes the stdlib assert: take it as a bogus declaration up to ``>``."""
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
    """The tokens of html; their raw texts joined give html back exactly."""
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


@dataclass(slots=True)
class _Item:
    """A token of a run: text, open, close or atom."""

    kind: str
    name: str
    raw: str
    is_break: bool = False


@dataclass(slots=True, eq=False)
class _Tag:
    """Raw text of a tag in a segment and whether whitespace touched it in the source."""

    raw: str
    opens: bool = False
    closes: bool = False
    is_break: bool = False
    ws_before: bool = False
    ws_after: bool = False


@dataclass(slots=True, eq=False)
class _Node:
    """An inline element (characters start..end) or an atom (start == end) of a segment."""

    order: int
    start: int
    end: int
    name: str = ""
    open: _Tag | None = None
    close: _Tag | None = None
    atom: bool = False
    children: list[_Node] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class _Segment:
    """A run that is translated: its text, span tree and surrounding whitespace."""

    text: str
    root: _Node
    nodes: list[_Node]
    leading: str
    trailing: str
    entities: dict[str, str]


def _edges(items: list[_Item]) -> tuple[str, list[_Item], str]:
    """Raw whitespace before the first / after the last non-blank text, and the items between."""
    first, last = 0, len(items)
    lead: list[str] = []
    while first < last and items[first].kind == "text":
        raw = items[first].raw
        rest = raw.lstrip(WHITESPACE)
        lead.append(raw[:len(raw) - len(rest)])
        if rest:
            items = [*items[:first], _Item("text", "", rest), *items[first + 1:]]
            break
        first += 1
    trail: list[str] = []
    while last > first and items[last - 1].kind == "text":
        raw = items[last - 1].raw
        rest = raw.rstrip(WHITESPACE)
        trail.append(raw[len(rest):])
        if rest:
            items = [*items[:last - 1], _Item("text", "", rest), *items[last:]]
            break
        last -= 1
    return "".join(lead), items[first:last], "".join(reversed(trail))


class _SegmentBuilder:
    """Walks a run's items: collapses whitespace, builds the span tree, notes entity spellings."""

    def __init__(self) -> None:
        self.chars: list[str] = []
        self.pending = False  # a word boundary before the next character
        self.ws_since = False  # whitespace since the last tag or character
        self.last_tag: _Tag | None = None  # the latest tag when no character followed it
        self.root = _Node(0, 0, 0)
        self.nodes = [self.root]
        self.stack = [self.root]
        self.open_count: dict[str, int] = {}
        self.entities: dict[str, str] = {}

    def text(self, text: str) -> None:
        for char in text:
            if char in WHITESPACE:
                self.pending = bool(self.chars)
                self.ws_since = True
                if self.last_tag is not None:
                    self.last_tag.ws_after = True
                continue
            if self.pending:
                self.chars.append(" ")
                self.pending = False
            self.chars.append(char)
            self.ws_since = False
            self.last_tag = None

    def raw_text(self, raw: str) -> None:
        """Text as written: decoded, and entity spellings of single symbols noted."""
        for entity in entity_refs(raw):
            decoded = html_entities.unescape(entity)
            if len(decoded) == 1 and not decoded.isalnum() and not decoded.isspace():
                self.entities[decoded] = entity
        self.text(html_entities.unescape(raw))

    def _tag(self, raw: str, opens: bool = False, closes: bool = False,
             is_break: bool = False) -> _Tag:
        tag = _Tag(raw, opens, closes, is_break, ws_before=self.ws_since)
        self.ws_since = False
        self.last_tag = tag
        return tag

    def _node(self, start: int, end: int, **kwargs: Any) -> _Node:
        node = _Node(len(self.nodes), start, end, **kwargs)
        self.nodes.append(node)
        self.stack[-1].children.append(node)
        return node

    def atom(self, raw: str, is_break: bool = False, closes: bool = False) -> None:
        position = len(self.chars)
        tag = self._tag(raw, closes=closes, is_break=is_break)
        self._node(position, position, open=tag, atom=True)
        if is_break:
            self.pending = bool(self.chars)

    def open(self, name: str, raw: str) -> None:
        start = len(self.chars) + (1 if self.pending else 0)
        node = self._node(start, start, name=name, open=self._tag(raw, opens=True))
        self.stack.append(node)
        self.open_count[name] = self.open_count.get(name, 0) + 1

    def close(self, name: str, raw: str) -> None:
        """Close the nearest open element called name; an end tag without one is an atom."""
        if not self.open_count.get(name):
            self.atom(raw, closes=True)
            return
        while True:
            node = self.stack.pop()
            node.end = len(self.chars)
            self.open_count[node.name] -= 1
            if node.name == name:
                node.close = self._tag(raw, closes=True)
                return

    def finish(self, leading: str, trailing: str) -> _Segment:
        text = "".join(self.chars)
        for node in self.stack[1:]:
            node.end = len(text)
        for node in self.nodes:
            node.start = min(node.start, len(text))
            node.end = min(max(node.end, node.start), len(text))
        self.root.end = len(text)
        return _Segment(text, self.root, self.nodes, leading, trailing, self.entities)


def _run_part(items: list[_Item]) -> str | _Segment:
    """A run as a segment, or as its raw text when it has no letter or digit."""
    leading, body, trailing = _edges(items)
    builder = _SegmentBuilder()
    for item in body:
        if item.kind == "text":
            builder.raw_text(item.raw)
        elif item.kind == "open":
            builder.open(item.name, item.raw)
        elif item.kind == "close":
            builder.close(item.name, item.raw)
        else:
            builder.atom(item.raw, item.is_break)
    segment = builder.finish(leading, trailing)
    if any(char.isalnum() for char in segment.text):
        return segment
    return "".join(item.raw for item in items)


@dataclass(slots=True)
class _Opaque:
    """An untranslated element being collected (nested elements of its name counted)."""

    name: str
    inline: bool
    raws: list[str]
    depth: int = 1


class _Splitter:
    """Sorts tokens into verbatim markup and runs of inline content."""

    def __init__(self) -> None:
        self.parts: list[str | _Segment] = []
        self.run: list[_Item] = []
        self.opaque: _Opaque | None = None

    def flush(self) -> None:
        if self.run:
            self.parts.append(_run_part(self.run))
            self.run = []

    def verbatim(self, raw: str) -> None:
        self.flush()
        self.parts.append(raw)

    def add(self, token: Token) -> None:
        if self.opaque is not None:
            self._collect(token)
            return
        kind, name = token.kind, token.name
        if kind == "text":
            self.run.append(_Item(kind, "", token.raw))
        elif kind == "comment":
            self.run.append(_Item("atom", "", token.raw))
        elif kind == "start" and name in OPAQUE:
            if name in OPAQUE_BLOCK:
                self.flush()
            self.opaque = _Opaque(name, name in OPAQUE_INLINE, [token.raw])
        elif kind in ("start", "empty") and name in VOID_INLINE or (
                kind == "empty" and name in ATOM_WHEN_EMPTY):
            self.run.append(_Item("atom", name, token.raw, name in BREAKS))
        elif kind == "start" and name in INLINE:
            self.run.append(_Item("open", name, token.raw))
        elif kind == "end" and name in CLOSABLE:
            self.run.append(_Item("close", name, token.raw))
        else:
            self.verbatim(token.raw)

    def _collect(self, token: Token) -> None:
        opaque = self.opaque
        assert opaque is not None
        opaque.raws.append(token.raw)
        if token.name == opaque.name and token.kind in ("start", "end"):
            opaque.depth += 1 if token.kind == "start" else -1
        if opaque.depth == 0:
            self._end_opaque()

    def _end_opaque(self) -> None:
        opaque = self.opaque
        assert opaque is not None
        self.opaque = None
        raw = "".join(opaque.raws)
        if opaque.inline:
            self.run.append(_Item("atom", opaque.name, raw))
        else:
            self.verbatim(raw)

    def finish(self) -> list[str | _Segment]:
        """The parts; an element left open at the end stays last, after its run."""
        if self.opaque is not None:
            self.verbatim("".join(self.opaque.raws))
        self.flush()
        return self.parts


# --------------------------------------------------------------------------------------------
# Source pieces to characters, target pieces to units


@dataclass(slots=True)
class _Unit:
    """A target piece (or a cut of one): text, word start, aligned source characters."""

    space: bool
    text: str
    src: tuple[int, int] | None


def _normalized(text: str) -> tuple[str, list[int]]:
    """text in NFKC, lower case, without whitespace; and each character's index in text."""
    chars: list[str] = []
    index: list[int] = []
    for position, char in enumerate(text):
        for normal in unicodedata.normalize("NFKC", char).lower():
            if not normal.isspace():
                chars.append(normal)
                index.append(position)
    return "".join(chars), index


def _piece_chars(piece: str) -> str:
    """A source piece's characters as compared with the text ("" for <unk>, <0x41>, ...)."""
    if len(piece) > 2 and piece.startswith("<") and piece.endswith(">"):
        return ""
    normal = unicodedata.normalize("NFKC", piece.replace(MARK, " ")).lower()
    return "".join(char for char in normal if not char.isspace())


def _piece_spans(text: str, pieces: Sequence[str], window: int = 8
                 ) -> tuple[list[tuple[int, int]], float]:
    """Character span in text of each piece, and the share of piece characters found."""
    normal, index = _normalized(text)
    cursor = matched = total = 0
    spans: list[tuple[int, int]] = []
    for piece in pieces:
        first = last = -1
        for char in _piece_chars(piece):
            total += 1
            found = normal.find(char, cursor, cursor + window)
            if found < 0:
                continue
            first = found if first < 0 else first
            last, cursor = found, found + 1
            matched += 1
        if first < 0:
            here = index[cursor] if cursor < len(index) else len(text)
            spans.append((here, here))
        else:
            spans.append((index[first], index[last] + 1))
    return spans, (matched / total if total else 0.0)


def _word_pieces(text: str) -> list[str]:
    """Pieces made of whole words, for a translation or a source without usable pieces."""
    return [MARK + word for word in text.split()]


def _argmax(row: Sequence[Any], columns: int) -> int | None:
    """Index of the largest finite weight among the first columns entries."""
    values = list(map(float, row[:columns]))
    if values and math.isfinite(sum(values)):
        return values.index(max(values))
    finite = [(value, -index) for index, value in enumerate(values) if math.isfinite(value)]
    return -max(finite)[1] if finite else None


def _alignment(attention: Sequence[Sequence[Any]] | None, targets: int, sources: int
               ) -> list[int | None]:
    """Source piece of each target piece; proportional when the attention says nothing."""
    rows = list(attention if attention is not None else [])[:targets]
    links = [_argmax(row, sources) for row in rows] + [None] * (targets - len(rows))
    if sources and all(link is None for link in links):
        links = [target * sources // targets for target in range(targets)]
    return links


def _units(pieces: Sequence[str], links: list[int | None], spans: list[tuple[int, int]],
           text: str, cuts: list[int]) -> list[_Unit]:
    """Target units; a piece copying its source piece exactly is cut where markup cuts it."""
    units: list[_Unit] = []
    for piece, link in zip(pieces, links):
        space = piece.startswith(MARK)
        core = (piece[1:] if space else piece).replace(MARK, " ").strip()
        if link is None:
            units.append(_Unit(space, core, None))
            continue
        start, end = spans[link]
        inner = cuts[bisect_right(cuts, start):bisect_left(cuts, end)]
        if not inner or core != text[start:end]:
            units.append(_Unit(space, core, (start, end)))
            continue
        bounds = [start, *inner, end]
        for index in range(len(bounds) - 1):
            part = core[bounds[index] - start:bounds[index + 1] - start]
            units.append(_Unit(space and index == 0, part, (bounds[index], bounds[index + 1])))
    return units


def _segment_units(segment: _Segment, translation: Any) -> list[_Unit]:
    """The target units of a translation, with a fallback for every unusable part."""
    targets = [str(piece) for piece in translation.target_pieces]
    attention = translation.attention
    if not targets:
        targets, attention = _word_pieces(str(translation.text)), None
    spans, share = _piece_spans(segment.text, [str(p) for p in translation.source_pieces])
    if share < USABLE_MATCH:
        spans, _ = _piece_spans(segment.text, _word_pieces(segment.text))
        attention = None
    links = _alignment(attention, len(targets), len(spans))
    cuts = sorted({bound for node in segment.nodes[1:] for bound in (node.start, node.end)})
    return _units(targets, links, spans, segment.text, cuts)


# --------------------------------------------------------------------------------------------
# Placing the tree over the target units


@dataclass(slots=True, eq=False)
class _Box:
    """Where a node lands: target units lo..hi, its own aligned units, its ordered children."""

    lo: int
    hi: int
    own: list[int]
    children: list[_Node] = field(default_factory=list)


class _Sources:
    """The aligned units by source position, to find those inside an element quickly."""

    def __init__(self, units: list[_Unit]) -> None:
        spans = sorted((unit.src[0], unit.src[1], index)
                       for index, unit in enumerate(units) if unit.src)
        self.spans = spans
        self.starts = [start for start, _, _ in spans]
        self.longest = max((end - start for start, end, _ in spans), default=0)

    def inside(self, node: _Node, lo: int, hi: int) -> list[int]:
        """Sorted units in lo..hi aligned to characters of node (a point strictly inside)."""
        first = bisect_right(self.starts, node.start - self.longest - 1)
        last = bisect_left(self.starts, node.end)
        found = [index for start, end, index in self.spans[first:last]
                 if lo <= index < hi and (node.start < start if start == end
                                           else end > node.start)]
        return sorted(found)


def _anchors(units: list[_Unit]) -> list[tuple[int, int]]:
    """(source start, unit) of the aligned units, sorted, to find the unit after a position."""
    return sorted((unit.src[0], index) for index, unit in enumerate(units) if unit.src)


def _count(own: list[int], lo: int, hi: int) -> int:
    return bisect_left(own, hi) - bisect_left(own, lo)


def _split_point(before: _Box, after: _Box) -> int:
    """Boundary between overlapping siblings that misplaces the fewest of their aligned units."""
    lowest = max(after.lo, before.lo)

    def cost(cut: int) -> tuple[int, int, int]:
        lost = _count(before.own, cut, before.hi) + _count(after.own, after.lo, cut)
        both = 0 if before.lo < cut < after.hi else 1
        return lost, both, -cut

    return min(range(lowest, before.hi + 1), key=cost)


def _separate(strong: list[_Box]) -> None:
    """Make sibling ranges disjoint (sorted by start, each cut against the previous one)."""
    for previous, current in zip(strong, strong[1:]):
        if current.lo < previous.hi:
            cut = _split_point(previous, current)
            previous.hi = cut
            current.lo = cut
            current.hi = max(current.hi, cut)


def _step_out(point: _Box, strong: list[_Box], starts: list[int]) -> None:
    """Move a point inside a sibling's range (starts: their sorted starts) to its nearer end."""
    found = bisect_right(starts, point.lo) - 1
    if found >= 0 and strong[found].lo < point.lo < strong[found].hi:
        box = strong[found]
        point.lo = point.hi = box.lo if point.lo - box.lo <= box.hi - point.lo else box.hi


class _Placement:
    """Places a segment's tree over target units, top down with an explicit stack."""

    def __init__(self, units: list[_Unit]) -> None:
        self.size = len(units)
        self.sources = _Sources(units)
        self.anchors = _anchors(units)
        self.boxes: dict[_Node, _Box] = {}

    def anchor(self, position: int) -> int:
        """The first unit aligned to a source character at or after position (else the end)."""
        found = bisect_left(self.anchors, (position, -1))
        return self.anchors[found][1] if found < len(self.anchors) else self.size

    def run(self, root: _Node) -> dict[_Node, _Box]:
        self.boxes[root] = _Box(0, self.size, list(range(self.size)))
        stack = [root]
        while stack:
            node = stack.pop()
            self.place_children(node)
            stack.extend(child for child in node.children if child.children)
        return self.boxes

    def place_children(self, node: _Node) -> None:
        """Give each child of node a range inside node's; siblings disjoint and in order."""
        parent = self.boxes[node]
        strong: list[_Box] = []
        weak: list[tuple[_Node, _Box]] = []
        for child in node.children:
            own = [] if child.atom else self.sources.inside(child, parent.lo, parent.hi)
            if own:
                box = _Box(own[0], own[-1] + 1, own)
            else:
                point = min(max(self.anchor(child.start), parent.lo), parent.hi)
                box = _Box(point, point, [])
            self.boxes[child] = box
            if _unclosed(child):
                continue  # placed last by _order
            if own:
                strong.append(box)
            else:
                weak.append((child, box))
        strong.sort(key=lambda box: box.lo)
        _separate(strong)
        self.place_points(weak, strong, parent)
        _order(node, parent, self.boxes)

    @staticmethod
    def place_points(weak: list[tuple[_Node, _Box]], strong: list[_Box], parent: _Box) -> None:
        """Points leave siblings' ranges; an element with text but no aligned unit wraps the
        unit at its point when no sibling holds it."""
        starts = [box.lo for box in strong]
        taken = {index for box in strong for index in range(box.lo, box.hi)}
        for child, box in weak:
            _step_out(box, strong, starts)
            if (not child.atom and child.end > child.start and box.lo < parent.hi
                    and box.lo not in taken):
                box.hi = box.lo + 1
                taken.add(box.lo)


def _unclosed(node: _Node) -> bool:
    """An element without end tag: whatever follows it in its parent is inside it."""
    return not node.atom and node.close is None


def _order(node: _Node, parent: _Box, boxes: dict[_Node, _Box]) -> None:
    """Sort node's children by range (points first, then document order) and make them nest.
    An element without end tag goes last and keeps the rest of its parent's range."""
    children = sorted(node.children, key=lambda child: (
        _unclosed(child), boxes[child].lo, boxes[child].hi > boxes[child].lo, child.order))
    cursor = parent.lo
    for child in children:
        box = boxes[child]
        if _unclosed(child):
            box.hi = parent.hi
        box.lo = min(max(box.lo, cursor), parent.hi)
        box.hi = min(max(box.hi, box.lo), parent.hi)
        cursor = box.hi
    parent.children = children


# --------------------------------------------------------------------------------------------
# Rendering


def _events(segment: _Segment, boxes: dict[_Node, _Box], units: list[_Unit]
            ) -> list[_Unit | _Tag]:
    """Units and tags in output order (depth first, explicit stack)."""
    root = segment.root
    events: list[_Unit | _Tag] = []
    stack: list[list[Any]] = [[root, 0, boxes[root].lo]]
    while stack:
        frame = stack[-1]
        node, index, position = frame
        children = boxes[node].children
        if index < len(children):
            child = children[index]
            box = boxes[child]
            events.extend(units[position:box.lo])
            frame[1], frame[2] = index + 1, box.hi
            if child.open is not None:
                events.append(child.open)
            stack.append([child, 0, box.lo])
            continue
        events.extend(units[position:boxes[node].hi])
        if node.close is not None:
            events.append(node.close)
        stack.pop()
    return events


def _outside(group: list[_Tag], gap: int) -> int:
    """A space's gap moved out of elements: before the start tags and after the end tags
    that touch it (a space right inside an element's edge is moved out of it)."""
    while gap > 0 and group[gap - 1].opens:
        gap -= 1
    while gap < len(group) and group[gap].closes:
        gap += 1
    return gap


def _gaps(group: list[_Tag], where: str) -> set[int]:
    """Gaps (0..len) of a run of tags that get a space; where is start, inner, end or both."""
    gaps = {_outside(group, index) for index in range(len(group) + 1)
            if (index > 0 and group[index - 1].ws_after)
            or (index < len(group) and group[index].ws_before)}
    if where in ("start", "both"):
        gaps.discard(0)
    if where in ("end", "both"):
        gaps.discard(len(group))
    if where == "inner" and not gaps and not any(tag.is_break for tag in group):
        opening = [index for index, tag in enumerate(group) if tag.opens]
        gaps = {opening[0] if opening else len(group)}
    return gaps


def _join(group: list[_Tag], where: str) -> str:
    """Tags between two units; where says whether a word boundary lies there (inner)."""
    if where == "none":
        return "".join(tag.raw for tag in group)
    gaps = _gaps(group, where)
    out: list[str] = []
    for index, tag in enumerate(group):
        if index in gaps:
            out.append(" ")
        out.append(tag.raw)
    if len(group) in gaps:
        out.append(" ")
    return "".join(out)


def _escape(text: str, entities: dict[str, str]) -> str:
    """Escape &, <, >, U+00A0; characters the source wrote as entities keep that spelling."""
    return "".join(entities.get(char) or ESCAPES.get(char, char) for char in text)


def _assemble(events: list[_Unit | _Tag], entities: dict[str, str]) -> str:
    """The segment's HTML: escaped unit texts joined by spaces at word starts, tags between."""
    out: list[str] = []
    group: list[_Tag] = []
    seen = boundary = False
    for event in events:
        if isinstance(event, _Tag):
            group.append(event)
            continue
        boundary = boundary or event.space
        if not event.text:
            continue
        where = "start" if not seen else "inner" if boundary else "none"
        out.append(_join(group, where))
        out.append(_escape(event.text, entities))
        group, seen, boundary = [], True, False
    out.append(_join(group, "end" if seen else "both"))
    return "".join(out)


def _render_segment(segment: _Segment, translation: Any) -> str:
    units = _segment_units(segment, translation)
    boxes = _Placement(units).run(segment.root)
    return _assemble(_events(segment, boxes, units), segment.entities)


class HtmlFragment:
    """Parsed HTML: verbatim markup and the segments to translate."""

    def __init__(self, parts: list[str | _Segment]) -> None:
        self._parts = parts
        self.segments: list[str] = [part.text for part in parts if isinstance(part, _Segment)]

    def render(self, translations: Sequence[AlignedText]) -> str:
        """The HTML with every segment's text replaced by its translation (same order)."""
        translations = list(translations)
        if len(translations) != len(self.segments):
            raise MarkupError(f"{len(self.segments)} segments but {len(translations)} "
                              "translations")
        found = iter(translations)
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
            else:
                out.extend((part.leading, _translated(part, next(found)), part.trailing))
        return "".join(out)


def _translated(segment: _Segment, translation: Any) -> str:
    """A segment rendered from its translation; from its plain text if the rest is unusable."""
    try:
        return _render_segment(segment, translation)
    except (AttributeError, TypeError, ValueError, OverflowError):
        pass
    try:
        text = str(getattr(translation, "text", ""))
        return _render_segment(segment, AlignedText([], [], [], text))
    except (TypeError, ValueError) as error:
        raise MarkupError(f"cannot use the translation of {segment.text[:40]!r}") from error


def parse_html(html: str) -> HtmlFragment:
    """Split an HTML fragment or document into verbatim markup and segments to translate."""
    if not isinstance(html, str):
        raise MarkupError(f"HTML must be a string, not {type(html).__name__}")
    splitter = _Splitter()
    for token in tokenize(html):
        splitter.add(token)
    return HtmlFragment(splitter.finish())
