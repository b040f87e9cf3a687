"""The SQLite files of the stores (keys, rate limits, suggestions): connections with a bounded
busy wait (a file another process holds locked longer gives StoreBusy, which the service answers
503 with Retry-After), WAL, and a clear error for a file that is not a usable database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_S = 2.0   # the default wait for a busy file (the service's sqlite_busy_timeout_s)


class KeyStoreError(RuntimeError):
    """A key or rate-limit database that cannot be opened or used, or a refused change (a
    duplicate key, a bad limit)."""


class StoreBusy(KeyStoreError):
    """A store's file stayed locked by another connection or process past the busy wait."""


def store_error(error: sqlite3.Error, what: str) -> KeyStoreError:
    """The store error for a sqlite3 failure: StoreBusy for a locked or busy file."""
    text = str(error)
    if isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return StoreBusy(f"the {what} is busy (locked by another process); retry shortly")
    return KeyStoreError(f"{what}: {text}")


def check_limit(value: object, what: str, highest: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= highest:
        raise KeyStoreError(f"{what} must be a whole number from 1 to {highest}, not {value!r}")


def connect(path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S, **options) -> sqlite3.Connection:
    """A connection that waits at most ``busy_timeout_s`` for a lock, then raises
    sqlite3.OperationalError ("database is locked")."""
    db = sqlite3.connect(path, timeout=busy_timeout_s, **options)
    db.execute(f"PRAGMA busy_timeout={round(busy_timeout_s * 1000)}")
    return db


def open_database(path: Path, schema: str, what: str,
                  busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
    """Create the folder, the file (WAL) and the tables when missing; KeyStoreError when the
    file is not a usable SQLite database."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = connect(path, busy_timeout_s)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(schema)
        finally:
            db.close()
    except (OSError, sqlite3.Error) as error:
        raise KeyStoreError(f"cannot use {path} as the {what} database "
                            f"(not a SQLite file, or not writable): {error}") from None



@contextmanager
def transaction(path: Path, busy_timeout_s: float, what: str,
                duplicate: str | None = None) -> Iterator[sqlite3.Connection]:
    """A connection in one transaction (committed on success), closed afterwards (sqlite3's
    own context manager commits but leaves it open); sqlite3 errors as StoreBusy or
    KeyStoreError naming ``what``, a constraint violation as ``duplicate`` when given."""
    try:
        db = connect(path, busy_timeout_s)
        try:
            with db:
                yield db
        finally:
            db.close()
    except sqlite3.IntegrityError as error:
        if duplicate is None:
            raise store_error(error, what) from None
        raise KeyStoreError(duplicate) from None
    except sqlite3.Error as error:
        raise store_error(error, what) from None
