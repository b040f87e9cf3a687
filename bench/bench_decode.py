#!/usr/bin/env python3
"""Decoding benchmark: sentences/s and target tokens/s on a source file.

bench/bench_decode.py --model M [--model M2 ...] --src test.de [--ref test.en] [--beams 1 5]
    [--dtypes fp32 int8] [--shortlist on off] [--batch-tokens 2000 4000] [--threads 2]
    [--startup] [--out FILE]
Runs every combination, one translation of the whole file each (after a warm-up batch), and
appends one JSON record per run (with machine and conditions, and BLEU when --ref is given).
A repeated --model measures the ensemble of the files.
--startup also times the whole translate.py command (process start, model load, decode).
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from bench_train import machine_info

from s2s.batching import BatchBudget
from s2s.inference.search import SearchOptions
from s2s.inference.translator import TranslateOptions, Translator
from s2s.scoring import score_corpus
from s2s.training.corpus_files import read_lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, action="append",
                        help="model file; repeat it for an ensemble")
    parser.add_argument("--src", required=True)
    parser.add_argument("--ref")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--shortlist", nargs="+", default=["on"], choices=["on", "off"])
    parser.add_argument("--batch-tokens", type=int, nargs="+", default=[4000])
    parser.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--startup", action="store_true", help="also time translate.py")
    parser.add_argument("--out", default="bench/decode.jsonl")
    parser.add_argument("--label", default="")
    return parser.parse_args(argv)


def time_decoding(translator: Translator, sources: list[str], options: TranslateOptions
                  ) -> tuple[list[str], float, int]:
    """(translations, seconds, target tokens incl. EOS) for one pass over ``sources``."""
    translator.translate(sources[:16], options)  # warm-up
    if translator.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    results = translator.translate(sources, options)
    if translator.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return [r.text for r in results], seconds, sum(len(r.tokens) + 1 for r in results)


def time_command(args: argparse.Namespace, beam: int, dtype: str, batch_tokens: int) -> float:
    models = [part for model in args.model for part in ("--model", model)]
    command = [sys.executable, "-m", "scripts.translate", *models, "--src", args.src,
               "--beam", str(beam), "--dtype", dtype, "--device", args.device,
               "--batch-tokens", str(batch_tokens), "--no-progress"]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sources = read_lines(args.src)
    references = read_lines(args.ref) if args.ref else None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid = itertools.product(args.threads, args.dtypes, args.beams, args.shortlist,
                             args.batch_tokens)
    for threads, dtype, beam, shortlist, batch_tokens in grid:
        torch.set_num_threads(threads)
        translator = Translator.from_files(args.model, args.device, dtype)
        options = TranslateOptions(search=SearchOptions(beam_size=beam),
                                   budget=BatchBudget(batch_tokens),
                                   use_shortlist=shortlist == "on")
        hypotheses, seconds, tokens = time_decoding(translator, sources, options)
        record = {"model": args.model[0] if len(args.model) == 1 else args.model,
                  "members": len(args.model), "src": args.src, "sentences": len(sources),
                  "beam": beam, "dtype": dtype, "shortlist": shortlist,
                  "has_shortlist": translator.shortlist is not None,
                  "batch_tokens": batch_tokens, "threads": threads, "device": args.device,
                  "decode_s": seconds, "sentences_per_s": len(sources) / seconds,
                  "target_tokens_per_s": tokens / seconds, "label": args.label,
                  "machine": machine_info(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        if references:
            record["bleu"] = score_corpus(hypotheses, references).bleu
        if args.startup:
            record["command_s"] = time_command(args, beam, dtype, batch_tokens)
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        print(f"beam {beam} {dtype} shortlist {shortlist} batch {batch_tokens} threads "
              f"{threads}: {record['sentences_per_s']:.1f} sent/s, "
              f"{record['target_tokens_per_s']:.0f} tok/s"
              + (f", BLEU {record['bleu']:.2f}" if references else "")
              + (f", command {record['command_s']:.2f} s" if args.startup else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
