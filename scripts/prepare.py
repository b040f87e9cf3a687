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
from s2s.training.prepare import (
    is_current,
    open_prepared,
    prepare,
    prepared_folder,
    vocabulary_report,
)

from .cli_common import add_config_args, make_parser

CORPUS_LAYOUT = """\
corpus folder layout (config section data):
  one corpus:   data.corpus_dir holds <split>.<lang> files, one sentence per line, line N of
                each language the translation of the other's line N, e.g.
                    data/multi30k/train.de  data/multi30k/train.en    (data.train_split)
                    data/multi30k/val.de    data/multi30k/val.en      (data.valid_split)
                with data.src_lang/data.tgt_lang naming the languages; corpus_dir may use
                ${VAR} or ${VAR:-default} (default: ${S2S_DATA_DIR:-data}/multi30k).
  several:      data.corpora: a list of {name, src, tgt, weight, holdout, max_len,
                max_len_ratio}: src/tgt are two line-aligned files (plain or .gz), validated
                on data.valid_src/data.valid_tgt and/or held-out pairs.
  demo task:    data.corpus: demo (generated pairs, no files).
  output:       data.prepared_dir (default <out_dir>/prepared): token shards, validation set,
                SentencePiece models, shortlist and manifest.json."""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__, epilog=CORPUS_LAYOUT)
    add_config_args(parser)
    parser.add_argument("--workers", type=int, default=None,
                        help="encoding processes (default: data.prepare_workers)")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


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
        vocabulary, warning = vocabulary_report(config, open_prepared(config, folder).tokenizer)
    except (ConfigError, DataError, TokenizerError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    state = "already current" if current else f"prepared in {time.perf_counter() - started:.1f} s"
    print(f"{folder}: {state}")
    for line in corpus_lines(manifest):
        print(line)
    print(vocabulary)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
