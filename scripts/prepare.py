#!/usr/bin/env python3
"""Prepare training data once: s2s-prepare --config CONFIG.yaml [--set key=value ...]

Trains SentencePiece on a sample, encodes every corpus with several processes, filters, and
writes memory-mapped token shards, the validation set and the shortlist to the prepared folder
(data.prepared_dir, default <run folder>/prepared). s2s-train does the same when the prepared
data is missing or stale; every training process then only memory-maps it.
"""

from __future__ import annotations

import argparse
import sys
import time

from s2s.config import ConfigError, load_config
from s2s.tokenizer import TokenizerError
from s2s.training.corpus_files import DataError
from s2s.training.prepare import is_current, prepare, prepared_folder


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML config file")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config value")
    parser.add_argument("--workers", type=int, default=None,
                        help="encoding processes (default: data.prepare_workers)")
    return parser.parse_args(argv)


def corpus_lines(manifest: dict) -> list[str]:
    """One line per corpus: pairs kept and why the others were dropped."""
    lines = []
    for corpus in manifest["corpora"]:
        dropped = ", ".join(f"{corpus[k]:,} {k.replace('_', ' ')}" for k in
                            ("empty", "too_long", "ratio", "held_out", "holdout_duplicate")
                            if corpus.get(k))
        total = corpus["read"] + corpus["held_out"] + corpus["holdout_duplicate"]
        lines.append(f"corpus {corpus['name']} (weight {corpus['weight']:g}): "
                     f"{corpus['kept']:,} of {total:,} pairs kept"
                     + (f"; dropped: {dropped}" if dropped else ""))
    lines.append(f"validation: {manifest['valid_pairs']:,} pairs")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
        folder = prepared_folder(config)
        current = is_current(folder, config, None)
        started = time.perf_counter()
        manifest = prepare(config, folder, workers=args.workers)
    except (ConfigError, DataError, TokenizerError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    state = "already current" if current else f"prepared in {time.perf_counter() - started:.1f} s"
    print(f"{folder}: {state}")
    for line in corpus_lines(manifest):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
