"""Placement of a segment's inline elements on its translation by the attention alignment."""

from __future__ import annotations

import math
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from service.formats.markup.segment import Node, Segment, Tag

MARK = "\u2581"  # SentencePiece's word-start mark
USABLE_MATCH = 0.5  # least share of source piece characters found in the text
SCAN_PER_UNIT = 32  # aligned units looked at per unit (and node) to find elements' own units


@dataclass(frozen=True)
class AlignedText:
    """One translated segment. ``offsets`` (optional): row i of ``attention`` holds the
    weights of source pieces offsets[i], offsets[i] + 1, ... (a block-diagonal attention of
    several sentences without its zeros, which would take quadratic room)."""

    source_pieces: list[str]
    target_pieces: list[str]
    attention: list[list[float]]
    text: str
    offsets: list[int] | None = None


@dataclass(slots=True)
class Unit:
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


def _alignment(attention: Sequence[Sequence[Any]] | None, targets: int, sources: int,
               offsets: Sequence[Any] | None = None) -> list[int | None]:
    """Source piece of each target piece; proportional when the attention says nothing.
    Row i's first weight is for source piece offsets[i] (0 without offsets)."""
    rows = list(attention if attention is not None else [])[:targets]
    shifts = [int(offset) for offset in offsets[:len(rows)]] if offsets is not None else []
    shifts += [0] * (len(rows) - len(shifts))
    links: list[int | None] = []
    for row, shift in zip(rows, shifts):
        found = _argmax(row, sources - shift) if 0 <= shift < sources else None
        links.append(None if found is None else found + shift)
    links += [None] * (targets - len(rows))
    if sources and all(link is None for link in links):
        links = [target * sources // targets for target in range(targets)]
    return links


def _units(pieces: Sequence[str], links: list[int | None], spans: list[tuple[int, int]],
           text: str, cuts: list[int]) -> list[Unit]:
    """Target units; a piece copying its source piece exactly is cut where markup cuts it."""
    units: list[Unit] = []
    for piece, link in zip(pieces, links):
        space = piece.startswith(MARK)
        core = (piece[1:] if space else piece).replace(MARK, " ").strip()
        if link is None:
            units.append(Unit(space, core, None))
            continue
        start, end = spans[link]
        inner = cuts[bisect_right(cuts, start):bisect_left(cuts, end)]
        if not inner or core != text[start:end]:
            units.append(Unit(space, core, (start, end)))
            continue
        bounds = [start, *inner, end]
        for index in range(len(bounds) - 1):
            part = core[bounds[index] - start:bounds[index + 1] - start]
            units.append(Unit(space and index == 0, part, (bounds[index], bounds[index + 1])))
    return units


def segment_units(segment: Segment, translation: Any) -> list[Unit]:
    """The target units of a translation, with a fallback for every unusable part."""
    targets = [str(piece) for piece in translation.target_pieces]
    attention = translation.attention
    offsets = getattr(translation, "offsets", None)
    if not targets:
        targets, attention = _word_pieces(str(translation.text)), None
    spans, share = _piece_spans(segment.text, [str(p) for p in translation.source_pieces])
    if share < USABLE_MATCH:
        spans, _ = _piece_spans(segment.text, _word_pieces(segment.text))
        attention = None
    links = _alignment(attention, len(targets), len(spans), offsets)
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
    children: list[Node] = field(default_factory=list)


class _Sources:
    """The aligned units by source position, to find those inside an element quickly.

    Each element looks at the units aligned into its characters, so nested elements look at
    the same units again: deep nesting over many words would take quadratic time. ``budget``
    bounds the units looked at in all (SCAN_PER_UNIT per unit and node); past it ``inside``
    says None and the element is placed by the positions of its first and last characters."""

    def __init__(self, units: list[Unit], nodes: int = 0) -> None:
        spans = sorted((unit.src[0], unit.src[1], index)
                       for index, unit in enumerate(units) if unit.src)
        self.spans = spans
        self.starts = [start for start, _, _ in spans]
        self.longest = max((end - start for start, end, _ in spans), default=0)
        self.budget = SCAN_PER_UNIT * (len(units) + nodes) + 4096

    def inside(self, node: Node, lo: int, hi: int) -> list[int] | None:
        """Sorted units in lo..hi aligned to characters of node (a point strictly inside);
        None once the budget is spent."""
        first = bisect_right(self.starts, node.start - self.longest - 1)
        last = bisect_left(self.starts, node.end)
        if last - first > self.budget:
            self.budget = 0
            return None
        self.budget -= last - first
        found = [index for start, end, index in self.spans[first:last]
                 if lo <= index < hi and (node.start < start if start == end
                                           else end > node.start)]
        return sorted(found)


def _anchors(units: list[Unit]) -> list[tuple[int, int]]:
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


class Placement:
    """Places a segment's tree over target units, top down with an explicit stack."""

    def __init__(self, units: list[Unit], nodes: int = 0) -> None:
        self.size = len(units)
        self.units = units
        self.sources = _Sources(units, nodes)
        self.anchors = _anchors(units)
        self.boxes: dict[Node, _Box] = {}

    def anchor(self, position: int) -> int:
        """The first unit aligned to a source character at or after position (else the end)."""
        found = bisect_left(self.anchors, (position, -1))
        return self.anchors[found][1] if found < len(self.anchors) else self.size

    def word_start(self, point: int, lowest: int) -> int:
        """point moved back to the start of the word whose middle it is in (a protected span
        goes between words, never into one)."""
        units = self.units
        while lowest < point < self.size and not units[point].space and units[point].text[:1] \
                .isalnum() and units[point - 1].text[-1:].isalnum():
            point -= 1
        return point

    def run(self, root: Node) -> dict[Node, _Box]:
        self.boxes[root] = _Box(0, self.size, list(range(self.size)))
        stack = [root]
        while stack:
            node = stack.pop()
            self.place_children(node)
            stack.extend(child for child in node.children if child.children)
        return self.boxes

    def place_children(self, node: Node) -> None:
        """Give each child of node a range inside node's; siblings disjoint and in order."""
        parent = self.boxes[node]
        strong: list[_Box] = []
        weak: list[tuple[Node, _Box]] = []
        for child in node.children:
            own = [] if child.atom else self.sources.inside(child, parent.lo, parent.hi)
            if own is None:  # over the budget: the units at its first and after its last char
                lo = min(max(self.anchor(child.start), parent.lo), parent.hi)
                hi = min(max(self.anchor(child.end), lo), parent.hi)
                own = list(range(lo, hi)) if hi - lo <= 1 else [lo, hi - 1]
            if own:
                box = _Box(own[0], own[-1] + 1, own)
            elif child.atom and child.start == 0 and child.open is not None and child.open.word:
                box = _Box(parent.lo, parent.lo, [])  # a protected span that starts the
                #                                       source starts the translation
            else:
                point = min(max(self.anchor(child.start), parent.lo), parent.hi)
                if child.atom and child.open is not None and child.open.word:
                    point = self.word_start(point, parent.lo)
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
    def place_points(weak: list[tuple[Node, _Box]], strong: list[_Box], parent: _Box) -> None:
        """Points leave siblings' ranges; an element with text but no aligned unit wraps the
        unit at its point when no sibling holds it."""
        starts = [box.lo for box in strong]
        held = _Ranges(strong)
        taken: set[int] = set()
        for child, box in weak:
            _step_out(box, strong, starts)
            if (not child.atom and child.end > child.start and box.lo < parent.hi
                    and box.lo not in taken and not held.holds(box.lo)):
                box.hi = box.lo + 1
                taken.add(box.lo)


class _Ranges:
    """The union of the boxes' unit ranges, merged, to ask whether one holds a unit (a set of
    all their units would take the parent's whole range at every level of nesting)."""

    def __init__(self, boxes: list[_Box]) -> None:
        merged: list[list[int]] = []
        for lo, hi in sorted((box.lo, box.hi) for box in boxes if box.hi > box.lo):
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        self.los = [lo for lo, _ in merged]
        self.his = [hi for _, hi in merged]

    def holds(self, unit: int) -> bool:
        found = bisect_right(self.los, unit) - 1
        return found >= 0 and unit < self.his[found]


def _unclosed(node: Node) -> bool:
    """An element without end tag: whatever follows it in its parent is inside it."""
    return not node.atom and node.close is None


def _order(node: Node, parent: _Box, boxes: dict[Node, _Box]) -> None:
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


def events(segment: Segment, boxes: dict[Node, _Box], units: list[Unit]
            ) -> list[Unit | Tag]:
    """Units and tags in output order (depth first, explicit stack)."""
    root = segment.root
    events: list[Unit | Tag] = []
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


