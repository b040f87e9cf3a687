#!/usr/bin/env python3
"""Translate text with a model file: s2s-translate --model MODEL [--beam N] [--n-best K]

--model may be repeated: the files (same SentencePiece models) then decode as an ensemble, the
mean of their log-probabilities at every step.

Reads one sentence per line from --input (or stdin; sentences given as arguments instead) and
writes one translation per line to --output (or stdout). With --n-best K > 1 each input gets K
lines "INDEX<TAB>TRANSLATION<TAB>SCORE". A progress bar is shown on a terminal.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from s2s.checkpoint import CheckpointError
from s2s.inference.translator import InputTooLongError, Translation, Translator

from .cli_common import add_decoding_args, fail, translate_options

CHUNK_LINES = 256


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, action="append",
                        help="model file (model.pt / best.pt); repeat it for an ensemble")
    parser.add_argument("--input", help="source file, one sentence per line (default: stdin)")
    parser.add_argument("--output", help="output file (default: stdout)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("sentences", nargs="*", help="sentences to translate")
    add_decoding_args(parser)
    return parser.parse_args(argv)


def read_sources(args: argparse.Namespace) -> list[str]:
    if args.sentences:
        return list(args.sentences)
    if args.input:
        return Path(args.input).read_text(encoding="utf-8").splitlines()
    return sys.stdin.read().splitlines()


def format_result(index: int, result: Translation, n_best: int) -> str:
    if n_best == 1:
        return result.text + "\n"
    if not result.alternatives:  # empty input
        return f"{index}\t\t0.0000\n"
    return "".join(f"{index}\t{c.text}\t{c.normalized_score:.4f}\n" for c in result.alternatives)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        options = translate_options(args)
        translator = Translator.from_files(args.model, args.device, args.dtype)
        sources = read_sources(args)
        show = not args.no_progress and sys.stderr.isatty()
        lines: list[str] = []
        with tqdm(total=len(sources), unit="sent", disable=not show) as bar:
            for start in range(0, len(sources), CHUNK_LINES):
                chunk = sources[start:start + CHUNK_LINES]
                for offset, result in enumerate(translator.translate(chunk, options)):
                    lines.append(format_result(start + offset, result, args.n_best))
                bar.update(len(chunk))
    except (CheckpointError, InputTooLongError, OSError, ValueError) as error:
        return fail(str(error))
    if args.output:
        Path(args.output).write_text("".join(lines), encoding="utf-8")
    else:
        sys.stdout.write("".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
