"""Translated segments written back with their markup; ``parse_html`` and ``HtmlFragment``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from service.formats.markup.place import AlignedText, Placement, Unit, events, segment_units
from service.formats.markup.segment import (
    CLOSING,
    ESCAPES,
    Segment,
    Splitter,
    Tag,
    escape_text,
)
from service.formats.markup.tokenize import MarkupError, tokenize

__all__ = ["ESCAPES", "HtmlFragment", "parse_html", "translated_segment"]


def _outside_all(group: list[Tag]) -> list[int]:
    """Each gap (0..len) of a run of tags moved out of elements: before the start tags and
    after the end tags that touch it (a space right inside an element's edge is moved out of
    it). Linear: how far a gap moves left over start tags, and from there right over end tags,
    is computed once for all gaps (walking from each gap was quadratic in a run of tags)."""
    size = len(group)
    after_ends = list(range(size + 1))  # from gap i, past the end tags that follow
    for index in range(size - 1, -1, -1):
        if group[index].closes:
            after_ends[index] = after_ends[index + 1]
    moved: list[int] = []
    left = 0  # gap i moved left past the start tags before it
    for gap in range(size + 1):
        if gap == 0 or not group[gap - 1].opens:
            left = gap
        moved.append(after_ends[left])
    return moved


def _gaps(group: list[Tag], where: str) -> set[int]:
    """Gaps (0..len) of a run of tags that get a space; where is start, inner, end or both."""
    moved = _outside_all(group)
    gaps = {moved[index] for index in range(len(group) + 1)
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


def _word_gaps(group: list[Tag], where: str, before: str, after: str) -> set[int]:
    """Gaps of a run of tags holding protected spans (``Tag.word``) between unit texts before
    and after: the source's spacing around them; a space on both sides of them where the
    translation has a word boundary, and wherever they would touch a letter or digit; none
    before closing punctuation; none at the segment's edges."""
    gaps = _gaps(group, "none")
    words = [index for index, tag in enumerate(group) if tag.word]
    first, last = words[0], words[-1] + 1
    if where == "inner" or before[-1:].isalnum():
        gaps.add(first)
    if where == "inner" or after[:1].isalnum():
        gaps.add(last)
    if after[:1] in CLOSING:
        gaps -= set(range(last, len(group) + 1))
    if where in ("start", "both"):
        gaps.discard(0)
    if where in ("end", "both"):
        gaps.discard(len(group))
    return gaps


def _join(group: list[Tag], where: str, before: str = "", after: str = "") -> str:
    """Tags between two units (texts before and after); where says whether a word boundary
    lies there (inner)."""
    has_word = any(tag.word for tag in group)
    if where == "none" and not has_word:
        return "".join(tag.raw for tag in group)
    gaps = _word_gaps(group, where, before, after) if has_word else _gaps(group, where)
    out: list[str] = []
    for index, tag in enumerate(group):
        if index in gaps:
            out.append(" ")
        out.append(tag.raw)
    if len(group) in gaps:
        out.append(" ")
    return "".join(out)


def _assemble(events: list[Unit | Tag], entities: dict[str, str], plain: bool = False) -> str:
    """The segment's HTML: escaped unit texts joined by spaces at word starts, tags between."""
    out: list[str] = []
    group: list[Tag] = []
    seen = boundary = False
    previous = ""
    for event in events:
        if isinstance(event, Tag):
            group.append(event)
            continue
        boundary = boundary or event.space
        if not event.text:
            continue
        where = "start" if not seen else "inner" if boundary else "none"
        out.append(_join(group, where, previous, event.text))
        out.append(event.text if plain else escape_text(event.text, entities))
        group, seen, boundary, previous = [], True, False, event.text
    out.append(_join(group, "end" if seen else "both", previous))
    return "".join(out)


def _render_segment(segment: Segment, translation: Any) -> str:
    units = segment_units(segment, translation)
    boxes = Placement(units, len(segment.nodes)).run(segment.root)
    return _assemble(events(segment, boxes, units), segment.entities, segment.plain)


class HtmlFragment:
    """Parsed HTML: verbatim markup and the segments to translate."""

    def __init__(self, parts: list[str | Segment]) -> None:
        self._parts = parts
        self.segments: list[str] = [part.text for part in parts if isinstance(part, Segment)]

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
                out.extend((part.leading, translated_segment(part, next(found)), part.trailing))
        return "".join(out)


def translated_segment(segment: Segment, translation: Any) -> str:
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


def parse_html(html: str, protect: Callable[[Segment], Segment | None] | None = None
               ) -> HtmlFragment:
    """Split an HTML fragment or document into verbatim markup and segments to translate
    (``protect``: each segment with its protected spans made atoms, see markup.protected)."""
    if not isinstance(html, str):
        raise MarkupError(f"HTML must be a string, not {type(html).__name__}")
    splitter = Splitter(protect)
    for token in tokenize(html):
        splitter.add(token)
    return HtmlFragment(splitter.finish())
