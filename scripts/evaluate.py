#!/usr/bin/env python3
"""Score translations with sacreBLEU: s2s-evaluate --model MODEL --src F --ref F

Translates --src with the model (or reads ready translations with --hyp instead of --model),
then prints cased, detokenized BLEU and chrF with their sacreBLEU signatures. --json FILE also
writes the scores (and decoding settings and time) as JSON; --output FILE keeps the translations.
A repeated --model translates with the ensemble of the files (same SentencePiece models).
A source line longer than the model accepts is handled by --long-lines (as in s2s-translate).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from s2s.checkpoint import CheckpointError
from s2s.devices import DeviceError
from s2s.inference.translator import InputTooLongError, Translator
from s2s.scoring import score_corpus
from s2s.training.corpus_files import DataError, read_lines

from .cli_common import add_decoding_args, chosen_dtype, fail, make_parser, translate_options, warn
from .long_lines import add_long_lines_arg, translate_lines


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", action="append",
                        help="model file to translate --src with; repeat it for an ensemble")
    source.add_argument("--hyp", help="file of ready translations, one per line")
    parser.add_argument("--src", help="source file (needed with --model)")
    parser.add_argument("--ref", required=True, help="reference file")
    parser.add_argument("--json", help="write the scores to this JSON file")
    parser.add_argument("--output", help="write the translations to this file")
    add_long_lines_arg(parser)
    add_decoding_args(parser)
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def translate_file(args: argparse.Namespace) -> tuple[list[str], dict]:
    options = translate_options(args)
    started = time.perf_counter()
    dtype = chosen_dtype(args)
    translator = Translator.from_files(args.model, args.device, dtype)
    loaded = time.perf_counter()
    results = translate_lines(translator, read_lines(args.src), options, args.long_lines,
                              warn=warn)
    finished = time.perf_counter()
    model = args.model[0] if len(args.model) == 1 else args.model
    info = {"model": model, "beam": args.beam, "length_penalty": args.length_penalty,
            "dtype": dtype, "device": str(translator.device), "load_s": loaded - started,
            "translate_s": finished - loaded, "sentences": len(results)}
    return [r.text for r in results], info


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.model and not args.src:
        return fail("--src is needed with --model")
    try:
        if args.model:
            hypotheses, info = translate_file(args)
        else:
            hypotheses, info = read_lines(args.hyp), {"hyp": args.hyp}
        scores = score_corpus(hypotheses, read_lines(args.ref))
    except (CheckpointError, DataError, DeviceError, InputTooLongError, ValueError) as error:
        return fail(str(error))
    if args.output:
        Path(args.output).write_text("".join(h + "\n" for h in hypotheses), encoding="utf-8")
    print(f"BLEU {scores.bleu:.2f}  ({scores.bleu_signature})")
    print(f"chrF {scores.chrf:.2f}  ({scores.chrf_signature})")
    if args.json:
        payload = {**scores.as_dict(), **info, "ref": args.ref, "src": args.src}
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
