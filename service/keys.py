"""API keys with their own limits (LibreTranslate's ``--api-keys`` database) and request-rate
limiting shared by the worker processes of one host.

``KeyStore`` keeps the keys in SQLite (managed with ``s2s-keys``); a long-lived store re-reads the
file at most every ``ttl`` seconds, so a key added or removed by another process counts within
that time, and an unknown key never costs a query. ``RateLimiter`` keeps one row per identity
(GCRA: the theoretical arrival time) in SQLite, updated in one ``BEGIN IMMEDIATE`` transaction,
so every worker process on the host sees the same budget: a limit of N per minute allows a burst
of N, then one request every 60/N seconds, and a refusal says exactly how long to wait. The
limiter may use the key file (its own table) or a file of its own; either must be on a local
disk (SQLite locking is not reliable over network file systems).

``check_request`` decides a request: ``identify`` (the key: 401 missing / 403 unknown) then
``admit`` (413 over the key's characters per request, 429 over the rate, with Retry-After).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from service.errors import InvalidApiKey, MissingApiKey, ServiceError, TooLarge
from service.security import key_matches

KEYS_SCHEMA_VERSION = 1
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,128}")
MAX_NAME_CHARS = 200
MAX_REQUESTS_PER_MINUTE = 1_000_000
MAX_CHARS_PER_REQUEST = 1_000_000_000
BUSY_TIMEOUT_MS = 10_000
MICROS = 1_000_000
WINDOW_US = 60 * MICROS         # the limits are per minute
PRUNE_EVERY_S = 60.0

KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    key TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '',
    requests_per_minute INTEGER, chars_per_request INTEGER, created REAL NOT NULL);
INSERT OR IGNORE INTO keys_meta VALUES ('schema_version', 1), ('generation', 0);
"""

RATE_SCHEMA = """CREATE TABLE IF NOT EXISTS rate_limits (
    identity TEXT PRIMARY KEY, tat_us INTEGER NOT NULL) WITHOUT ROWID"""


class KeyStoreError(RuntimeError):
    """A key or rate-limit database that cannot be opened or used, or a refused change (a
    duplicate key, a bad limit)."""


class RateLimited(ServiceError):
    """429 over a request-rate limit; ``retry_after`` in seconds, sent as Retry-After."""

    status, kind = 429, "rate_limited"

    def __init__(self, message: str, retry_after: float):
        super().__init__(message, headers={"Retry-After": str(max(1, math.ceil(retry_after)))})
        self.retry_after = retry_after


class KeyCharLimit(TooLarge):
    """413: more characters in one request than the API key allows."""

    kind = "key_char_limit"


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


def _check_limit(value: object, what: str, highest: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= highest:
        raise KeyStoreError(f"{what} must be a whole number from 1 to {highest}, not {value!r}")


def check_key_text(key: object) -> str:
    """The key if it is 8-128 URL-safe characters (letters, digits, - and _)."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise KeyStoreError("a key must be 8 to 128 characters among letters, digits, - and _")
    return key


def _connect(path: Path, **options) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, **options)
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return db


def _open_file(path: Path, schema: str, what: str) -> None:
    """Create the folder, the file (WAL) and the tables when missing; KeyStoreError when the
    file is not a usable SQLite database."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = _connect(path)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(schema)
        finally:
            db.close()
    except (OSError, sqlite3.Error) as error:
        raise KeyStoreError(f"cannot use {path} as the {what} database "
                            f"(not a SQLite file, or not writable): {error}") from None


class KeyStore:
    """API keys with their limits in a SQLite file; ``get`` answers from a snapshot that is
    checked against the file at most every ``ttl`` seconds (``clock`` for tests)."""

    def __init__(self, path: str | Path, ttl: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        self.path = Path(path)
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: dict[str, KeyLimits] = {}
        self._generation: int | None = None
        self._checked_at = -math.inf
        _open_file(self.path, KEYS_SCHEMA, "API key")
        version = self._read(lambda db: db.execute(
            "SELECT value FROM keys_meta WHERE name = 'schema_version'").fetchone()[0])
        if version != KEYS_SCHEMA_VERSION:
            raise KeyStoreError(f"{self.path} has key schema version {version}; this version "
                                f"of s2s reads version {KEYS_SCHEMA_VERSION}")

    @contextmanager
    def _database(self) -> Iterator[sqlite3.Connection]:
        """A connection in a transaction (committed on success); sqlite errors as
        KeyStoreError."""
        try:
            db = _connect(self.path)
            try:
                with db:
                    yield db
            finally:
                db.close()
        except sqlite3.IntegrityError:
            raise KeyStoreError("that key already exists") from None
        except sqlite3.Error as error:
            raise KeyStoreError(f"API key database {self.path}: {error}") from None

    def _read(self, query: Callable[[sqlite3.Connection], object]) -> object:
        with self._database() as db:
            return query(db)

    def add(self, requests_per_minute: int | None = None, chars_per_request: int | None = None,
            key: str | None = None, name: str = "") -> str:
        """Store a key (a new random one when ``key`` is None) and return it."""
        _check_limit(requests_per_minute, "requests per minute", MAX_REQUESTS_PER_MINUTE)
        _check_limit(chars_per_request, "characters per request", MAX_CHARS_PER_REQUEST)
        key = secrets.token_urlsafe(24) if key is None else check_key_text(key)
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


class RateLimiter:
    """Requests per minute per identity, exact across the processes sharing ``path`` (GCRA;
    times in whole microseconds so a burst of N is exactly N). Rows of identities whose budget
    is full again carry no information and are pruned about every minute."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        self._next_prune = 0.0
        _open_file(self.path, RATE_SCHEMA, "rate-limit")

    def _db(self) -> sqlite3.Connection:
        """This thread's connection (autocommit: transactions are explicit); a new one after
        a fork."""
        db = getattr(self._local, "db", None)
        if db is None or self._local.pid != os.getpid():
            db = _connect(self.path, isolation_level=None)
            db.execute("PRAGMA synchronous=NORMAL")   # the state need not survive a crash
            self._local.db, self._local.pid = db, os.getpid()
        return db

    def hit(self, identity: str, per_minute: int, now: float | None = None) -> float | None:
        """Count a request: None when allowed, else the seconds until one would be (> 0)."""
        if per_minute is None:
            raise KeyStoreError("requests per minute must be given")
        _check_limit(per_minute, "requests per minute", MAX_REQUESTS_PER_MINUTE)
        now_us = round((time.time() if now is None else now) * MICROS)
        try:
            wait_us = self._transact(identity, -(-WINDOW_US // per_minute), per_minute, now_us)
            self._maybe_prune(now_us)
        except sqlite3.Error as error:
            raise KeyStoreError(f"rate-limit database {self.path}: {error}") from None
        return None if wait_us <= 0 else wait_us / MICROS

    def _transact(self, identity: str, interval_us: int, burst: int, now_us: int) -> int:
        """One GCRA step in one write transaction; the microseconds to wait (<= 0: allowed,
        and counted)."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT tat_us FROM rate_limits WHERE identity = ?",
                             (identity,)).fetchone()
            tat = now_us if row is None else row[0]
            if tat > now_us + burst * interval_us:   # the clock went back: start afresh
                tat = now_us
            new_tat = max(tat, now_us) + interval_us
            wait_us = new_tat - burst * interval_us - now_us
            if wait_us <= 0:
                db.execute("INSERT INTO rate_limits VALUES (?, ?) ON CONFLICT (identity) "
                           "DO UPDATE SET tat_us = excluded.tat_us", (identity, new_tat))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return wait_us

    def _maybe_prune(self, now_us: int) -> None:
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        self.prune(now_us / MICROS)

    def prune(self, now: float | None = None) -> int:
        """Delete the rows of identities idle long enough to have their whole budget back
        (the same as having no row); how many."""
        now_us = round((time.time() if now is None else now) * MICROS)
        return self._db().execute("DELETE FROM rate_limits WHERE tat_us <= ?", (now_us,)).rowcount

    def size(self) -> int:
        """Rows held (identities not yet pruned)."""
        return self._db().execute("SELECT COUNT(*) FROM rate_limits").fetchone()[0]


@dataclass(frozen=True)
class Caller:
    """Who an admitted key check found: the limiter identity, the limits that apply and where
    they came from ("db", "settings" or "ip")."""

    identity: str
    limits: KeyLimits
    source: str


def key_identity(key: str) -> str:
    """The limiter identity of a key: a digest, so the rate file holds no key."""
    return "key:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def identify(key: str | None, *, settings_keys: list[str], store: KeyStore | None,
             keys_required: bool, default_per_minute: int | None,
             client_ip: str | None) -> Caller:
    """The caller of a request, by its key (or its address when it sent none).

    Keys in ``store`` have their own limits; ``settings_keys`` and keyless callers get
    ``default_per_minute`` (None or 0: unlimited). Without any key source a key is ignored
    (as LibreTranslate without ``--api-keys``). MissingApiKey (401) when keys are required and
    none came, InvalidApiKey (403) for a key that is not known."""
    default = KeyLimits(requests_per_minute=default_per_minute or None)
    if not key:
        if keys_required:
            raise MissingApiKey("an API key is required (api_key field, X-API-Key header or "
                                "Authorization: Bearer)")
        return Caller(f"ip:{client_ip or 'unknown'}", default, "ip")
    if store is None and not settings_keys and not keys_required:
        return Caller(f"ip:{client_ip or 'unknown'}", default, "ip")
    in_settings = key_matches(key, settings_keys)
    limits = store.get(key) if store is not None and isinstance(key, str) else None
    if limits is not None:
        return Caller(key_identity(key), limits, "db")
    if in_settings:
        return Caller(key_identity(key), default, "settings")
    raise InvalidApiKey("Invalid API key")


def admit(caller: Caller, chars: int, limiter: RateLimiter | None,
          now: float | None = None) -> None:
    """KeyCharLimit (413) over the key's characters per request, else RateLimited (429) over
    its requests per minute; a refused request does not count against the rate."""
    limit = caller.limits.chars_per_request
    if limit is not None and chars > limit:
        raise KeyCharLimit(f"Invalid request: request ({chars} characters) exceeds the text "
                           f"limit of this API key ({limit})")
    per_minute = caller.limits.requests_per_minute
    if limiter is None or per_minute is None:
        return
    wait = limiter.hit(caller.identity, per_minute, now)
    if wait is not None:
        raise RateLimited(f"Slowdown: {per_minute} per 1 minute", wait)


def check_request(key: str | None, chars: int, *, settings_keys: list[str],
                  store: KeyStore | None, limiter: RateLimiter | None, keys_required: bool,
                  default_per_minute: int | None, client_ip: str | None,
                  now: float | None = None) -> Caller:
    """``identify`` then ``admit``: the caller when the request may go on, else the
    ServiceError to answer with (401, 403, 413 or 429 with Retry-After)."""
    caller = identify(key, settings_keys=settings_keys, store=store, keys_required=keys_required,
                      default_per_minute=default_per_minute, client_ip=client_ip)
    admit(caller, chars, limiter, now)
    return caller
