#!/usr/bin/env python3
"""/health and plain-text latency while 100 KB files are translated: bench/files_vs_health.py

    python bench/files_vs_health.py --models-dir DIR [--root-b OLD_CHECKOUT] --out FILE

For each server (A: this checkout; B: --root-b, started the same way), in turn A, B, A, B:
probes alone for --idle-s seconds, then the same probes while --uploaders clients each upload
~100 KB files (.txt and .html of --src sentences, within max_file_chars) to /translate_file
in a loop for --load-s seconds (waiting as Retry-After says when refused). The probes:
GET /health and a one-sentence POST /translate, each in its own loop every --probe-every-s
seconds. Reports per phase p50/p95/p99/max of
both probes, their statuses, and the files' statuses and seconds, with the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
from bench_train import machine_info
from mixed_load import ROOT, Server, milliseconds, start_server, stop

SIZE = 99_000   # characters: within the default max_file_chars (100,000)


def hundred_kb_file(sentences: list[str], number: int, rng: random.Random) -> tuple[str, bytes]:
    kind = ".txt" if number % 2 == 0 else ".html"
    parts, used = [], 0
    while used < SIZE - 500:
        group = " ".join(rng.choice(sentences) for _ in range(rng.randint(1, 4)))
        part = f"<p>{group}</p>\n" if kind == ".html" else group + "\n\n"
        parts.append(part)
        used += len(part)
    text = "".join(parts)
    if kind == ".html":
        text = f"<html><body>\n{text}</body></html>\n"
    return f"big{number}{kind}", text.encode()


async def probe(http: aiohttp.ClientSession, base: str, kind: str, sentence: str,
                every: float, until: float, out: list[tuple[float, str]]) -> None:
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            if kind == "health":
                async with http.get(base + "/health") as response:
                    await response.read()
            else:
                async with http.post(base + "/translate", json={
                        "q": sentence, "source": "de", "target": "en"}) as response:
                    await response.read()
            status = str(response.status)
        except aiohttp.ClientError as error:
            status = type(error).__name__
        out.append((time.monotonic() - started, status))
        await asyncio.sleep(max(0.0, every - (time.monotonic() - started)))


async def uploader(http: aiohttp.ClientSession, base: str, sentences: list[str], seed: int,
                   until: float, out: list[tuple[float, str]]) -> None:
    rng = random.Random(seed)
    number = seed
    while time.monotonic() < until:
        name, data = hundred_kb_file(sentences, number, rng)
        number += 1
        form = aiohttp.FormData()
        form.add_field("file", data, filename=name, content_type="application/octet-stream")
        form.add_field("source", "de")
        form.add_field("target", "en")
        started = time.monotonic()
        async with http.post(base + "/translate_file", data=form) as response:
            await response.read()
            out.append((time.monotonic() - started, str(response.status)))
            retry_after = response.headers.get("Retry-After")
        if retry_after is not None:   # a well-behaved client waits as told
            await asyncio.sleep(min(float(retry_after), max(0.0, until - time.monotonic())))


def summary(samples: list[tuple[float, str]]) -> dict:
    seconds = [s for s, status in samples if status == "200"]
    ms = {**milliseconds(seconds), "max": round(1000 * max(seconds), 1) if seconds else None}
    return {"n": len(samples), "statuses": dict(Counter(status for _, status in samples)),
            "latency_ms": ms}


async def phase(base: str, sentences: list[str], seconds: float, uploaders: int,
                every: float, seed: int) -> dict:
    until = time.monotonic() + seconds
    health: list[tuple[float, str]] = []
    plain: list[tuple[float, str]] = []
    files: list[tuple[float, str]] = []
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        tasks = [probe(http, base, "health", "", every, until, health),
                 probe(http, base, "plain", sentences[0], every, until, plain)]
        tasks += [uploader(http, base, sentences, seed + n, until, files)
                  for n in range(uploaders)]
        await asyncio.gather(*tasks)
    result = {"health": summary(health), "plain": summary(plain)}
    if uploaders:
        result["files"] = summary(files)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", required=True)
    parser.add_argument("--root-b", help="checkout of server B")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--src", default=str(ROOT.parent / "shared/data/multi30k/test2016.de"))
    parser.add_argument("--idle-s", type=float, default=15.0)
    parser.add_argument("--load-s", type=float, default=40.0)
    parser.add_argument("--uploaders", type=int, default=2)
    parser.add_argument("--probe-every-s", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="bench/files_vs_health.json")
    args = parser.parse_args()
    lines = Path(args.src).read_text(encoding="utf-8").splitlines()
    sentences = [line.strip() for line in lines if line.strip()]
    roots = [("A", str(ROOT))] + ([("B", args.root_b)] if args.root_b else [])
    runs = []
    for round_number in range(args.rounds):
        for label, root in roots:
            server: Server = start_server(label, args.python, root, args.models_dir, "")
            try:
                idle = asyncio.run(phase(server.url, sentences, args.idle_s, 0,
                                         args.probe_every_s, 1))
                loaded = asyncio.run(phase(server.url, sentences, args.load_s, args.uploaders,
                                           args.probe_every_s, 1))
            finally:
                stop(server)
            runs.append({"server": label, "round": round_number + 1, "idle": idle,
                         "files": loaded})
            print(label, round_number + 1, json.dumps({"idle": idle, "files": loaded}),
                  flush=True)
    Path(args.out).write_text(json.dumps({"machine": machine_info(), "args": vars(args),
                                          "runs": runs}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
