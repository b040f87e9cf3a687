"""Translated files on disk, served for a limited time (``/download_file``).

The store keeps each file under an unguessable name (``secrets.token_urlsafe(16)`` plus the
extension) next to a small sidecar holding the filename suggested to the browser.  Writes are
atomic, the total size is bounded (expired files go first, then the oldest), and several processes
may share the folder: on POSIX a lock file serializes saves and clean-ups, and every step tolerates
files vanishing under it. Standard library only; nothing here prints or logs."""

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
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

try:  # POSIX only: serializes saves and clean-ups of processes sharing a folder
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from service.filenames import FileError, FileTooLarge, extension_of

# --------------------------------------------------------------------------- store

_TOKEN_BYTES = 16
_TOKEN_CHARS = 22              # len(secrets.token_urlsafe(16))
_NAME = re.compile(rf"[A-Za-z0-9_-]{{{_TOKEN_CHARS}}}\.[a-z0-9]{{1,8}}", re.ASCII)
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
                 clock: Callable[[], float] = time.time,
                 extensions: Collection[str] | None = None):
        """extensions: those a stored file may have (None: any short alphanumeric one)."""
        if ttl_s <= 0 or max_bytes <= 0:
            raise ValueError("ttl_s and max_bytes must be positive")
        self.folder = Path(folder)
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self.clock = clock
        self.extensions = None if extensions is None else frozenset(extensions)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    # ---- public

    def save(self, data: bytes, original_name: str, target: str) -> str:
        """Store a translated file; returns its download name (``FileTooLarge`` if over
        ``max_bytes`` on its own).  Expired files, then the oldest, make room for it."""
        if len(data) > self.max_bytes:
            raise FileTooLarge(f"translated file is too large: more than {self.max_bytes} bytes")
        ext = extension_of(original_name)
        if not _NAME.fullmatch("x" * _TOKEN_CHARS + ext) or (
                self.extensions is not None and ext not in self.extensions):
            raise FileError("unsupported file format; supported formats: "
                            + ", ".join(sorted(self.extensions or ())))
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
