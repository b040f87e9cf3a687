#!/usr/bin/env python3
"""Manage the API keys of the translation service, kept in a SQLite file.

Running servers see a key added or removed within seconds, without a restart.

s2s-keys --db keys.sqlite add [--key K] [--name N] [--req-limit N] [--char-limit N]
s2s-keys --db keys.sqlite list
s2s-keys --db keys.sqlite remove KEY
--db defaults to the environment variable S2S_KEYS_DB.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from service.keys import KeyRecord, KeyStore, KeyStoreError

COLUMNS = ("key", "name", "req/min", "chars/request", "created")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("S2S_KEYS_DB"),
                        help="key database file (default: $S2S_KEYS_DB)")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add a key and print it")
    add.add_argument("--key", help="the key (default: a new random one)")
    add.add_argument("--name", default="", help="a note on whose key it is")
    add.add_argument("--req-limit", type=int, help="requests per minute (default: unlimited)")
    add.add_argument("--char-limit", type=int,
                     help="characters per request (default: only the server's limits)")
    commands.add_parser("list", help="show the keys with their limits")
    remove = commands.add_parser("remove", help="delete a key (exit 1 when there is none)")
    remove.add_argument("key")
    return parser


def fail(message: str, status: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


def table(records: list[KeyRecord]) -> str:
    """Aligned columns, one key a line."""
    rows = [COLUMNS] + [
        (r.key, r.name, limit_text(r.limits.requests_per_minute),
         limit_text(r.limits.chars_per_request),
         time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(r.created))) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in rows)


def limit_text(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def run(store: KeyStore, args: argparse.Namespace) -> int:
    if args.command == "add":
        print(store.add(args.req_limit, args.char_limit, key=args.key, name=args.name))
    elif args.command == "list":
        print(table(store.list()))
    elif not store.remove(args.key):
        return fail(f"no key {args.key!r} in {store.path}", 1)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.db:
        return fail("give --db FILE or set S2S_KEYS_DB")
    try:
        return run(KeyStore(args.db), args)
    except KeyStoreError as error:
        return fail(str(error))


if __name__ == "__main__":
    sys.exit(main())
