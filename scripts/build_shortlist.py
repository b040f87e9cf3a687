#!/usr/bin/env python3
"""Add a decoding shortlist to a model file, built from a parallel corpus.

s2s-build-shortlist --model runs/x/best.pt --src train.de --tgt train.en [--output F]
(Training already stores one in the model files it writes; this is for older files or to try
other sizes.)
"""

from __future__ import annotations

import argparse
import sys

from s2s.checkpoint import MODEL_FORMAT, CheckpointError, atomic_save, load_checkpoint
from s2s.constants import SHORTLIST_FREQUENT, SHORTLIST_PER_SOURCE
from s2s.model.model_file import model_from_payload
from s2s.shortlist import Shortlist
from s2s.training.corpus_files import DataError, read_parallel

from .cli_common import fail, make_parser


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    parser.add_argument("--model", required=True, help="model file to add the shortlist to")
    parser.add_argument("--src", required=True, help="training source file")
    parser.add_argument("--tgt", required=True, help="training target file")
    parser.add_argument("--per-source", type=int, default=SHORTLIST_PER_SOURCE,
                        help="target pieces kept per source piece")
    parser.add_argument("--frequent", type=int, default=SHORTLIST_FREQUENT,
                        help="most frequent target pieces always kept")
    parser.add_argument("--output", help="model file to write (default: overwrite --model)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        payload = load_checkpoint(args.model, MODEL_FORMAT)
        tokenizer = model_from_payload(payload, args.model).tokenizer
        src, tgt = read_parallel(args.src, args.tgt)
    except (CheckpointError, DataError) as error:
        return fail(str(error))
    shortlist = Shortlist.build(tokenizer.src.encode(src), tokenizer.tgt.encode(tgt),
                                len(tokenizer.src), len(tokenizer.tgt), args.per_source,
                                args.frequent)
    payload["shortlist"] = shortlist.state_dict()
    atomic_save(payload, args.output or args.model)
    print(f"shortlist ({args.per_source} per source piece + {args.frequent} frequent) "
          f"written to {args.output or args.model}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
