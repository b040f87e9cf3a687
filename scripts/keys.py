#!/usr/bin/env python3
"""Manage the API keys of the translation service, kept in a SQLite file.

Running servers see a key added or removed within seconds, without a restart.

s2s-keys add --db keys.sqlite [--key K] [--name N] [--req-limit N] [--char-limit N]
s2s-keys list --db keys.sqlite
s2s-keys remove --db keys.sqlite KEY
--db may come before or after the subcommand and defaults to the environment variable
S2S_KEYS_DB. Only add creates a missing database; list and remove refuse one that is not there.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from service.stores.keys import KeyRecord, KeyStore, KeyStoreError

from .cli_parsing import make_parser

COLUMNS = ("key", "name", "req/min", "chars/request", "created")


DB_HELP = "key database file (default: $S2S_KEYS_DB)"


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    parser.add_argument("--db", default=os.environ.get("S2S_KEYS_DB"), help=DB_HELP)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text,
                                  formatter_class=parser.formatter_class)
        # also after the subcommand; SUPPRESS keeps a --db given before it
        sub.add_argument("--db", default=argparse.SUPPRESS, help=DB_HELP)
        return sub

    add = command("add", "add a key and print it (creates the database when missing)")
    add.add_argument("--key", help="the key (default: a new random one)")
    add.add_argument("--name", default="", help="a note on whose key it is")
    add.add_argument("--req-limit", type=int, help="requests per minute (default: unlimited)")
    add.add_argument("--char-limit", type=int,
                     help="characters per request (default: only the server's limits)")
    command("list", "show the keys with their limits")
    remove = command("remove", "delete a key (exit 1 when there is none)")
    remove.add_argument("key", help="the key to delete")
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
    if args.command != "add" and not Path(args.db).is_file():
        return fail(f"no key database at {args.db} (s2s-keys add --db {args.db} creates one)")
    try:
        return run(KeyStore(args.db), args)
    except KeyStoreError as error:
        return fail(str(error))


if __name__ == "__main__":
    sys.exit(main())
