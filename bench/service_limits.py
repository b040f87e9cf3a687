#!/usr/bin/env python3
"""Service limits under adversarial load, three checks against a started server command:

  bench/service_limits.py stall --server CMD --models-dir DIR --src F --heavy-pair de-rand
      one client sends the most expensive request the limits allow, over and over, to one
      pair while another translates normal sentences of another pair: the normal client's
      latencies and errors, and how long the server takes to exit on SIGTERM afterwards;
  bench/service_limits.py drain --server CMD --models-dir DIR --src F
      64 closed-loop clients; SIGTERM after a few seconds: every request answered (200) or
      refused (503 or never connected), none cut off, and the time to exit;
  bench/service_limits.py slow --server CMD --models-dir DIR --src F
      N connections that send their headers or body slowly and stall, for 30 s: how many the
      server closes and when, its RSS, and a normal client's latencies meanwhile.

The server command gets ``--models-dir DIR --port N --host 127.0.0.1`` appended; results (with
the machine) go to --out as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
from bench_load import free_port, percentile, wait_ready
from bench_train import machine_info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=["stall", "drain", "slow"])
    parser.add_argument("--server", required=True, help="server command (shell words)")
    parser.add_argument("--label", default="", help="names this run in the output")
    parser.add_argument("--models-dir", required=True)
    parser.add_argument("--src", required=True, help="normal sentences, one per line")
    parser.add_argument("--pair", default="de-en", help="the normal clients' pair")
    parser.add_argument("--heavy-pair", default="de-rand", help="stall: the heavy client's pair")
    parser.add_argument("--heavy-body", default='{"beam_size": 16, "max_len_b": 256, '
                        '"max_len_a": 0, "n_texts": 90}', help="stall: native request fields")
    parser.add_argument("--heavy-clients", type=int, default=2)
    parser.add_argument("--clients", type=int, default=64, help="drain: closed-loop clients")
    parser.add_argument("--connections", type=int, default=300, help="slow: stalled sockets")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", required=True)
    return parser.parse_args(argv)


class Server:
    """The server command on a free port; SIGTERM and the time it takes to exit."""

    def __init__(self, args: argparse.Namespace):
        self.port = free_port()
        env = {**os.environ, "S2S_LOG_LEVEL": "warning",
               **dict(item.split("=", 1) for item in args.env)}
        command = [*shlex.split(args.server), "--models-dir", args.models_dir, "--port",
                   str(self.port), "--host", "127.0.0.1"]
        self.process = subprocess.Popen(command, env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_ready(self.process, self.url)

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def terminate(self, limit_s: float = 60.0) -> dict:
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(limit_s)
            killed = False
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            killed = True
        return {"exit_s": round(time.monotonic() - started, 2), "killed_after_s": limit_s
                if killed else None, "returncode": self.process.returncode}


def latency_summary(latencies: list[float], statuses: Counter) -> dict:
    latencies.sort()
    return {"ok": statuses.get("200", 0), "statuses": dict(statuses),
            "p50_ms": _ms(percentile(latencies, 50)), "p99_ms": _ms(percentile(latencies, 99)),
            "max_ms": _ms(latencies[-1] if latencies else None)}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


async def post(http: aiohttp.ClientSession, url: str, body: dict) -> str:
    try:
        async with http.post(url, json=body) as response:
            await response.read()
            return str(response.status)
    except aiohttp.ClientConnectorError:
        return "refused"
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
        return "cut"
    except TimeoutError:
        return "client_timeout"


async def closed_loop(http, url: str, bodies: list[dict], stop: asyncio.Event,
                      latencies: list[float], statuses: Counter, start: int = 0) -> None:
    index = start
    while not stop.is_set():
        began = time.perf_counter()
        status = await post(http, url, bodies[index % len(bodies)])
        statuses[status] += 1
        if status == "200":
            latencies.append(time.perf_counter() - began)
        index += 1
        if status in ("refused", "cut"):
            await asyncio.sleep(0.05)


def normal_bodies(args: argparse.Namespace) -> list[dict]:
    source, target = args.pair.split("-")
    lines = [s for s in Path(args.src).read_text(encoding="utf-8").splitlines() if s.strip()]
    return [{"q": line, "source": source, "target": target} for line in lines]


async def stall(args: argparse.Namespace, server: Server) -> dict:
    source, target = args.heavy_pair.split("-")
    fields = json.loads(args.heavy_body)
    texts = [line["q"] for line in normal_bodies(args)[: fields.pop("n_texts", 1)]]
    heavy = {"texts": texts, "source": source, "target": target, **fields}
    stop = asyncio.Event()
    normal_lat, normal_st, heavy_lat, heavy_st = [], Counter(), [], Counter()
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        tasks = [asyncio.create_task(closed_loop(http, f"{server.url}/v1/translate", [heavy],
                                                 stop, heavy_lat, heavy_st))
                 for _ in range(args.heavy_clients)]
        await asyncio.sleep(1.0)               # the heavy work is running
        tasks.append(asyncio.create_task(closed_loop(
            http, f"{server.url}/translate", normal_bodies(args), stop, normal_lat, normal_st)))
        await asyncio.sleep(args.duration)
        stop.set()
        await asyncio.wait(tasks[-1:], timeout=60)     # the normal client's last request
        for task in tasks[:-1]:                        # heavy requests: the clients give up
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        rss = server.rss_mib()
        exit_info = await asyncio.get_running_loop().run_in_executor(None, server.terminate)
    return {"normal": latency_summary(normal_lat, normal_st),
            "heavy": latency_summary(heavy_lat, heavy_st), "heavy_request": {
                **fields, "texts": len(texts)}, "rss_mib": round(rss, 1), **exit_info}


async def drain(args: argparse.Namespace, server: Server) -> dict:
    stop = asyncio.Event()
    latencies, statuses = [], Counter()
    bodies = normal_bodies(args)
    connector = aiohttp.TCPConnector(limit=args.clients + 2)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=120)) as http:
        tasks = [asyncio.create_task(closed_loop(http, f"{server.url}/translate", bodies, stop,
                                                 latencies, statuses, n))
                 for n in range(args.clients)]
        await asyncio.sleep(5.0)
        before = dict(statuses)
        loop = asyncio.get_running_loop()
        exit_info = await loop.run_in_executor(None, server.terminate)
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    after = {k: v - before.get(k, 0) for k, v in statuses.items()}
    return {"clients": args.clients, "before_sigterm": before, "from_sigterm_on": after,
            "cut": statuses.get("cut", 0), **exit_info}


def stalled_socket(port: int, kind: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    if kind == "body":
        head = (b"POST /translate HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                b"content-length: 1000000\r\n\r\n")
        sock.sendall(head)
        payload = b"x" * 999_000
        while payload:
            try:
                payload = payload[sock.send(payload):]
            except BlockingIOError:
                time.sleep(0.005)
            except OSError:
                break
    else:
        sock.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\n")
    return sock


def is_closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b"" or False
    except BlockingIOError:
        return False
    except OSError:
        return True


async def slow(args: argparse.Namespace, server: Server) -> dict:
    rss_before = server.rss_mib()
    opened = time.monotonic()
    sockets = [(stalled_socket(server.port, "body" if n % 2 else "header"), n % 2)
               for n in range(args.connections)]
    closed_at: dict[int, float] = {}
    stop = asyncio.Event()
    latencies, statuses = [], Counter()
    rss_peak = rss_before
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        task = asyncio.create_task(closed_loop(http, f"{server.url}/translate",
                                               normal_bodies(args), stop, latencies, statuses))
        while time.monotonic() - opened < args.duration:
            for number, (sock, _) in enumerate(sockets):
                if number not in closed_at and is_closed(sock):
                    closed_at[number] = time.monotonic() - opened
            rss_peak = max(rss_peak, server.rss_mib())
            await asyncio.sleep(0.25)
        stop.set()
        await task
    rss_after = server.rss_mib()
    exit_info = server.terminate()
    for sock, _ in sockets:
        sock.close()
    by_kind = {kind: sorted(t for n, t in closed_at.items() if sockets[n][1] == flag)
               for kind, flag in (("slow_header", 0), ("slow_body", 1))}
    return {"connections": args.connections, "closed_by_server": len(closed_at),
            "closed_after_s": {k: {"count": len(v), "median": v[len(v) // 2] if v else None,
                                   "max": v[-1] if v else None} for k, v in by_kind.items()},
            "rss_mib": {"before": round(rss_before, 1), "peak": round(rss_peak, 1),
                        "after": round(rss_after, 1)},
            "normal_client": latency_summary(latencies, statuses), **exit_info}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = Server(args)
    try:
        result = asyncio.run({"stall": stall, "drain": drain, "slow": slow}[args.check](
            args, server))
    finally:
        if server.process.poll() is None:
            server.process.kill()
    record = {"check": args.check, "label": args.label, "server": args.server,
              "duration_s": args.duration, "machine": machine_info(), **result}
    with open(args.out, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
