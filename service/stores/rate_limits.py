"""Request-rate limiting shared by the worker processes of one host: one row per identity
(GCRA: the theoretical arrival time) in SQLite, updated in one ``BEGIN IMMEDIATE`` transaction,
so every process sees the same budget. A limit of N per minute allows a burst of N, then one
request every 60/N seconds, and a refusal says exactly how long to wait. The file must be on a
local disk (SQLite locking is not reliable over network file systems)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from service.stores.keys import MAX_REQUESTS_PER_MINUTE
from service.stores.sqlite import (
    BUSY_TIMEOUT_S,
    KeyStoreError,
    check_limit,
    connect,
    open_database,
    store_error,
)

MICROS = 1_000_000
WINDOW_US = 60 * MICROS         # the limits are per minute
PRUNE_EVERY_S = 60.0

RATE_SCHEMA = """CREATE TABLE IF NOT EXISTS rate_limits (
    identity TEXT PRIMARY KEY, tat_us INTEGER NOT NULL) WITHOUT ROWID"""


class RateLimiter:
    """Requests per minute per identity, exact across the processes sharing ``path`` (GCRA;
    times in whole microseconds so a burst of N is exactly N). Rows of identities whose budget
    is full again carry no information and are pruned about every minute."""

    def __init__(self, path: str | Path, busy_timeout_s: float = BUSY_TIMEOUT_S):
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._next_prune = 0.0
        open_database(self.path, RATE_SCHEMA, "rate-limit", busy_timeout_s)

    def _db(self) -> sqlite3.Connection:
        """This thread's connection (autocommit: transactions are explicit); a new one after
        a fork."""
        db = getattr(self._local, "db", None)
        if db is None or self._local.pid != os.getpid():
            db = connect(self.path, self.busy_timeout_s, isolation_level=None)
            db.execute("PRAGMA synchronous=NORMAL")   # the state need not survive a crash
            self._local.db, self._local.pid = db, os.getpid()
        return db

    def hit(self, identity: str, per_minute: int, now: float | None = None) -> float | None:
        """Count a request: None when allowed, else the seconds until one would be (> 0)."""
        if per_minute is None:
            raise KeyStoreError("requests per minute must be given")
        check_limit(per_minute, "requests per minute", MAX_REQUESTS_PER_MINUTE)
        now_us = round((time.time() if now is None else now) * MICROS)
        try:
            wait_us = self._transact(identity, -(-WINDOW_US // per_minute), per_minute, now_us)
            self._maybe_prune(now_us)
        except sqlite3.Error as error:
            raise store_error(error, f"rate-limit database {self.path}") from None
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


