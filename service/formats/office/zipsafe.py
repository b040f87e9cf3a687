"""Zip packages (OOXML, ODF, EPUB) opened with bounded work and written back.

Everything is checked from the central directory before a byte is decompressed: the entry count,
the declared uncompressed sizes (each and in all), the compression ratio of large entries,
entry names (no absolute paths, ``..``, backslashes, drive letters, control characters or
duplicates), compression methods (stored or deflated only), encryption flags and overlapping
entries (the "better zip bomb" of David Fifield). Reads are bounded again while decompressing:
an entry that inflates past its declared size, or past what is left of the total, is refused.
Nothing is ever extracted to disk: the package is read and written in memory."""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass

from service.formats.documents import SUPPORTED_FORMATS, FileError, FileTooLarge

_LOCAL_HEADER = 30
_CHUNK = 64 * 1024
_BAD_NAME = re.compile(r"(^[/\\])|(^[A-Za-z]:)|\\|[\x00-\x1f\x7f]|(^|/)\.\.?(/|$)|//")


@dataclass(frozen=True)
class ZipLimits:
    """Bounds on a package, checked before extraction and while reading."""

    max_package_bytes: int = 50 * 1024 * 1024     # compressed (the route's max_file_bytes is
    max_entries: int = 5_000                       # usually much lower)
    max_total_bytes: int = 128 * 1024 * 1024       # declared uncompressed, all entries
    max_part_bytes: int = 32 * 1024 * 1024         # one XML part that is parsed
    max_ratio: int = 200                           # uncompressed / compressed, entries > 1 MiB
    ratio_floor: int = 1024 * 1024


DEFAULT_LIMITS = ZipLimits()


class Package:
    """An opened zip package: its entries in order and their bytes, read on demand."""

    def __init__(self, data: bytes, limits: ZipLimits = DEFAULT_LIMITS, label: str = "file"):
        self.limits = limits
        self.label = label
        if len(data) > limits.max_package_bytes:
            raise FileTooLarge(f"the {label} is larger than {limits.max_package_bytes} bytes")
        if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
            raise FileError(f"the {label} is encrypted (password-protected) or an old binary "
                            "Office file; save it unprotected in the current format")
        if not data.startswith(b"PK\x03\x04"):
            raise FileError(f"the {label} is not what its name says (not a zip package); "
                            "supported formats: " + ", ".join(SUPPORTED_FORMATS))
        end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
        if end >= 0 and len(data) >= end + 22:   # entry count before parsing the directory
            declared = struct.unpack_from("<H", data, end + 10)[0]
            if declared > limits.max_entries and declared != 0xFFFF:
                raise FileTooLarge(f"the {label} has more than {limits.max_entries} entries")
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError,
                struct.error, UnicodeDecodeError, NotImplementedError) as error:
            raise FileError(f"the {label} is a corrupt zip package ({error})") from None
        self._check(infos, len(data))
        self.infos = infos
        self.names = [info.filename for info in infos]
        self._by_name = {info.filename: info for info in infos}
        self._cache: dict[str, bytes] = {}
        self._read_total = 0

    # ---- checks from the central directory

    def _check(self, infos: list[zipfile.ZipInfo], size: int) -> None:
        limits, label = self.limits, self.label
        if len(infos) > limits.max_entries:
            raise FileTooLarge(f"the {label} has more than {limits.max_entries} entries")
        seen: set[str] = set()
        total = 0
        for info in infos:
            name = info.filename
            if not name or _BAD_NAME.search(name) or len(name) > 1024:
                raise FileError(f"the {label} has an unsafe entry name: {name[:80]!r}")
            if name.lower() in seen:
                raise FileError(f"the {label} has the entry {name[:80]!r} twice")
            seen.add(name.lower())
            if info.flag_bits & 0x1:
                raise FileError(f"the {label} is encrypted (password-protected)")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise FileError(f"the {label} uses an unsupported compression method")
            if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
                raise FileError(f"the {label} is a corrupt zip package (stored entry sizes)")
            total += info.file_size
            if info.file_size > limits.max_total_bytes or total > limits.max_total_bytes:
                raise FileTooLarge(f"the {label} unpacks to more than "
                                   f"{limits.max_total_bytes} bytes")
            if (info.file_size > limits.ratio_floor
                    and info.file_size > limits.max_ratio * max(info.compress_size, 1)):
                raise FileTooLarge(f"the {label} has an entry compressed more than "
                                   f"{limits.max_ratio}:1 (a zip bomb?)")
        spans = sorted((info.header_offset, info) for info in infos)
        for (offset, info), (after, _) in zip(spans, spans[1:] + [(size, None)]):
            end = offset + _LOCAL_HEADER + len(info.orig_filename.encode("utf-8", "replace")) \
                + info.compress_size
            if offset < 0 or end > after:
                raise FileError(f"the {label} has overlapping or truncated entries "
                                "(a zip bomb?)")

    # ---- reading

    def has(self, name: str) -> bool:
        return name in self._by_name

    def read(self, name: str, limit: int | None = None) -> bytes:
        """The bytes of an entry, decompressed within its declared size and the limits."""
        if name in self._cache:
            return self._cache[name]
        info = self._by_name.get(name)
        if info is None:
            raise FileError(f"the {self.label} lacks its part {name[:80]!r}")
        limit = self.limits.max_part_bytes if limit is None else limit
        if info.file_size > limit:
            raise FileTooLarge(f"the part {name[:80]!r} of the {self.label} is larger than "
                               f"{limit} bytes")
        out = bytearray()
        try:
            with self._zip.open(info) as stream:
                while True:
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        break
                    out += chunk
                    self._read_total += len(chunk)
                    if len(out) > info.file_size or len(out) > limit:
                        raise FileError(f"the part {name[:80]!r} of the {self.label} is larger "
                                        "than declared (a zip bomb?)")
                    if self._read_total > self.limits.max_total_bytes:
                        raise FileTooLarge(f"the {self.label} unpacks to more than "
                                           f"{self.limits.max_total_bytes} bytes")
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
                struct.error, NotImplementedError) as error:
            raise FileError(f"the {self.label} is a corrupt zip package ({error})") from None
        if len(out) != info.file_size:
            raise FileError(f"the part {name[:80]!r} of the {self.label} is truncated")
        data = bytes(out)
        self._cache[name] = data
        return data

    # ---- writing

    def rebuild(self, replaced: dict[str, bytes]) -> bytes:
        """The package with some entries' contents replaced; entry order, names, dates,
        compression methods and attributes kept, every other entry's content unchanged."""
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as writer:
            for info in self.infos:
                data = replaced[info.filename] if info.filename in replaced \
                    else self.read(info.filename, limit=self.limits.max_total_bytes)
                fresh = zipfile.ZipInfo(info.filename, info.date_time)
                fresh.compress_type = info.compress_type
                fresh.external_attr = info.external_attr
                fresh.create_system = info.create_system
                fresh.comment = info.comment
                writer.writestr(fresh, data, compress_type=info.compress_type,
                                compresslevel=6 if info.compress_type else None)
            writer.comment = self._zip.comment
        return out.getvalue()
