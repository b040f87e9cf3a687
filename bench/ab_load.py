#!/usr/bin/env python3
"""Interleaved A/B load test of two server commands: bench/ab_load.py --a CMD --b CMD

Starts each command in turn (A, B, A, B, ... for --rounds), with ``--port N --host 127.0.0.1``
appended, waits for /ready, runs bench_load's closed-loop clients against it for --duration
seconds at --clients, stops it, and writes every run with the machine to --out. Both sides
are measured in one run on one machine, so their ratio means something even where the
machine's speed drifts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from bench_load import free_port, measure, stop_server, wait_ready
from bench_train import machine_info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="server command A (shell words)")
    parser.add_argument("--b", required=True, help="server command B")
    parser.add_argument("--label-a", default="A")
    parser.add_argument("--label-b", default="B")
    parser.add_argument("--src", required=True, help="sentences, one per line")
    parser.add_argument("--pair", default="de-en")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--api-key")
    parser.add_argument("--out", required=True)
    return parser.parse_args(argv)


def run_side(command: str, sentences: list[str], args: argparse.Namespace) -> dict:
    port = free_port()
    env = {**os.environ, "S2S_LOG_LEVEL": "warning"}
    process = subprocess.Popen([*shlex.split(command), "--port", str(port), "--host",
                                "127.0.0.1"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, url)
        return asyncio.run(measure(url, sentences, args.clients, args, process.pid))
    finally:
        stop_server(process)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sentences = [s.strip() for s in Path(args.src).read_text(encoding="utf-8").splitlines()
                 if s.strip()]
    runs = []
    for round_number in range(args.rounds):
        for label, command in ((args.label_a, args.a), (args.label_b, args.b)):
            row = run_side(command, sentences, args)
            runs.append({"round": round_number, "side": label, **row})
            print(f"round {round_number} {label:>10}: {row['sentences_per_s']:.1f} sent/s, "
                  f"p50 {row['latency_ms']['p50']} ms, p99 {row['latency_ms']['p99']} ms, "
                  f"mean batch {row['mean_batch_size']}, errors {row['errors'] or '-'}",
                  flush=True)
    result = {"a": args.a, "b": args.b, "labels": [args.label_a, args.label_b],
              "clients": args.clients, "duration_s": args.duration, "pair": args.pair,
              "machine": machine_info(), "runs": runs}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
