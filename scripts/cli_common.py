"""Command-line pieces shared by the scripts: decoding options and error reporting."""

from __future__ import annotations

import argparse
import sys

from s2s.constants import BEAM_SIZE, DECODE_BATCH_TOKENS, LENGTH_PENALTY, MAX_LEN_A, MAX_LEN_B
from s2s.inference.search import SearchOptions
from s2s.inference.translator import TranslateOptions


def add_decoding_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("decoding")
    group.add_argument("--beam", type=int, default=BEAM_SIZE, help="beam size (1 = greedy)")
    group.add_argument("--n-best", type=int, default=1, help="hypotheses per input")
    group.add_argument("--length-penalty", type=float, default=LENGTH_PENALTY,
                       help="GNMT alpha")
    group.add_argument("--max-len-a", type=float, default=MAX_LEN_A)
    group.add_argument("--max-len-b", type=int, default=MAX_LEN_B,
                       help="max output tokens = a * source tokens + b")
    group.add_argument("--min-len-a", type=float, default=0.0)
    group.add_argument("--min-len-b", type=int, default=0)
    group.add_argument("--no-repeat-ngram", type=int, default=0, help="0 = off")
    unk = group.add_mutually_exclusive_group()
    unk.add_argument("--forbid-unk", action="store_true", help="never output the unknown token")
    unk.add_argument("--replace-unk", action="store_true",
                     help="replace unknown tokens by the most attended source piece")
    group.add_argument("--batch-tokens", type=int, default=DECODE_BATCH_TOKENS,
                       help="source tokens per batch (rows x longest)")
    group.add_argument("--no-shortlist", action="store_true",
                       help="score the whole target vocabulary (ignore the model's shortlist)")
    group.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    group.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16", "int8"],
                       help="fp16 on CUDA; bf16 on CUDA or a CPU with AVX512-BF16/AMX; int8 "
                            "dynamic quantization on the CPU")


def translate_options(args: argparse.Namespace) -> TranslateOptions:
    """TranslateOptions from parsed arguments; raises ValueError for inconsistent values."""
    search = SearchOptions(
        beam_size=args.beam, n_best=args.n_best, length_penalty=args.length_penalty,
        max_len_a=args.max_len_a, max_len_b=args.max_len_b, min_len_a=args.min_len_a,
        min_len_b=args.min_len_b, no_repeat_ngram=args.no_repeat_ngram,
        forbid_unk=args.forbid_unk)
    return TranslateOptions(search=search, batch_tokens=args.batch_tokens,
                            replace_unk=args.replace_unk, use_shortlist=not args.no_shortlist)


def fail(message: str, status: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status
