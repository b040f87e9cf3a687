"""Glossaries stored per API key (/glossaries): a name, terms and avoid phrases, kept in SQLite
with the owner's identity (the API key's digest, service.serving.admission.key_identity: the
file holds no key). Every read and delete is by id *and* owner, so a caller never sees, uses or
removes another caller's glossary; at most ``max_per_owner`` glossaries per owner. A file
locked by another process past the busy wait gives StoreBusy (503)."""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.stores.sqlite import (
    BUSY_TIMEOUT_S,
    KeyStoreError,
    open_database,
    transaction,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS glossaries (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL,
    body TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS glossaries_owner ON glossaries (owner);
"""
MAX_NAME_CHARS = 200


class GlossaryLimitReached(KeyStoreError):
    """The owner already stores ``max_per_owner`` glossaries."""


@dataclass(frozen=True)
class StoredGlossary:
    """One stored glossary: ``terms`` as [{"source", "target"}], ``avoid`` as phrases."""

    id: str
    name: str
    terms: list[dict[str, str]]
    avoid: list[str]
    created: float

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "terms": len(self.terms),
                "avoid": len(self.avoid), "created": self.created}

    def full(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "terms": self.terms, "avoid": self.avoid,
                "created": self.created}


def _record(row: tuple) -> StoredGlossary:
    gid, name, body, created = row
    data = json.loads(body)
    return StoredGlossary(gid, name, data.get("terms", []), data.get("avoid", []), created)


class GlossaryStore:
    def __init__(self, path: str | Path, busy_timeout_s: float = BUSY_TIMEOUT_S):
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        open_database(self.path, SCHEMA, "glossary", busy_timeout_s)

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        """A connection in one transaction (stores.sqlite.transaction)."""
        return transaction(self.path, self.busy_timeout_s, f"glossary database {self.path}")

    def create(self, owner: str, name: str, terms: list[dict[str, str]], avoid: list[str],
               max_per_owner: int | None = None) -> StoredGlossary:
        """Store a glossary for ``owner``; GlossaryLimitReached at ``max_per_owner``."""
        record = StoredGlossary("g_" + secrets.token_urlsafe(12), name, terms, avoid,
                                time.time())
        body = json.dumps({"terms": terms, "avoid": avoid}, ensure_ascii=False)
        with self._lock, self._connect() as db:
            db.execute("BEGIN IMMEDIATE")   # the count and the insert as one (other processes)
            if max_per_owner is not None:
                count = db.execute("SELECT COUNT(*) FROM glossaries WHERE owner = ?",
                                   (owner,)).fetchone()[0]
                if count >= max_per_owner:
                    raise GlossaryLimitReached(
                        f"this API key already stores {count} glossaries; the limit is "
                        f"max_glossaries_per_caller={max_per_owner} (delete one first)")
            db.execute("INSERT INTO glossaries (id, owner, name, body, created) "
                       "VALUES (?, ?, ?, ?, ?)", (record.id, owner, name, body, record.created))
        return record

    def list(self, owner: str) -> list[StoredGlossary]:
        """The owner's glossaries, oldest first."""
        with self._connect() as db:
            rows = db.execute("SELECT id, name, body, created FROM glossaries WHERE owner = ? "
                              "ORDER BY created, id", (owner,)).fetchall()
        return [_record(row) for row in rows]

    def get(self, owner: str, glossary_id: str) -> StoredGlossary | None:
        """The owner's glossary of that id; None when there is none (or it is another's)."""
        with self._connect() as db:
            row = db.execute("SELECT id, name, body, created FROM glossaries "
                             "WHERE id = ? AND owner = ?", (glossary_id, owner)).fetchone()
        return None if row is None else _record(row)

    def delete(self, owner: str, glossary_id: str) -> bool:
        """Remove the owner's glossary; False when the owner has none of that id."""
        with self._connect() as db:
            return db.execute("DELETE FROM glossaries WHERE id = ? AND owner = ?",
                              (glossary_id, owner)).rowcount > 0
