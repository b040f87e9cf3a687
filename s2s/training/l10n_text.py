"""Text out of localization files: gettext ``.mo`` catalogs and translated HTML help pages.

Used by ``s2s.training.l10n_corpus`` to build parallel corpora from Debian's localization
packages. Standard library only; nothing here prints or touches the network.

- ``parse_mo`` reads a compiled gettext catalog (both byte orders, msgctxt, plural forms);
  ``mo_pairs`` turns its entries into (English, translation) pairs, one per plural form the
  language has (msgid with msgstr[0], msgid_plural with msgstr[1]).
- ``strip_mnemonics`` removes keyboard accelerators (``~`` LibreOffice, ``_`` GTK, ``&`` Qt/KDE)
  and keeps placeholders (``%s``, ``%1``, ``%(name)s``, ``%<...%>``, ``{0}``, ``$(ARG)``, markup).
- ``help_paragraphs`` reads a LibreOffice help page: the text of every element with a paragraph
  id (``par_id...``, ``hd_id...``), keyed by id and occurrence, so pages of two languages align
  by file and id. ``html_blocks`` reads any HTML page as a list of (tag, text) blocks, for
  documentation whose languages are generated from one source (same block structure).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from html.parser import HTMLParser


class L10nFormatError(ValueError):
    """A localization file that cannot be read (not a .mo catalog, bad offsets, bad charset)."""


MO_MAGIC_LE = 0x950412DE
_WS = re.compile(r"[ \t\r\n\f\v\x85\u2028\u2029]+")
_INVISIBLE = re.compile("[\u00ad\u200b\u200e\u200f\ufeff]")


def normalize_ws(text: str) -> str:
    """Collapse runs of whitespace (newlines included) to one space, drop soft hyphens and
    zero-width marks, strip the ends. No-break spaces (French typography) are kept."""
    return _WS.sub(" ", _INVISIBLE.sub("", text)).strip()


@dataclass(frozen=True)
class MoEntry:
    context: str | None
    msgid: str
    msgid_plural: str | None
    msgstr: tuple[str, ...]


def _charset(header: str) -> str:
    match = re.search(r"charset=\s*([A-Za-z0-9_.:-]+)", header)
    return match.group(1) if match and match.group(1).upper() != "CHARSET" else "utf-8"


def parse_mo(data: bytes) -> list[MoEntry]:
    """The entries of a compiled gettext catalog (the header entry, msgid "", left out)."""
    if len(data) < 20:
        raise L10nFormatError("not a .mo catalog: shorter than its header")
    magic_le = struct.unpack("<I", data[:4])[0]
    if magic_le == MO_MAGIC_LE:
        order = "<"
    elif struct.unpack(">I", data[:4])[0] == MO_MAGIC_LE:
        order = ">"
    else:
        raise L10nFormatError("not a .mo catalog: bad magic number")
    revision, count, orig_at, trans_at = struct.unpack(order + "4I", data[4:20])
    if revision >> 16 not in (0, 1):
        raise L10nFormatError(f"unsupported .mo revision {revision >> 16}")

    def string(table: int, index: int) -> bytes:
        length, offset = struct.unpack(order + "2I", data[table + 8 * index: table + 8 * index + 8])
        if offset + length > len(data) or table + 8 * index + 8 > len(data):
            raise L10nFormatError("corrupt .mo catalog: string outside the file")
        return data[offset: offset + length]

    raw = [(string(orig_at, i), string(trans_at, i)) for i in range(count)]
    charset = "utf-8"
    for key, value in raw:
        if key == b"":
            charset = _charset(value.decode("ascii", "replace"))
    entries = []
    try:
        for key, value in raw:
            if key == b"":
                continue
            text = key.decode(charset)
            context = None
            if "\x04" in text:
                context, text = text.split("\x04", 1)
            msgid, _, plural = text.partition("\x00")
            entries.append(MoEntry(context, msgid, plural if "\x00" in text else None,
                                   tuple(value.decode(charset).split("\x00"))))
    except (LookupError, UnicodeDecodeError) as exc:
        raise L10nFormatError(f"cannot decode .mo catalog as {charset}: {exc}") from exc
    return entries


def mo_pairs(entries: list[MoEntry], nplurals: int = 2) -> list[tuple[str, str]]:
    """(English, translation) pairs: a plural entry gives msgid -> msgstr[0] and, where the
    language has a plural form, msgid_plural -> msgstr[1]. Untranslated forms are kept as
    empty translations (the cleaning step counts and removes them)."""
    pairs = []
    for entry in entries:
        pairs.append((entry.msgid, entry.msgstr[0] if entry.msgstr else ""))
        if entry.msgid_plural is not None and nplurals > 1:
            pairs.append((entry.msgid_plural, entry.msgstr[1] if len(entry.msgstr) > 1 else ""))
    return pairs


# printf (%s %d %.2f %qs %lu %%), positional (%1, %1$s), python (%(name)s), gcc quotes
# (%<...%>), braces ({0} {name}), shell/make ($(VAR) ${VAR} $VAR$), markup and entities.
PLACEHOLDER = re.compile(
    r"%<.*?%>"
    r"|%(?:\([^)\s]*\)|[1-9][0-9]*\$)?[-+ #0]*(?:\*|[0-9]+)?(?:\.(?:\*|[0-9]+))?"
    r"(?:hh|h|ll|l|L|q|j|z|t|I64|I32)*[diouxXeEfFgGaAcspnmrK%]"
    r"|%[1-9][0-9]*"
    r"|\{[^{}\s]*\}"
    r"|\$\([^)\s]*\)|\$\{[^}\s]*\}|\$[A-Za-z_][A-Za-z0-9_]*\$?"
    r"|</?[A-Za-z][^<>]*>"
    r"|&(?:[A-Za-z]+|#[0-9]+|#x[0-9A-Fa-f]+);"
)


def placeholders(text: str) -> list[str]:
    return PLACEHOLDER.findall(text)


def _strip_segment(segment: str, marks: str, one_underscore: bool) -> str:
    if "~" in marks:
        segment = re.sub(r"~(?=\S)", "", segment)
    if "&" in marks:
        segment = re.sub(r"&(&|(?=\w))", lambda m: m.group(1), segment)
    if "_" in marks and one_underscore:
        segment = re.sub(r"_(?=\w)", "", segment)
    return segment


def strip_mnemonics(text: str, marks: str = "~_&") -> str:
    """Remove keyboard accelerators outside placeholders: ``~`` before a character, ``&``
    before a word character (``&&`` is a literal ``&``), and ``_`` before a word character when
    it is the only such underscore of the text (``file_name and dir_name`` is left alone)."""
    if not marks:
        return text
    pieces, last = [], 0
    spans = [(m.start(), m.end()) for m in PLACEHOLDER.finditer(text)]
    one_underscore = sum(len(re.findall(r"_(?=\w)", text[a:b]))
                         for a, b in _gaps(spans, len(text))) == 1
    for start, end in spans:
        pieces.append(_strip_segment(text[last:start], marks, one_underscore))
        pieces.append(text[start:end])
        last = end
    pieces.append(_strip_segment(text[last:], marks, one_underscore))
    return "".join(pieces)


def _gaps(spans: list[tuple[int, int]], size: int):
    last = 0
    for start, end in spans:
        yield last, start
        last = end
    yield last, size


# ---------------------------------------------------------------- HTML

_HELP_ID = re.compile(r"^(?:par_id|hd_id|N[0-9])")
_VOID = {"br", "img", "meta", "link", "input", "hr", "area", "base", "col", "embed", "source",
         "wbr", "param", "track"}


class _HelpParser(HTMLParser):
    """Text of the elements with paragraph ids; inside them, the hidden variants of inline
    switches (``<span hidden id="MAC...">``) are skipped and the default variant kept."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[tuple[str, str]] = []
        self._stack: list[tuple[str, bool]] = []   # (tag, starts a paragraph or a skip)
        self._open: str | None = None
        self._buffer: list[str] = []
        self._skip = 0
        self._ignore = 0   # script/style

    def handle_starttag(self, tag, attrs):
        if tag in _VOID:
            if tag == "br" and self._open is not None:
                self._buffer.append(" ")
            return
        attr = dict(attrs)
        marker = ""
        if tag in ("script", "style"):
            self._ignore += 1
            marker = "ignore"
        elif self._open is None:
            ident = attr.get("id") or ""
            if _HELP_ID.match(ident):
                self._open, self._buffer, marker = ident, [], "open"
        elif "hidden" in attr and not (attr.get("id") or "").startswith("default"):
            self._skip += 1
            marker = "skip"
        self._stack.append((tag, marker))

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        # close up to the matching tag (HTML in the wild leaves some tags open)
        for depth in range(len(self._stack) - 1, -1, -1):
            if self._stack[depth][0] == tag:
                while len(self._stack) > depth:
                    self._close(self._stack.pop()[1])
                return

    def _close(self, marker: str) -> None:
        if marker == "open":
            assert self._open is not None, "an open marker is pushed with the paragraph's id"
            self.paragraphs.append((self._open, "".join(self._buffer)))
            self._open, self._buffer, self._skip = None, [], 0
        elif marker == "skip":
            self._skip -= 1
        elif marker == "ignore":
            self._ignore -= 1

    def handle_data(self, data):
        if self._open is not None and not self._skip and not self._ignore:
            self._buffer.append(data)

    def close(self):
        super().close()
        while self._stack:
            self._close(self._stack.pop()[1])


def help_paragraphs(page: str) -> dict[str, str]:
    """{id#occurrence: text} of a LibreOffice help page (text not yet normalised)."""
    parser = _HelpParser()
    parser.feed(page)
    parser.close()
    seen: dict[str, int] = {}
    out = {}
    for ident, text in parser.paragraphs:
        n = seen.get(ident, 0)
        seen[ident] = n + 1
        out[f"{ident}#{n}"] = text
    return out


BLOCK_TAGS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "li", "td", "th",
                        "caption", "figcaption", "title", "pre"})


class _BlockParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, str]] = []
        self._stack: list[tuple[str, bool]] = []
        self._buffer: list[str] | None = None
        self._ignore = 0

    def handle_starttag(self, tag, attrs):
        if tag in _VOID:
            if tag == "br" and self._buffer is not None:
                self._buffer.append(" ")
            return
        opens = False
        if tag in ("script", "style"):
            self._ignore += 1
        elif self._buffer is None and tag in BLOCK_TAGS:
            self._buffer, opens = [], True
        self._stack.append((tag, opens))

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        for depth in range(len(self._stack) - 1, -1, -1):
            if self._stack[depth][0] == tag:
                while len(self._stack) > depth:
                    self._close(*self._stack.pop())
                return

    def _close(self, tag: str, opens: bool) -> None:
        if tag in ("script", "style"):
            self._ignore -= 1
        if opens:
            self.blocks.append((tag, "".join(self._buffer or [])))
            self._buffer = None

    def handle_data(self, data):
        if self._buffer is not None and not self._ignore:
            self._buffer.append(data)

    def close(self):
        super().close()
        while self._stack:
            self._close(*self._stack.pop())


def html_blocks(page: str) -> list[tuple[str, str]]:
    """The outermost block elements of a page (p, headings, list items, cells, ...) in order,
    as (tag, text). Two languages of one generated document align block by block when their
    tag sequences are equal."""
    parser = _BlockParser()
    parser.feed(page)
    parser.close()
    return parser.blocks
