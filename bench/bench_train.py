#!/usr/bin/env python3
"""Training throughput benchmark: target tokens/s and peak memory for a config.

bench/bench_train.py --config configs/multi30k_de_en.yaml [--steps 30] [--out FILE.json]
Runs warm-up steps, then timed optimizer steps on the config's real batches, and writes the
figures with the machine and conditions to a JSON file. --profile adds a torch.profiler table.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from s2s.config import load_config
from s2s.model import count_parameters
from s2s.training.trainer import Trainer


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--steps", type=int, default=30, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", default="bench/train_throughput.json")
    parser.add_argument("--label", default="", help="free text stored with the figures")
    parser.add_argument("--profile", action="store_true", help="write a torch.profiler table")
    return parser.parse_args(argv)


FLAGS_THAT_MATTER = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def machine_info() -> dict[str, object]:
    """CPU model and the instruction sets that decide torch's speed, threads, versions."""
    cpu, flags = "unknown", set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    return {"cpu": cpu, "cpu_flags": [f for f in FLAGS_THAT_MATTER if f in flags],
            "logical_cpus": torch.multiprocessing.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def timed_steps(trainer: Trainer, steps: int) -> tuple[float, float]:
    """Run ``steps`` updates; returns (target tokens, seconds)."""
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    tokens = 0.0
    for _ in range(steps):
        tokens += trainer.train_step()[1]
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return tokens, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        overrides = [f"out_dir={scratch}", *args.overrides]
        config = load_config(args.config, overrides)
        trainer = Trainer.build(config)
        timed_steps(trainer, args.warmup)
        if trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        tokens, seconds = timed_steps(trainer, args.steps)
        result = {
            "config": args.config, "overrides": args.overrides, "label": args.label,
            "parameters": count_parameters(trainer.model), "device": str(trainer.device),
            "steps": args.steps, "target_tokens": tokens, "seconds": seconds,
            "target_tokens_per_s": tokens / seconds,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_cuda_mib": (torch.cuda.max_memory_allocated() / 2**20
                              if trainer.device.type == "cuda" else None),
            "machine": machine_info(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if args.profile:
            result["profile_file"] = write_profile(trainer, Path(args.out))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(result) + "\n")
    print(f"{result['target_tokens_per_s']:.0f} target tokens/s, peak RSS "
          f"{result['peak_rss_mib']:.0f} MiB ({args.label or args.config}); appended to {out}")
    return 0


def write_profile(trainer: Trainer, out: Path) -> str:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        timed_steps(trainer, 5)
    path = out.with_suffix(".profile.txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=40))
    return str(path)


if __name__ == "__main__":
    sys.exit(main())
