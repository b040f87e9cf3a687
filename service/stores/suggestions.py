"""Translation suggestions (LibreTranslate's /suggest), kept durably in SQLite for later
fine-tuning: one row per suggestion with its pair, time and the caller who sent it (a digest:
the file holds no key and no address), at most ``max_per_caller`` rows per caller. Writes go
through a thread (the event loop never waits on the disk) and commit before the client gets its
answer; a file locked by another process past the busy wait gives StoreBusy (503)."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path

from service.stores.sqlite import BUSY_TIMEOUT_S, KeyStoreError, transaction

SCHEMA = """CREATE TABLE IF NOT EXISTS suggestions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_text TEXT NOT NULL, suggested TEXT NOT NULL,
    source TEXT NOT NULL, target TEXT NOT NULL, created REAL NOT NULL,
    caller TEXT)"""
CALLER_INDEX = "CREATE INDEX IF NOT EXISTS suggestions_caller ON suggestions (caller)"


class SuggestionLimitReached(KeyStoreError):
    """The caller already has ``max_per_caller`` suggestions stored."""


def caller_digest(identity: str) -> str:
    return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class SuggestionStore:
    def __init__(self, path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S):
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(suggestions)")}
            if "caller" not in columns:   # a file of an older version
                db.execute("ALTER TABLE suggestions ADD COLUMN caller TEXT")
            db.execute(CALLER_INDEX)

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        """A connection in one transaction (stores.sqlite.transaction)."""
        return transaction(self.path, self.busy_timeout_s, f"suggestions database {self.path}")

    def add(self, source_text: str, suggested: str, source: str, target: str,
            caller: str | None = None, max_per_caller: int | None = None) -> None:
        """Store a suggestion; SuggestionLimitReached when ``caller`` (an identity, kept as a
        digest) already has ``max_per_caller`` rows."""
        digest = None if caller is None else caller_digest(caller)
        with self._lock, self._connect() as db:
            db.execute("BEGIN IMMEDIATE")   # the count and the insert as one (other processes)
            if digest is not None and max_per_caller is not None:
                count = db.execute("SELECT COUNT(*) FROM suggestions WHERE caller = ?",
                                   (digest,)).fetchone()[0]
                if count >= max_per_caller:
                    raise SuggestionLimitReached(
                        f"this caller already stored {count} suggestions; the limit is "
                        f"max_suggestions_per_caller={max_per_caller}")
            db.execute("INSERT INTO suggestions (source_text, suggested, source, target, created,"
                       " caller) VALUES (?, ?, ?, ?, ?, ?)",
                       (source_text, suggested, source, target, time.time(), digest))

    def all(self) -> list[tuple[str, str, str, str]]:
        """(source_text, suggested, source, target), oldest first."""
        with self._connect() as db:
            return db.execute("SELECT source_text, suggested, source, target FROM suggestions "
                              "ORDER BY id").fetchall()
