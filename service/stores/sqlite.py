"""The SQLite files of the stores (keys, rate limits): connections with a bounded busy wait,
WAL, and a clear error for a file that is not a usable database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

BUSY_TIMEOUT_MS = 10_000
class KeyStoreError(RuntimeError):
    """A key or rate-limit database that cannot be opened or used, or a refused change (a
    duplicate key, a bad limit)."""

def check_limit(value: object, what: str, highest: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= highest:
        raise KeyStoreError(f"{what} must be a whole number from 1 to {highest}, not {value!r}")


def connect(path: Path, **options) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, **options)
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return db


def open_database(path: Path, schema: str, what: str) -> None:
    """Create the folder, the file (WAL) and the tables when missing; KeyStoreError when the
    file is not a usable SQLite database."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = connect(path)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(schema)
        finally:
            db.close()
    except (OSError, sqlite3.Error) as error:
        raise KeyStoreError(f"cannot use {path} as the {what} database "
                            f"(not a SQLite file, or not writable): {error}") from None

