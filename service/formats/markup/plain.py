"""Plain texts with protected spans through the segment and placement machinery: each line
with spans is a segment (no markup, nothing escaped) whose spans are atoms; the model
translates the text with them taken out (``model_text``, lines kept), and ``render`` puts
them back, verbatim, where the attention alignment places them."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from service.formats.markup.protected import protect_segment
from service.formats.markup.render import translated_segment
from service.formats.markup.segment import WHITESPACE, Segment, _SegmentBuilder

LINE_BREAK = re.compile(r"\r\n|\r|\n")  # as service.formats.text splits lines


@dataclass(frozen=True, slots=True)
class PlainLine:
    """A line: what the model sees of it, its segment (a line with spans) and the line."""

    model: str
    segment: Segment | None
    original: str


def plain_segment(line: str) -> Segment:
    builder = _SegmentBuilder()
    builder.text(line)
    segment = builder.finish("", "")
    segment.plain = True
    return segment


@dataclass(frozen=True, slots=True)
class PlainText:
    lines: list[PlainLine]

    @property
    def model_text(self) -> str:
        """The text the model translates: each line without its protected spans."""
        return "\n".join(line.model for line in self.lines)

    def render(self, translations: Sequence[Any]) -> str:
        """The text from each line's translation: an AlignedText for a line with spans, the
        translated string for one without; a line of spans only comes back as it was."""
        out: list[str] = []
        for line, translation in zip(self.lines, translations):
            if line.segment is not None:
                out.append(translated_segment(line.segment, translation))
            elif not line.model:
                out.append(line.original.strip(WHITESPACE))
            else:
                out.append(str(translation))
        return "\n".join(out)


def plain_text(text: str, find: Callable[[str], Sequence[Any]]) -> PlainText | None:
    """text as lines with their protected spans (``find``: objects with start and end in a
    line's text, whitespace collapsed as segments have it); None when it has none."""
    lines: list[PlainLine] = []
    protected = False
    for line in LINE_BREAK.split(text):
        base = plain_segment(line)
        spans = find(base.text)
        if not spans:
            lines.append(PlainLine(line, None, line))
            continue
        protected = True
        segment = protect_segment(base, [(span.start, span.end) for span in spans])
        if segment is None:
            lines.append(PlainLine("", None, line))
        else:
            lines.append(PlainLine(segment.text, segment, line))
    return PlainText(lines) if protected else None
