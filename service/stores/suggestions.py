"""Translation suggestions (LibreTranslate's /suggest), kept durably in SQLite for later
fine-tuning: one row per suggestion with its pair and time. Writes go through a thread (the
event loop never waits on the disk) and commit before the client gets its answer."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """CREATE TABLE IF NOT EXISTS suggestions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_text TEXT NOT NULL, suggested TEXT NOT NULL,
    source TEXT NOT NULL, target TEXT NOT NULL, created REAL NOT NULL)"""


class SuggestionStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in a transaction (committed on success), closed afterwards (sqlite3's
        own context manager commits but leaves the connection open)."""
        db = sqlite3.connect(self.path, timeout=10)
        try:
            with db:
                yield db
        finally:
            db.close()

    def add(self, source_text: str, suggested: str, source: str, target: str) -> None:
        with self._lock, self._connect() as db:
            db.execute("INSERT INTO suggestions (source_text, suggested, source, target, created)"
                       " VALUES (?, ?, ?, ?, ?)",
                       (source_text, suggested, source, target, time.time()))

    def all(self) -> list[tuple[str, str, str, str]]:
        """(source_text, suggested, source, target), oldest first."""
        with self._connect() as db:
            return db.execute("SELECT source_text, suggested, source, target FROM suggestions "
                              "ORDER BY id").fetchall()
