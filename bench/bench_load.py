#!/usr/bin/env python3
"""Load benchmark of the translation service: bench/bench_load.py [--url URL | --models-dir DIR]

N concurrent clients (for each N of --clients) send single sentences from --src to
/translate, each the next one as soon as its answer arrives, for --duration seconds. Reports
sentences/s, latency p50/p95/p99, mean batch size (from /metrics), errors by status, the CPU
seconds the clients and the server used, and writes JSON with the machine (--out).

The clients use aiohttp: on 2 cores the load generator shares the CPU with the server, and an
httpx client spent about 4.6 ms of CPU per request there (aiohttp 0.16 ms), so it alone capped a
fake instant server at about 220 requests/s.

With --url the running server is measured as it is configured. Without it the script starts
the service (s2s-serve) itself on --models-dir, once per --modes entry: "on" (dynamic batching,
--max-batch-sentences) and "off" (max batch sentences 1), and stops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import aiohttp
from bench_train import machine_info

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    default_src = Path(os.environ.get("S2S_DATA_DIR", ROOT / "data")) / "multi30k" / "test2016.de"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (else one is started per mode)")
    parser.add_argument("--models-dir", default="models", help="for the started server")
    parser.add_argument("--src", default=str(default_src), help="sentences, one per line")
    parser.add_argument("--pair", default="de-en", help="SRC-TGT")
    parser.add_argument("--clients", default="1,8,64", help="comma-separated client counts")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per measurement")
    parser.add_argument("--modes", default="on,off", help="batching modes for a started server")
    parser.add_argument("--max-batch-sentences", type=int, default=64, help="batching on")
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-delay-ms", type=float, default=50.0)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--cpu-dtype", default="fp32", choices=["fp32", "bf16", "int8"])
    parser.add_argument("--api-key")
    parser.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    parser.add_argument("--out", default="bench/serve_load.json")
    return parser.parse_args(argv)


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


async def batch_totals(http: aiohttp.ClientSession, url: str, pair: str
                       ) -> tuple[float, float]:
    """(sum, count) of the s2s_batch_size histogram of the pair."""
    async with http.get(f"{url}/metrics") as response:
        text = await response.text()
    values = {}
    for kind in ("sum", "count"):
        match = re.search(rf'^s2s_batch_size_{kind}\{{pair="{re.escape(pair)}"\}} (\S+)$',
                          text, re.MULTILINE)
        values[kind] = float(match[1]) if match else 0.0
    return values["sum"], values["count"]


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process (None if unknown)."""
    if pid is None:
        return None
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_clients(http: aiohttp.ClientSession, url: str, sentences: list[str],
                      clients: int, args: argparse.Namespace
                      ) -> tuple[list[float], Counter[str]]:
    """Closed-loop clients for args.duration seconds: latencies of 200s, count per status."""
    source, target = args.pair.split("-")
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    stop_at = time.perf_counter() + args.duration

    async def client(number: int) -> None:
        index = number
        while time.perf_counter() < stop_at:
            body = {"q": sentences[index % len(sentences)], "source": source, "target": target}
            if args.api_key:
                body["api_key"] = args.api_key
            index += clients
            started = time.perf_counter()
            try:
                async with http.post(f"{url}/translate", json=body) as response:
                    await response.read()
                    status = str(response.status)
            except (TimeoutError, aiohttp.ClientError) as error:
                status = type(error).__name__
            statuses[status] += 1
            if status == "200":
                latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(client(n) for n in range(clients)))
    return latencies, statuses


async def measure(url: str, sentences: list[str], clients: int, args: argparse.Namespace,
                  server_pid: int | None = None) -> dict:
    connector = aiohttp.TCPConnector(limit=clients + 2)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        before = await batch_totals(http, url, args.pair)
        server_before, client_before = cpu_seconds(server_pid), time.process_time()
        started = time.perf_counter()
        latencies, statuses = await run_clients(http, url, sentences, clients, args)
        elapsed = time.perf_counter() - started
        client_cpu = time.process_time() - client_before
        server_after = cpu_seconds(server_pid)
        after = await batch_totals(http, url, args.pair)
    latencies.sort()
    batches = after[1] - before[1]
    return {
        "clients": clients, "duration_s": round(elapsed, 3), "ok": statuses.get("200", 0),
        "sentences_per_s": round(statuses.get("200", 0) / elapsed, 2),
        "latency_ms": {f"p{q}": None if (v := percentile(latencies, q)) is None
                       else round(v * 1000, 2) for q in (50, 95, 99)},
        "mean_batch_size": round((after[0] - before[0]) / batches, 2) if batches else None,
        "errors": {status: n for status, n in statuses.items() if status != "200"},
        "client_cpu_s": round(client_cpu, 2),
        "server_cpu_s": None if server_after is None else round(server_after - server_before, 2),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args: argparse.Namespace, max_batch_sentences: int
                 ) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "scripts.serve", "--models-dir",
               args.models_dir, "--port", str(port), "--host", "127.0.0.1", "--device",
               args.device, "--max-batch-sentences", str(max_batch_sentences),
               "--max-wait-ms", str(args.max_wait_ms), "--max-delay-ms", str(args.max_delay_ms)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = {**os.environ, "S2S_LOG_LEVEL": "warning", "S2S_CPU_DTYPE": args.cpu_dtype}
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_ready(process, url)
    return process, url


def wait_ready(process: subprocess.Popen, url: str) -> None:
    """Wait until the started server answers /ready with 200 (or fail)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"error: the server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    stop_server(process)
    raise SystemExit("error: the server did not become ready within 300 s")


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def print_row(mode: str, row: dict) -> None:
    latency = row["latency_ms"]
    print(f"batching {mode:>5}  clients {row['clients']:>3}  {row['sentences_per_s']:>8.1f} "
          f"sent/s  p50 {latency['p50']} ms  p95 {latency['p95']} ms  p99 {latency['p99']} ms  "
          f"mean batch {row['mean_batch_size']}  errors {row['errors'] or '-'}  cpu s: client "
          f"{row['client_cpu_s']} server {row['server_cpu_s']}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    src = Path(args.src)
    if not src.is_file():
        print(f"error: no sentence file {src} (give one with --src)", file=sys.stderr)
        return 2
    sentences = [line.strip() for line in src.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    client_counts = [int(n) for n in args.clients.split(",")]
    runs = []
    modes = ["as configured"] if args.url else args.modes.split(",")
    for mode in modes:
        process = None
        url = args.url.rstrip("/") if args.url else None
        if url is None:
            batch = 1 if mode == "off" else args.max_batch_sentences
            process, url = start_server(args, batch)
        try:
            for clients in client_counts:
                row = asyncio.run(measure(url, sentences, clients, args,
                                          None if process is None else process.pid))
                print_row(mode, row)
                runs.append({"batching": mode, **row})
        finally:
            if process is not None:
                stop_server(process)
    result = {"pair": args.pair, "src": str(src), "duration_s": args.duration,
              "url": args.url, "device": None if args.url else args.device,
              "cpu_dtype": None if args.url else args.cpu_dtype,
              "threads": args.threads or None, "models_dir": args.models_dir,
              "max_batch_sentences": args.max_batch_sentences, "max_wait_ms": args.max_wait_ms,
              "max_delay_ms": args.max_delay_ms,
              "machine": machine_info(), "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
