"""File translation (LibreTranslate's ``/translate_file`` and ``/download_file``): parsing uploads
into the texts to translate, rebuilding the translated file, and a store that serves translated
files for a limited time.

Supported formats are ``.txt`` (every non-blank line is one text), ``.html``/``.htm`` (the whole
document is one HTML text) and ``.srt`` (SubRip subtitles: the text of each cue is one text; cue
numbers and timing lines are kept byte-for-byte).  Uploads must be UTF-8 (an optional BOM is kept)
or UTF-16 with a BOM; the rebuilt file is always UTF-8.

The store keeps each file under an unguessable name (``secrets.token_urlsafe(16)`` plus the
extension) next to a small sidecar holding the filename suggested to the browser.  Writes are
atomic, the total size is bounded (expired files go first, then the oldest), and several processes
may share the folder: on POSIX a lock file serializes saves and clean-ups, and every step tolerates
files vanishing under it.

Standard library only; nothing here prints or logs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

try:  # POSIX only: serializes saves and clean-ups of processes sharing a folder
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

SUPPORTED_FORMATS = (".txt", ".html", ".htm", ".srt")
_KINDS = {".txt": "txt", ".html": "html", ".htm": "html", ".srt": "srt"}

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}
_UTF32_LE_BOM = b"\xff\xfe\x00\x00"

_LINE_BREAK = re.compile(r"(\r\n|\r|\n)")
_TIME = r"\d{1,3}:[0-5]\d:[0-5]\d[,.]\d{1,3}"
_SRT_TIMING = re.compile(rf"[ \t]*{_TIME}[ \t]*-->[ \t]*{_TIME}(?:[ \t].*)?", re.ASCII)
_SRT_INDEX = re.compile(r"[ \t]*\d{1,9}[ \t]*", re.ASCII)


class FileError(ValueError):
    """An upload that cannot be translated; the message is safe to show the client (400)."""


class FileTooLarge(FileError):
    """An upload or translated file over a size limit (413)."""


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

    def rebuild(self, translations: Sequence[str]) -> bytes:
        """The UTF-8 bytes of the translated file; ``translations`` pairs with ``texts``."""
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


def extension_of(filename: str) -> str:
    """The lower-case extension (with its dot) of a client-supplied file name, or ``""``."""
    base = re.split(r"[\\/]", filename or "")[-1]
    stem, dot, ext = base.rpartition(".")
    return "." + ext.lower() if dot and stem else ""


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


# --------------------------------------------------------------------------- store

_TOKEN_BYTES = 16
_TOKEN_CHARS = 22              # len(secrets.token_urlsafe(16))
_NAME = re.compile(rf"[A-Za-z0-9_-]{{{_TOKEN_CHARS}}}\.(?:txt|html|htm|srt)", re.ASCII)
_MAX_NAME_CHARS = 64
_DOWNLOAD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,150}", re.ASCII)
_MAX_STEM_CHARS = 80
_MAX_TARGET_CHARS = 20
_META_SUFFIX = ".name"         # sidecar with the suggested download filename
_TMP_PREFIX = ".tmp-"
_LOCK_NAME = ".lock"


def _sanitize(value: str, limit: int, keep: str) -> str:
    """ASCII-fold ``value`` and replace runs of characters outside ``[A-Za-z0-9]`` + ``keep``
    by ``_``; no leading/trailing ``.``/``_``/``-``, no ``..``, at most ``limit`` characters."""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(rf"[^A-Za-z0-9{re.escape(keep)}]+", "_", folded)
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    return cleaned[:limit].strip("._-")


def download_filename(original_name: str, target: str) -> str:
    """The filename suggested for a translated file, e.g. ``report.de.txt``.

    Only ``[A-Za-z0-9._-]``, bounded length, never starting with a dot; ``translated`` stands in
    for a stem with nothing usable left.
    """
    ext = extension_of(original_name)
    base = re.split(r"[\\/]", original_name or "")[-1]
    stem = base[: len(base) - len(ext)] if ext else base
    stem = _sanitize(stem, _MAX_STEM_CHARS, "._-") or "translated"
    target = _sanitize(target or "", _MAX_TARGET_CHARS, "_-")
    ext = ext if re.fullmatch(r"\.[a-z0-9]{1,10}", ext, re.ASCII) else ""
    return ".".join(p for p in (stem, target) if p) + ext


class FileStore:
    """Translated files served for ``ttl_s`` seconds, at most ``max_bytes`` in all.

    Files live in ``folder`` as ``<token><ext>`` (the download name) plus a
    ``<token><ext>.name`` sidecar holding the suggested filename.  Only the data files count
    towards ``max_bytes``.  ``clock`` gives the current time in seconds since the epoch (files'
    modification times are set from it, so processes sharing the folder must share clocks).
    """

    def __init__(self, folder: Path, ttl_s: float, max_bytes: int,
                 clock: Callable[[], float] = time.time):
        if ttl_s <= 0 or max_bytes <= 0:
            raise ValueError("ttl_s and max_bytes must be positive")
        self.folder = Path(folder)
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self.clock = clock
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    # ---- public

    def save(self, data: bytes, original_name: str, target: str) -> str:
        """Store a translated file; returns its download name (``FileTooLarge`` if over
        ``max_bytes`` on its own).  Expired files, then the oldest, make room for it."""
        if len(data) > self.max_bytes:
            raise FileTooLarge(f"translated file is too large: more than {self.max_bytes} bytes")
        ext = extension_of(original_name)
        if ext not in _KINDS:
            raise FileError("unsupported file format; supported formats: "
                            + ", ".join(SUPPORTED_FORMATS))
        suggested = download_filename(original_name, target)
        with self._locked():
            self._make_room(len(data))
            name = secrets.token_urlsafe(_TOKEN_BYTES) + ext
            self._write_atomic(self.folder / (name + _META_SUFFIX), suggested.encode("ascii"))
            self._write_atomic(self.folder / name, data)
        return name

    def open(self, name: str) -> tuple[Path, str]:
        """The path of a stored file and the filename to suggest (Content-Disposition).

        ``FileNotFoundError`` (with no path in its message) for invalid names, which never
        reach the disk, and for unknown or expired files.
        """
        not_found = FileNotFoundError(errno.ENOENT, "file not found or expired")
        if not self.valid_name(name):
            raise not_found
        path = self.folder / name
        try:
            st = os.stat(path)
        except OSError:
            raise not_found from None
        if not stat.S_ISREG(st.st_mode):
            raise not_found
        if self._expired(st.st_mtime, self.clock()):
            self._remove(name)
            raise not_found
        return path, self._suggested_name(name)

    def cleanup(self) -> int:
        """Delete expired files (and stale temporary files); returns how many files expired."""
        removed = 0
        with self._locked():
            now = self.clock()
            for mtime, name, _ in self._entries():
                if self._expired(mtime, now) and self._remove(name):
                    removed += 1
            self._remove_leftovers(now)
        return removed

    @staticmethod
    def valid_name(name: object) -> bool:
        """Whether ``name`` could be a download name (checked before touching the disk)."""
        return (isinstance(name, str) and len(name) <= _MAX_NAME_CHARS
                and _NAME.fullmatch(name) is not None)

    # ---- helpers

    def _expired(self, mtime: float, now: float) -> bool:
        """Whether a file written at ``mtime`` is past its time to live at ``now``."""
        return now - mtime >= self.ttl_s

    def _entries(self) -> list[tuple[float, str, int]]:
        """``(mtime, name, size)`` of the stored data files; files vanishing meanwhile are
        skipped."""
        entries = []
        with os.scandir(self.folder) as it:
            for entry in it:
                if not _NAME.fullmatch(entry.name):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    entries.append((st.st_mtime, entry.name, st.st_size))
        return entries

    def _make_room(self, incoming: int) -> None:
        """Delete expired files, then the oldest ones, until ``incoming`` more bytes fit."""
        entries = self._entries()
        total = sum(size for _, _, size in entries)
        if total + incoming <= self.max_bytes:
            return
        now = self.clock()
        kept = []
        for entry in entries:
            if self._expired(entry[0], now):
                self._remove(entry[1])
                total -= entry[2]
            else:
                kept.append(entry)
        for _, name, size in sorted(kept):
            if total + incoming <= self.max_bytes:
                break
            self._remove(name)
            total -= size

    def _remove(self, name: str) -> bool:
        """Delete a data file and its sidecar; whether the data file was still there."""
        try:
            os.unlink(self.folder / name)
            found = True
        except FileNotFoundError:
            found = False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.folder / (name + _META_SUFFIX))
        return found

    def _remove_leftovers(self, now: float) -> None:
        """Delete expired sidecars without a data file and temporary files of crashed writers."""
        with os.scandir(self.folder) as it:
            names = [entry.name for entry in it]
        present = set(names)
        for name in names:
            orphan = (name.endswith(_META_SUFFIX) and _NAME.fullmatch(name[:-len(_META_SUFFIX)])
                      and name[:-len(_META_SUFFIX)] not in present)
            if not (orphan or name.startswith(_TMP_PREFIX)):
                continue
            path = self.folder / name
            with contextlib.suppress(FileNotFoundError):
                if self._expired(os.stat(path, follow_symlinks=False).st_mtime, now):
                    os.unlink(path)

    def _suggested_name(self, name: str) -> str:
        """The filename saved in the sidecar of ``name``, or ``translated<ext>``."""
        try:
            suggested = (self.folder / (name + _META_SUFFIX)).read_text("ascii").strip()
        except (OSError, UnicodeDecodeError):
            suggested = ""
        if _DOWNLOAD_NAME.fullmatch(suggested) and ".." not in suggested:
            return suggested
        return "translated" + extension_of(name)

    def _write_atomic(self, path: Path, data: bytes) -> None:
        """Write ``data`` to ``path`` through a temporary file and a rename, dated by the
        store's clock."""
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            now = self.clock()
            os.utime(tmp, (now, now))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the folder's lock file (a no-op without ``fcntl``)."""
        if fcntl is None:  # pragma: no cover - Windows
            yield
            return
        fd = os.open(self.folder / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
