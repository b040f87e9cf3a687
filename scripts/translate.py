#!/usr/bin/env python3
"""Translate text with a model file: scripts/translate.py --model MODEL [--input F] [--output F]

Reads one sentence per line from --input (or stdin) and writes one translation per line.
Sentences given as arguments are translated instead of the input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from s2s.checkpoint import CheckpointError  # noqa: E402
from s2s.translator import DecodingOptions, InputTooLongError, Translator  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model file (model.pt / best.pt)")
    parser.add_argument("--input", help="source file, one sentence per line (default: stdin)")
    parser.add_argument("--output", help="output file (default: stdout)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--batch-tokens", type=int, default=4000)
    parser.add_argument("sentences", nargs="*", help="sentences to translate")
    return parser.parse_args(argv)


def read_sources(args: argparse.Namespace) -> list[str]:
    if args.sentences:
        return list(args.sentences)
    if args.input:
        return Path(args.input).read_text(encoding="utf-8").splitlines()
    return sys.stdin.read().splitlines()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        translator = Translator.from_file(args.model, args.device)
        sources = read_sources(args)
        results = translator.translate(sources, DecodingOptions(batch_tokens=args.batch_tokens))
    except (CheckpointError, InputTooLongError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    lines = "".join(result.text + "\n" for result in results)
    if args.output:
        Path(args.output).write_text(lines, encoding="utf-8")
    else:
        sys.stdout.write(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
