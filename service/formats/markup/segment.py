"""Tokens sorted into runs of inline content (segments to translate, each with a tree of the
inline elements over its text) and verbatim parts."""

from __future__ import annotations

import html as html_entities
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service.formats.markup.tokenize import Token, entity_refs

WHITESPACE = " \t\n\r\f"  # HTML's (ASCII) whitespace; U+00A0 is text
CLOSING = frozenset(",.;:!?)]}»…%")  # no space before these after a protected span

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

@dataclass(slots=True)
class _Item:
    """A token of a run: text, open, close or atom."""

    kind: str
    name: str
    raw: str
    is_break: bool = False


@dataclass(slots=True, eq=False)
class Tag:
    """Raw text of a tag in a segment and whether whitespace touched it in the source."""

    raw: str
    opens: bool = False
    closes: bool = False
    is_break: bool = False
    ws_before: bool = False
    ws_after: bool = False
    word: bool = False  # a protected span: spaced like a word (source spacing kept)


@dataclass(slots=True, eq=False)
class Node:
    """An inline element (characters start..end) or an atom (start == end) of a segment."""

    order: int
    start: int
    end: int
    name: str = ""
    open: Tag | None = None
    close: Tag | None = None
    atom: bool = False
    children: list[Node] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Segment:
    """A run that is translated: its text, span tree and surrounding whitespace."""

    text: str
    root: Node
    nodes: list[Node]
    leading: str
    trailing: str
    entities: dict[str, str]
    plain: bool = False  # plain text: nothing is escaped on output


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
        self.last_tag: Tag | None = None  # the latest tag when no character followed it
        self.root = Node(0, 0, 0)
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
             is_break: bool = False) -> Tag:
        tag = Tag(raw, opens, closes, is_break, ws_before=self.ws_since)
        self.ws_since = False
        self.last_tag = tag
        return tag

    def _node(self, start: int, end: int, **kwargs: Any) -> Node:
        node = Node(len(self.nodes), start, end, **kwargs)
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

    def finish(self, leading: str, trailing: str) -> Segment:
        text = "".join(self.chars)
        for node in self.stack[1:]:
            node.end = len(text)
        for node in self.nodes:
            node.start = min(node.start, len(text))
            node.end = min(max(node.end, node.start), len(text))
        self.root.end = len(text)
        return Segment(text, self.root, self.nodes, leading, trailing, self.entities)


ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\u00a0": "&nbsp;"}


def escape_text(text: str, entities: dict[str, str]) -> str:
    """Escape &, <, >, U+00A0; characters the source wrote as entities keep that spelling."""
    return "".join(entities.get(char) or ESCAPES.get(char, char) for char in text)


def _run_part(items: list[_Item], protect: Callable[[Segment], Segment | None] | None = None
              ) -> str | Segment:
    """A run as a segment, or as its raw text when it has no letter or digit (``protect``:
    the segment with its protected spans made atoms, None when no letter or digit is left)."""
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
    segment: Segment | None = builder.finish(leading, trailing)
    if protect is not None and segment is not None and any(c.isalnum() for c in segment.text):
        segment = protect(segment)
    if segment is not None and any(char.isalnum() for char in segment.text):
        return segment
    return "".join(item.raw for item in items)


# Attributes of a start tag as html.parser reads them (name, then an optional quoted or bare
# value); the tag name is skipped first.
_TAG_NAME = re.compile(r"<[^\s/>]*")
_ATTRIBUTE = re.compile(r"""((?<=['"\s/])[^\s/>][^\s/=>]*)"""
                        r"""(\s*=+\s*('[^']*'|"[^"]*"|(?!['"])[^>\s]*))?""")


def untranslated(raw: str) -> bool:
    """A start tag marked not to be translated, as the web marks it: ``translate="no"`` (HTML)
    or the class ``notranslate`` (Google's, also honoured by browsers' translators)."""
    lowered = raw.lower()
    if "translate" not in lowered:
        return False
    head = _TAG_NAME.match(raw)
    rest = raw[head.end() if head else 0:]
    for match in _ATTRIBUTE.finditer(rest):
        name = match.group(1).lower()
        value = html_entities.unescape((match.group(3) or "").strip("'\""))
        if name == "translate" and value.strip().lower() == "no":
            return True
        if name == "class" and "notranslate" in value.lower().split():
            return True
    return False


@dataclass(slots=True)
class _Opaque:
    """An untranslated element being collected (nested elements of its name counted)."""

    name: str
    inline: bool
    raws: list[str]
    depth: int = 1


class Splitter:
    """Sorts tokens into verbatim markup and runs of inline content."""

    def __init__(self, protect: Callable[[Segment], Segment | None] | None = None) -> None:
        self.protect = protect
        self.parts: list[str | Segment] = []
        self.run: list[_Item] = []
        self.opaque: _Opaque | None = None

    def flush(self) -> None:
        if self.run:
            self.parts.append(_run_part(self.run, self.protect))
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
        elif kind == "start" and name not in VOID_INLINE and untranslated(token.raw):
            inline = name in INLINE
            if not inline:
                self.flush()
            self.opaque = _Opaque(name, inline, [token.raw])
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

    def finish(self) -> list[str | Segment]:
        """The parts; an element left open at the end stays last, after its run."""
        if self.opaque is not None:
            self.verbatim("".join(self.opaque.raws))
        self.flush()
        return self.parts


# --------------------------------------------------------------------------------------------
# Source pieces to characters, target pieces to units


