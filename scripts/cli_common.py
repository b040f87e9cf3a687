"""Command-line pieces shared by the scripts: one spelling of each option across commands
(``--config``/``--set``, ``--src``/``--ref``/``--output``, ``--device``, ``--dtype`` and
``--cpu-dtype``), help that shows the defaults, decoding options and error reporting."""

from __future__ import annotations

import argparse

from s2s.batching import BatchBudget
from s2s.constants import BEAM_SIZE, DECODE_BATCH_TOKENS, LENGTH_PENALTY, MAX_LEN_A, MAX_LEN_B
from s2s.inference.search import SearchOptions
from s2s.inference.translator import TranslateOptions

from .cli_parsing import (  # noqa: F401 (the commands import these from here too)
    HelpFormatter,
    add_config_args,
    fail,
    make_parser,
    warn,
)

DEVICES_HELP = "cpu, cuda, cuda:N, or auto (CUDA when available, else the CPU)"
GPU_DTYPES = ["fp32", "fp16", "bf16"]
CPU_DTYPES = ["fp32", "bf16", "int8"]


def add_device_args(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--device (default auto), --dtype (on a GPU) and --cpu-dtype (on the CPU), the same
    options and names as s2s-serve's device/dtype/cpu_dtype settings."""
    parser.add_argument("--device", default="auto", help=DEVICES_HELP)
    parser.add_argument("--dtype", default="fp32", choices=[*GPU_DTYPES, "int8"],
                        help="dtype on a GPU (int8: deprecated spelling of --cpu-dtype int8)")
    parser.add_argument("--cpu-dtype", default="fp32", choices=CPU_DTYPES,
                        help="dtype on the CPU: bf16 needs AVX512-BF16 or AMX; int8 is dynamic "
                             "quantization")


def chosen_dtype(args: argparse.Namespace) -> str:
    """The dtype the model runs in: --dtype on a GPU, --cpu-dtype on the CPU. ValueError for
    --dtype fp16/bf16 when the model runs on the CPU (it would be ignored); DeviceError for a
    device that is not available."""
    from s2s.devices import resolve_device

    on_cpu = resolve_device(args.device).type == "cpu"
    if args.dtype == "int8":
        warn("--dtype int8 is deprecated: int8 runs on the CPU, give --cpu-dtype int8")
        if not on_cpu:
            raise ValueError("int8 (dynamic quantization) runs on the CPU only")
        args.dtype, args.cpu_dtype = "fp32", "int8"
    if on_cpu and args.dtype != "fp32":
        raise ValueError(f"--dtype {args.dtype} is the dtype on a GPU and the model runs on the "
                         f"CPU here (--device {args.device}): give --cpu-dtype instead")
    return args.cpu_dtype if on_cpu else args.dtype


def add_decoding_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("decoding")
    group.add_argument("--beam", type=int, default=BEAM_SIZE, help="beam size (1 = greedy)")
    group.add_argument("--n-best", type=int, default=1, help="hypotheses per input")
    group.add_argument("--length-penalty", type=float, default=LENGTH_PENALTY,
                       help="GNMT alpha")
    group.add_argument("--max-len-a", type=float, default=MAX_LEN_A,
                       help="max output tokens = a * source tokens + b")
    group.add_argument("--max-len-b", type=int, default=MAX_LEN_B,
                       help="max output tokens = a * source tokens + b")
    group.add_argument("--min-len-a", type=float, default=0.0,
                       help="min output tokens = a * source tokens + b")
    group.add_argument("--min-len-b", type=int, default=0,
                       help="min output tokens = a * source tokens + b")
    group.add_argument("--no-repeat-ngram", type=int, default=0, help="0 = off")
    unk = group.add_mutually_exclusive_group()
    unk.add_argument("--forbid-unk", action="store_true", help="never output the unknown token")
    unk.add_argument("--replace-unk", action="store_true",
                     help="replace unknown tokens by the most attended source piece")
    group.add_argument("--batch-tokens", type=int, default=DECODE_BATCH_TOKENS,
                       help="source tokens per batch (rows x longest)")
    group.add_argument("--no-shortlist", action="store_true",
                       help="score the whole target vocabulary (ignore the model's shortlist)")
    add_device_args(group)


def translate_options(args: argparse.Namespace) -> TranslateOptions:
    """TranslateOptions from parsed arguments; raises ValueError for inconsistent values."""
    search = SearchOptions(
        beam_size=args.beam, n_best=args.n_best, length_penalty=args.length_penalty,
        max_len_a=args.max_len_a, max_len_b=args.max_len_b, min_len_a=args.min_len_a,
        min_len_b=args.min_len_b, no_repeat_ngram=args.no_repeat_ngram,
        forbid_unk=args.forbid_unk)
    return TranslateOptions(search=search, budget=BatchBudget(args.batch_tokens),
                            replace_unk=args.replace_unk, use_shortlist=not args.no_shortlist)
