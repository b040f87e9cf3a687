"""Uploaded files as texts to translate and back (LibreTranslate's ``/translate_file``).

Supported formats are ``.txt`` (every non-blank line is one text), ``.html``/``.htm`` (the whole
document is one HTML text) and ``.srt`` (SubRip subtitles: the text of each cue is one text; cue
numbers and timing lines are kept byte-for-byte).  Uploads must be UTF-8 (an optional BOM is kept)
or UTF-16 with a BOM; the rebuilt file is always UTF-8. Standard library only."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from service.filenames import FileError, FileTooLarge, extension_of

try:  # POSIX only: serializes saves and clean-ups of processes sharing a folder
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


SUPPORTED_FORMATS = (".txt", ".html", ".htm", ".srt", ".docx", ".pptx", ".odt", ".odp", ".epub")
_KINDS = {".txt": "txt", ".html": "html", ".htm": "html", ".srt": "srt", ".docx": "docx",
          ".pptx": "pptx", ".odt": "odt", ".odp": "odp", ".epub": "epub"}

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}
_UTF32_LE_BOM = b"\xff\xfe\x00\x00"

_LINE_BREAK = re.compile(r"(\r\n|\r|\n)")
_TIME = r"\d{1,3}:[0-5]\d:[0-5]\d[,.]\d{1,3}"
_SRT_TIMING = re.compile(rf"[ \t]*{_TIME}[ \t]*-->[ \t]*{_TIME}(?:[ \t].*)?", re.ASCII)
_SRT_INDEX = re.compile(r"[ \t]*\d{1,9}[ \t]*", re.ASCII)


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Slot:
    """Where translation ``index`` goes in a rebuilt file, and how its line breaks are written.

    ``sep`` replaces every line break of the translation; for SRT cues (``srt=True``) blank lines
    are dropped (they would end the cue) and ``end`` follows the last line.
    """

    index: int
    sep: str = "\n"
    end: str = ""
    srt: bool = False

    def render(self, translation: str) -> str:
        """The text written in place of this slot."""
        lines = _LINE_BREAK.split(translation)[0::2]
        if not self.srt:
            return self.sep.join(lines) + self.end
        lines = [line for line in lines if line.strip()]
        return self.sep.join(lines) + self.end if lines else ""


@dataclass
class Document:
    """A parsed upload: ``texts`` to translate, in order, each translated as ``text_format``.

    ``rebuild`` puts the translations back into the file's structure.  ``texts`` may be empty
    (e.g. a blank file); ``rebuild([])`` then gives the original content back.
    """

    kind: str                 # "txt" | "html" | "srt"
    texts: list[str]
    text_format: str          # "text" | "html"
    bom: bool = False         # the upload had a byte order mark: the rebuilt file gets a UTF-8 BOM
    parts: list[str | _Slot] = field(default_factory=list, repr=False)

    def rebuild(self, translations: Sequence[str], target: str | None = None) -> bytes:
        """The UTF-8 bytes of the translated file; ``translations`` pairs with ``texts``.
        ``target`` (the language translated into) is for formats with a language tag."""
        if len(translations) != len(self.texts):
            raise ValueError(f"{len(translations)} translations for {len(self.texts)} texts")
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                translation = translations[part.index]
                if not isinstance(translation, str):
                    raise TypeError("translations must be strings")
                out.append(part.render(translation))
        return (_UTF8_BOM if self.bom else b"") + "".join(out).encode("utf-8")


def kind_of(filename: str) -> str:
    """``"txt"``, ``"html"`` or ``"srt"`` from the file name, else ``FileError``."""
    kind = _KINDS.get(extension_of(filename))
    if kind is None:
        raise FileError("unsupported file format; supported formats: "
                        + ", ".join(SUPPORTED_FORMATS))
    return kind


def decode_upload(data: bytes, max_chars: int) -> tuple[str, bool]:
    """The text of an upload and whether it had a BOM; ``FileError``/``FileTooLarge`` otherwise.

    UTF-8 (optionally with a BOM) and UTF-16 with a BOM are accepted.  Sizes are checked on the
    bytes first (4 bytes at most per character) so that huge uploads are not decoded.
    """
    too_large = FileTooLarge(f"file is too large: more than {max_chars} characters")
    if len(data) > 4 * max_chars + 4:
        raise too_large
    bom, encoding = False, "utf-8"
    if data.startswith(_UTF8_BOM):
        bom, data = True, data[len(_UTF8_BOM):]
    elif data.startswith(_UTF32_LE_BOM):
        raise FileError("file is not UTF-8 text")
    elif data[:2] in _UTF16_BOMS:
        bom, encoding, data = True, _UTF16_BOMS[data[:2]], data[2:]
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise FileError("file is not UTF-8 text") from None
    if "\x00" in text:
        raise FileError("file contains NUL characters (binary data?)")
    if len(text) > max_chars:
        raise too_large
    return text, bom


def split_lines(text: str) -> list[tuple[str, str]]:
    """``(line, ending)`` pairs; endings are ``\\r\\n``, ``\\r``, ``\\n`` or ``""`` (last line)."""
    pieces = _LINE_BREAK.split(text)
    lines = list(zip(pieces[0::2], pieces[1::2] + [""]))
    if lines and lines[-1] == ("", ""):
        lines.pop()
    return lines


def _parse_txt(text: str) -> tuple[list[str], list[str | _Slot]]:
    """One text per non-blank line; indentation, trailing spaces and blank lines stay literal."""
    texts: list[str] = []
    parts: list[str | _Slot] = []
    for line, ending in split_lines(text):
        core = line.strip()
        if not core:
            parts.append(line + ending)
            continue
        start = len(line) - len(line.lstrip())
        parts.append(line[:start])
        parts.append(_Slot(len(texts), sep=ending or "\n"))
        parts.append(line[start + len(core):] + ending)
        texts.append(core)
    return texts, parts


def _is_cue_start(lines: list[tuple[str, str]], i: int) -> bool:
    """Whether line ``i`` is a cue number followed by a timing line (a cue with no blank line
    before it)."""
    return (i + 1 < len(lines) and _SRT_INDEX.fullmatch(lines[i][0]) is not None
            and _SRT_TIMING.fullmatch(lines[i + 1][0]) is not None)


def _parse_srt(text: str) -> tuple[list[str], list[str | _Slot]]:
    """One text per non-empty cue; cue numbers, timing lines and blank lines stay literal.

    A cue is an optional number line, a timing line and text lines up to a blank line (or up to
    the next number + timing pair).  A cue number without a valid timing line, or a non-blank line
    where a cue should start, is a ``FileError`` naming the cue and the line.
    """
    lines = split_lines(text)
    texts: list[str] = []
    parts: list[str | _Slot] = []
    i, ordinal = 0, 0
    while i < len(lines):
        line, ending = lines[i]
        if not line.strip():
            parts.append(line + ending)
            i += 1
            continue
        ordinal += 1
        if _SRT_INDEX.fullmatch(line):
            label = line.strip()
            if i + 1 >= len(lines) or not _SRT_TIMING.fullmatch(lines[i + 1][0]):
                raise FileError(f"SRT cue {label} (line {i + 2}): malformed or missing timing "
                                "line (expected HH:MM:SS,mmm --> HH:MM:SS,mmm)")
            parts.append(line + ending)
            i += 1
        elif not _SRT_TIMING.fullmatch(line):
            raise FileError(f"SRT cue {ordinal} (line {i + 1}): expected a cue number or a "
                            "timing line (HH:MM:SS,mmm --> HH:MM:SS,mmm)")
        parts.append("".join(lines[i]))     # the timing line
        i += 1
        start = i
        while i < len(lines) and lines[i][0].strip() and not _is_cue_start(lines, i):
            i += 1
        cue = lines[start:i]
        if cue:
            parts.append(_Slot(len(texts), sep=cue[0][1] or "\n", end=cue[-1][1], srt=True))
            texts.append("\n".join(body for body, _ in cue))
    return texts, parts


def parse_upload(filename: str, data: bytes, max_chars: int) -> Document:
    """Parse an uploaded file; ``filename`` only chooses the format (it is never a path)."""
    kind = kind_of(filename)
    if kind in ("docx", "pptx", "odt", "odp", "epub"):   # zip packages: service.formats.office
        from service.formats.office import parse_office
        return parse_office(kind, data, max_chars)
    text, bom = decode_upload(data, max_chars)
    if kind == "txt":
        texts, parts = _parse_txt(text)
        return Document("txt", texts, "text", bom, parts)
    if kind == "srt":
        texts, parts = _parse_srt(text)
        return Document("srt", texts, "text", bom, parts)
    if not text.strip():
        return Document("html", [], "html", bom, [text])
    return Document("html", [text], "html", bom, [_Slot(0)])


