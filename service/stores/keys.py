"""API keys with their own limits (LibreTranslate's ``--api-keys`` database), managed with
``s2s-keys``. A long-lived store re-reads the file at most every ``ttl`` seconds, so a key added
or removed by another process counts within that time, and an unknown key never costs a query."""

from __future__ import annotations

import math
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from service.stores.sqlite import (
    BUSY_TIMEOUT_S,
    KeyStoreError,
    check_limit,
    open_database,
    transaction,
)

KEYS_SCHEMA_VERSION = 1
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,128}")
MAX_NAME_CHARS = 200
MAX_REQUESTS_PER_MINUTE = 1_000_000
MAX_CHARS_PER_REQUEST = 1_000_000_000

T = TypeVar("T")
KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    key TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '',
    requests_per_minute INTEGER, chars_per_request INTEGER, created REAL NOT NULL);
INSERT OR IGNORE INTO keys_meta VALUES ('schema_version', 1), ('generation', 0);
"""


@dataclass(frozen=True)
class KeyLimits:
    """A key's limits; None is unlimited."""

    requests_per_minute: int | None = None
    chars_per_request: int | None = None


@dataclass(frozen=True)
class KeyRecord:
    """One stored key: its name, limits and creation time (seconds since the epoch)."""

    key: str
    name: str
    limits: KeyLimits
    created: float


def check_key_text(key: object) -> str:
    """The key if it is 8-128 URL-safe characters (letters, digits, - and _)."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise KeyStoreError("a key must be 8 to 128 characters among letters, digits, - and _")
    return key




def new_key() -> str:
    """A random key (32 URL-safe characters) that does not start with '-', which command lines
    would read as an option (s2s-keys remove KEY)."""
    while True:
        key = secrets.token_urlsafe(24)
        if not key.startswith("-"):
            return key


class KeyStore:
    """API keys with their limits in a SQLite file; ``get`` answers from a snapshot that is
    checked against the file at most every ``ttl`` seconds (``clock`` for tests)."""

    def __init__(self, path: str | Path, ttl: float = 2.0,
                 clock: Callable[[], float] = time.monotonic,
                 busy_timeout_s: float = BUSY_TIMEOUT_S):
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: dict[str, KeyLimits] = {}
        self._generation: int | None = None
        self._checked_at = -math.inf
        open_database(self.path, KEYS_SCHEMA, "API key", busy_timeout_s)
        version = self._read(lambda db: db.execute(
            "SELECT value FROM keys_meta WHERE name = 'schema_version'").fetchone()[0])
        if version != KEYS_SCHEMA_VERSION:
            raise KeyStoreError(f"{self.path} has key schema version {version}; this version "
                                f"of s2s reads version {KEYS_SCHEMA_VERSION}")

    def _database(self) -> AbstractContextManager[sqlite3.Connection]:
        """A connection in one transaction (stores.sqlite.transaction)."""
        return transaction(self.path, self.busy_timeout_s, f"API key database {self.path}",
                           duplicate="that key already exists")

    def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        with self._database() as db:
            return query(db)

    def add(self, requests_per_minute: int | None = None, chars_per_request: int | None = None,
            key: str | None = None, name: str = "") -> str:
        """Store a key (a new random one when ``key`` is None) and return it."""
        check_limit(requests_per_minute, "requests per minute", MAX_REQUESTS_PER_MINUTE)
        check_limit(chars_per_request, "characters per request", MAX_CHARS_PER_REQUEST)
        key = new_key() if key is None else check_key_text(key)
        if not isinstance(name, str) or len(name) > MAX_NAME_CHARS or not name.isprintable():
            raise KeyStoreError(f"a key's name must be printable text of at most "
                                f"{MAX_NAME_CHARS} characters")
        with self._database() as db:
            db.execute("INSERT INTO api_keys (key, name, requests_per_minute, chars_per_request,"
                       " created) VALUES (?, ?, ?, ?, ?)",
                       (key, name, requests_per_minute, chars_per_request, time.time()))
            self._bump(db)
        return key

    def remove(self, key: str) -> bool:
        """Delete a key; False when there was none."""
        with self._database() as db:
            removed = db.execute("DELETE FROM api_keys WHERE key = ?", (key,)).rowcount > 0
            if removed:
                self._bump(db)
        return removed

    def _bump(self, db: sqlite3.Connection) -> None:
        """Mark a change (other processes reload) and drop this process's snapshot."""
        db.execute("UPDATE keys_meta SET value = value + 1 WHERE name = 'generation'")
        self._checked_at = -math.inf

    def list(self) -> list[KeyRecord]:
        """Every key, oldest first."""
        rows = self._read(lambda db: db.execute(
            "SELECT key, name, requests_per_minute, chars_per_request, created FROM api_keys "
            "ORDER BY created, key").fetchall())
        return [KeyRecord(key, name, KeyLimits(rpm, chars), created)
                for key, name, rpm, chars, created in rows]

    def get(self, key: str) -> KeyLimits | None:
        """The key's limits, or None for an unknown key (at most ``ttl`` seconds old)."""
        if self._clock() - self._checked_at >= self.ttl:
            self._refresh()
        return self._snapshot.get(key)

    def _refresh(self) -> None:
        """Reload the keys when another process changed them since the last look."""
        with self._lock:
            now = self._clock()
            if now - self._checked_at < self.ttl:
                return
            with self._database() as db:
                generation = db.execute(
                    "SELECT value FROM keys_meta WHERE name = 'generation'").fetchone()[0]
                if generation != self._generation:
                    rows = db.execute("SELECT key, requests_per_minute, chars_per_request "
                                      "FROM api_keys").fetchall()
                    self._snapshot = {key: KeyLimits(rpm, chars) for key, rpm, chars in rows}
                    self._generation = generation
            self._checked_at = now


def key_matches(key: object, known: list[str]) -> bool:
    """Constant-time comparison with each known key; anything but a string is no match."""
    if not isinstance(key, str):
        return False
    given = key.encode("utf-8", "surrogatepass")
    return any(secrets.compare_digest(given, k.encode()) for k in known)
