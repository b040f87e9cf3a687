#!/usr/bin/env python3
"""Overload run: more concurrent clients than the service's queue holds.

bench/overload_check.py --models-dir DIR --pair de-en --src F [--clients 200]
    [--queue-capacity 64] [--sentences-per-request 4] [--duration 20] [--out FILE]
Starts the service (s2s-serve) with a small queue, lets the clients send multi-sentence requests as
fast as answers come, and records: statuses, whether every 503 carried Retry-After, whether any
accepted request failed, the server's resident memory over time, and /ready at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
from bench_load import free_port, stop_server, wait_ready
from bench_train import machine_info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", required=True)
    parser.add_argument("--pair", default="de-en")
    parser.add_argument("--src", required=True)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--queue-capacity", type=int, default=64)
    parser.add_argument("--sentences-per-request", type=int, default=4)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--out", default="bench/overload.json")
    return parser.parse_args(argv)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def client(http: aiohttp.ClientSession, url: str, body: dict, stop_at: float,
                 tally: Counter) -> None:
    while time.perf_counter() < stop_at:
        try:
            async with http.post(f"{url}/translate", json=body) as answer:
                status = answer.status
                retry_after = answer.headers.get("retry-after")
                payload = await answer.json() if status == 200 else None
        except (TimeoutError, aiohttp.ClientError) as error:
            tally[f"transport:{type(error).__name__}"] += 1
            continue
        tally[str(status)] += 1
        if status == 503:
            tally["503_with_retry_after"] += retry_after is not None
            await asyncio.sleep(float(retry_after or 1) * 0.1)
        elif status == 200:
            tally["200_complete"] += len(payload["translatedText"]) == len(body["q"])


async def run(url: str, pid: int, args: argparse.Namespace, sentences: list[str]) -> dict:
    source, target = args.pair.split("-")
    tally: Counter = Counter()
    memory: list[float] = [rss_mib(pid)]
    connector = aiohttp.TCPConnector(limit=args.clients + 4)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        stop_at = time.perf_counter() + args.duration
        bodies = [{"q": [sentences[(i * args.sentences_per_request + j) % len(sentences)]
                         for j in range(args.sentences_per_request)],
                   "source": source, "target": target} for i in range(args.clients)]
        tasks = [asyncio.create_task(client(http, url, body, stop_at, tally)) for body in bodies]
        while time.perf_counter() < stop_at:
            await asyncio.sleep(1)
            memory.append(rss_mib(pid))
        await asyncio.gather(*tasks)
        async with http.get(f"{url}/ready") as answer:
            ready = answer.status
    return {"statuses": dict(tally), "rss_mib": memory, "ready_after": ready}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sentences = [s for s in Path(args.src).read_text(encoding="utf-8").splitlines() if s]
    port = free_port()
    env = {**os.environ, "S2S_LOG_LEVEL": "warning",
           "S2S_QUEUE_CAPACITY": str(args.queue_capacity)}
    process = subprocess.Popen([sys.executable, "-m", "scripts.serve",
                                "--models-dir", args.models_dir, "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, url)
        result = asyncio.run(run(url, process.pid, args, sentences))
    finally:
        stop_server(process)
    result.update(clients=args.clients, queue_capacity=args.queue_capacity,
                  sentences_per_request=args.sentences_per_request, duration_s=args.duration,
                  machine=machine_info())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
