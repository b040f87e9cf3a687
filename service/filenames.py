"""Client-supplied file names, and the errors of files the service reads or keeps (the routes
answer FileError with 400 and FileTooLarge with 413). Standard library only."""

from __future__ import annotations

import re


class FileError(ValueError):
    """An upload that cannot be translated; the message is safe to show the client (400)."""


class FileTooLarge(FileError):
    """An upload or translated file over a size limit (413)."""


def extension_of(filename: str) -> str:
    """The lower-case extension (with its dot) of a client-supplied file name, or ``""``."""
    base = re.split(r"[\\/]", filename or "")[-1]
    stem, dot, ext = base.rpartition(".")
    return "." + ext.lower() if dot and stem else ""
