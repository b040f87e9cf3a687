#!/usr/bin/env python3
"""Mixed real traffic against the translation service: bench/mixed_load.py --rate R ...

Usage: bench/mixed_load.py [--url URL | --models-dir DIR] [--url-b URL | --root-b DIR] ...

Open loop: requests arrive as a Poisson process at --rate requests/s for --duration seconds,
whatever the answers do (a slow server builds a queue, as with real clients). Each arrival is
one of these classes, drawn with these weights, the payloads built from --src sentences:

  plain         60%  one sentence, LibreTranslate /translate
  mastodon      20%  1-3 Mastodon-shaped HTML statuses (a mention link), source "auto",
                     format "html" (what Mastodon's LibreTranslate client sends)
  alternatives  10%  one sentence with alternatives: 2
  attention      5%  the page's /v1/translate with return_attention: true
  file           5%  a 5-20 KB .txt/.srt/.html file: /translate_file, then /download_file
                     (the server needs S2S_FILES_DIR; a started one gets a temporary folder)

Per class: latency p50/p95/p99 of the answers (200), status counts, goodput (200 answers within
the SLO per second: --slo-s, --file-slo-s for files), p99 latency of refusals (any other
status); the server's RSS (peak and last; known for a started server or with --server-pid);
and the machine (CPU model, AVX2/AVX-512 flags, threads, torch version).

Callers: by default every arrival comes from this machine's one address, so the server sees
one caller. --callers N sends each arrival as one of N clients (drawn with the seed, uniformly;
the classes, times and payloads stay those of one caller) by an X-Forwarded-For address
10.0.x.y; a started server trusts that header from 127.0.0.1 (S2S_FORWARDED_ALLOW_IPS), a
given --url must be told to.

A/B in one run: with a second server (--url-b, or --root-b / --python-b / --models-dir-b for
one this script starts from another checkout or interpreter), the same schedule (same seed:
same arrival times, classes and payloads) runs against A, B, A, B, ... (--rounds, default 2
each), so load on the machine drifts over both alike; results per server and per round.

--capacity-probe first finds the saturation rate of plain traffic quickly: plain-only Poisson
steps of --probe-step-s seconds from --probe-start rps, x1.5 per step, until p95 is over the
SLO, a refusal or error is over 1%, or fewer than 90% of the arrivals were answered in time.

Example (the lead's measurement; a started server on models/ holding de-en.pt):
  .venv/bin/python bench/mixed_load.py --models-dir models --capacity-probe \\
      --rate 8 --duration 60 --seed 1 --out bench/mixed_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
from bench_load import free_port, percentile, stop_server, wait_ready
from bench_train import machine_info

ROOT = Path(__file__).resolve().parent.parent
CLASSES = (("plain", 0.60), ("mastodon", 0.20), ("alternatives", 0.10), ("attention", 0.05),
           ("file", 0.05))
FILE_KINDS = (".txt", ".srt", ".html")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    default_src = Path(os.environ.get("S2S_DATA_DIR", "/work/shared/data")) / "multi30k" / \
        "test2016.de"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="server A, running (else started on --models-dir)")
    parser.add_argument("--models-dir", default="models", help="for a started server A")
    parser.add_argument("--python", default=sys.executable, help="interpreter of server A")
    parser.add_argument("--root", default=str(ROOT), help="checkout server A runs from")
    parser.add_argument("--url-b", help="server B, running")
    parser.add_argument("--models-dir-b", help="for a started server B (default: A's)")
    parser.add_argument("--python-b", help="interpreter of a started server B")
    parser.add_argument("--root-b", help="checkout a started server B runs from")
    parser.add_argument("--server-args", default="", help="extra s2s-serve options (both)")
    parser.add_argument("--server-args-b", help="extra s2s-serve options of B (default: A's)")
    parser.add_argument("--server-pid", type=int, help="PID of --url's server, for its RSS")
    parser.add_argument("--server-pid-b", type=int, help="PID of --url-b's server")
    parser.add_argument("--src", default=str(default_src), help="sentences, one per line")
    parser.add_argument("--pair", default="de-en", help="SRC-TGT")
    parser.add_argument("--rate", type=float, default=4.0, help="arrivals per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, help="runs per server (default: 2 with a B, "
                        "else 1)")
    parser.add_argument("--slo-s", type=float, default=1.5, help="SLO of requests, seconds")
    parser.add_argument("--file-slo-s", type=float, default=5.0, help="SLO of files")
    parser.add_argument("--capacity-probe", action="store_true",
                        help="first find the saturation rate of plain traffic")
    parser.add_argument("--probe-start", type=float, default=2.0, help="rps of the 1st step")
    parser.add_argument("--probe-step-s", type=float, default=4.0)
    parser.add_argument("--probe-steps", type=int, default=12, help="at most")
    parser.add_argument("--api-key")
    parser.add_argument("--callers", type=int, default=1,
                        help="client addresses the arrivals come from (X-Forwarded-For)")
    parser.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    parser.add_argument("--drain-s", type=float, default=30.0,
                        help="wait for answers after the last arrival, at most")
    parser.add_argument("--out", default="bench/mixed_load.json")
    return parser.parse_args(argv)


# --- the schedule -----------------------------------------------------------------------


@dataclass
class Arrival:
    at: float              # seconds after the run's start
    kind: str
    request: dict[str, Any]
    caller: int = 0        # which of --callers clients sends it


def mastodon_status(rng: random.Random, sentence: str) -> str:
    """A status as Mastodon renders it: a mention link, sometimes a hashtag or a break."""
    name = rng.choice(("anna", "ben", "carla", "dieter"))
    mention = (f'<span class="h-card"><a href="https://example.org/@{name}" '
               f'class="u-url mention">@<span>{name}</span></a></span>')
    body = f"<p>{mention} {sentence}</p>"
    if rng.random() < 0.3:
        body = body[:-4] + (' <a href="https://example.org/tags/reisen" class="mention hashtag" '
                            'rel="tag">#<span>reisen</span></a></p>')
    if rng.random() < 0.2:
        body += f"<p>{rng.choice(('Hallo', 'Danke'))}!<br>Bis bald.</p>"
    return body


def file_payload(rng: random.Random, sentences: list[str], number: int) -> tuple[str, bytes]:
    """A 5-20 KB .txt, .srt or .html file of source sentences."""
    kind = FILE_KINDS[number % len(FILE_KINDS)]
    size = rng.randint(5_000, 20_000)
    parts: list[str] = []
    used = 0
    cue = 0
    while used < size:
        group = " ".join(rng.choice(sentences) for _ in range(rng.randint(1, 4)))
        if kind == ".txt":
            part = group + ("\n\n" if rng.random() < 0.3 else "\n")
        elif kind == ".srt":
            cue += 1
            start = cue * 3
            part = (f"{cue}\n00:{start // 60:02d}:{start % 60:02d},000 --> "
                    f"00:{(start + 2) // 60:02d}:{(start + 2) % 60:02d},500\n"
                    f"{rng.choice(sentences)}\n\n")
        else:
            part = (f"<p>{group.replace(' ', ' <b>', 1)}</b> "
                    f'<a href="/x/{cue}">{rng.choice(sentences)}</a></p>\n')
            cue += 1
        parts.append(part)
        used += len(part.encode())
    text = "".join(parts)
    if kind == ".html":
        text = (f"<!DOCTYPE html>\n<html><head><title>{sentences[0]}</title></head>\n<body>\n"
                f"<h1>{rng.choice(sentences)}</h1>\n{text}</body></html>\n")
    return f"doc{number}{kind}", text.encode()


def schedule(rate: float, duration: float, seed: int, sentences: list[str], pair: str,
             only: str | None = None) -> list[Arrival]:
    """Poisson arrivals (exponential gaps) with their classes and payloads, from the seed."""
    rng = random.Random(seed)
    source, target = pair.split("-")
    kinds, weights = zip(*CLASSES)
    arrivals: list[Arrival] = []
    at = rng.expovariate(rate)
    while at < duration:
        kind = only or rng.choices(kinds, weights)[0]
        sentence = rng.choice(sentences)
        if kind == "plain":
            request = {"path": "/translate",
                       "json": {"q": sentence, "source": source, "target": target}}
        elif kind == "mastodon":
            statuses = [mastodon_status(rng, rng.choice(sentences))
                        for _ in range(rng.randint(1, 3))]
            request = {"path": "/translate", "json": {"q": statuses, "source": "auto",
                                                      "target": target, "format": "html"}}
        elif kind == "alternatives":
            request = {"path": "/translate", "json": {"q": sentence, "source": source,
                                                      "target": target, "alternatives": 2}}
        elif kind == "attention":
            request = {"path": "/v1/translate",
                       "json": {"texts": [sentence], "source": source, "target": target,
                                "return_attention": True}}
        else:
            name, data = file_payload(rng, sentences, len(arrivals))
            request = {"path": "/translate_file", "file": (name, data),
                       "fields": {"source": source, "target": target}}
        arrivals.append(Arrival(at, kind, request))
        at += rng.expovariate(rate)
    return arrivals


def assign_callers(arrivals: list[Arrival], callers: int, seed: int) -> None:
    """Each arrival's client, uniform over ``callers``, drawn from a generator of its own so
    the times, classes and payloads stay those of the one-caller schedule."""
    rng = random.Random(f"callers-{seed}")
    for arrival in arrivals:
        arrival.caller = rng.randrange(callers) if callers > 1 else 0


def caller_address(caller: int) -> str:
    return f"10.0.{caller // 250}.{caller % 250 + 1}"


# --- running it ---------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str
    status: str
    latency: float
    late_start: float     # how late the client sent it (its own lag), seconds


async def send(http: aiohttp.ClientSession, base: str, arrival: Arrival,
               api_key: str | None, callers: int = 1) -> str:
    """One request (for a file: the upload and the download); its final status. With more
    than one caller, the arrival's client address goes in X-Forwarded-For."""
    request = arrival.request
    headers = {"X-Forwarded-For": caller_address(arrival.caller)} if callers > 1 else {}
    if "file" in request:
        form = aiohttp.FormData()
        name, data = request["file"]
        form.add_field("file", data, filename=name, content_type="application/octet-stream")
        for key, value in request["fields"].items():
            form.add_field(key, value)
        if api_key:
            form.add_field("api_key", api_key)
        async with http.post(base + request["path"], data=form, headers=headers) as response:
            answer = await response.read()
            if response.status != 200:
                return str(response.status)
        url = json.loads(answer)["translatedFileUrl"]
        async with http.get(urljoin(base + "/", url), headers=headers) as response:
            await response.read()
            return str(response.status)
    body = dict(request["json"])
    if api_key:
        body["api_key"] = api_key
    async with http.post(base + request["path"], json=body, headers=headers) as response:
        await response.read()
        return str(response.status)


class RssSampler:
    """Peak and last RSS (MiB) of a process from /proc, sampled every 0.25 s."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.peak = self.last = None

    def read(self) -> float | None:
        if self.pid is None:
            return None
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    async def run(self) -> None:
        while True:
            value = self.read()
            if value is not None:
                self.last = value
                self.peak = value if self.peak is None else max(self.peak, value)
            await asyncio.sleep(0.25)


async def run_schedule(base: str, arrivals: list[Arrival], args: argparse.Namespace,
                       pid: int | None) -> tuple[list[Outcome], dict[str, Any]]:
    """Send every arrival at its time (open loop) and wait for the answers."""
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    outcomes: list[Outcome] = []
    sampler = RssSampler(pid)
    rss_before = sampler.read()
    sampling = asyncio.ensure_future(sampler.run())
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def one(arrival: Arrival) -> None:
            late = loop.time() - started - arrival.at
            begin = time.perf_counter()
            try:
                status = await send(http, base, arrival, args.api_key, args.callers)
            except TimeoutError:
                status = "timeout"
            except (aiohttp.ClientError, OSError, ValueError, KeyError) as error:
                status = type(error).__name__
            outcomes.append(Outcome(arrival.kind, status, time.perf_counter() - begin, late))

        tasks = []
        for arrival in arrivals:
            delay = started + arrival.at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(arrival)))
        sent_for = loop.time() - started
        done, pending = await asyncio.wait(tasks, timeout=args.drain_s) if tasks else ((), ())
        for task in pending:
            task.cancel()
        unanswered = len(pending)
    sampling.cancel()
    return outcomes, {"sent_for_s": round(sent_for, 2), "unanswered_at_drain": unanswered,
                      "rss_mib": {"before": rss(rss_before), "peak": rss(sampler.peak),
                                  "last": rss(sampler.last)}}


def rss(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def milliseconds(values: list[float]) -> dict[str, float | None]:
    values = sorted(values)
    return {f"p{q}": None if (v := percentile(values, q)) is None else round(v * 1000, 1)
            for q in (50, 95, 99)}


def summarize(outcomes: list[Outcome], duration: float, args: argparse.Namespace
              ) -> dict[str, Any]:
    """Per class and in all: latency of answers, statuses, goodput, refusal latency."""
    classes: dict[str, Any] = {}
    for kind in [name for name, _ in CLASSES] + ["all"]:
        mine = [o for o in outcomes if kind in ("all", o.kind)]
        if not mine:
            continue
        slo = {o.kind: args.file_slo_s if o.kind == "file" else args.slo_s for o in mine}
        answered = [o.latency for o in mine if o.status == "200"]
        refused = [o.latency for o in mine if o.status != "200"]
        statuses: dict[str, int] = {}
        for o in mine:
            statuses[o.status] = statuses.get(o.status, 0) + 1
        good = sum(1 for o in mine if o.status == "200" and o.latency <= slo[o.kind])
        classes[kind] = {
            "requests": len(mine), "statuses": dict(sorted(statuses.items())),
            "latency_ms": milliseconds(answered),
            "goodput_per_s": round(good / duration, 3),
            "within_slo": round(good / len(mine), 4),
            "refusal_latency_ms_p99": milliseconds(refused)["p99"],
            "client_lag_ms_p99": milliseconds([o.late_start for o in mine])["p99"],
        }
    return classes


# --- servers ------------------------------------------------------------------------------


@dataclass
class Server:
    label: str
    url: str
    pid: int | None = None
    process: subprocess.Popen | None = None
    files_dir: tempfile.TemporaryDirectory | None = None
    command: list[str] = field(default_factory=list)


def start_server(label: str, python: str, root: str, models_dir: str, extra: str,
                 trust_forwarded: bool = False) -> Server:
    """s2s-serve from a checkout (cwd root) with a temporary files folder, once /ready;
    ``trust_forwarded``: X-Forwarded-For from 127.0.0.1 names the client."""
    port = free_port()
    files_dir = tempfile.TemporaryDirectory(prefix=f"mixed_load_{label}_")
    command = [python, "-m", "scripts.serve", "--models-dir", str(Path(models_dir).resolve()),
               "--port", str(port), "--host", "127.0.0.1", *shlex.split(extra)]
    env = {**os.environ, "S2S_LOG_LEVEL": "warning", "S2S_FILES_DIR": files_dir.name,
           "PYTHONPATH": str(Path(root).resolve())}
    if trust_forwarded:
        env["S2S_FORWARDED_ALLOW_IPS"] = "127.0.0.1"
    process = subprocess.Popen(command, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    wait_ready(process, url)
    return Server(label, url, process.pid, process, files_dir, command)


def stop(server: Server) -> None:
    """Stop a server this script started and remove its files folder (a given URL: nothing)."""
    if server.process is not None:
        stop_server(server.process)
    if server.files_dir is not None:
        server.files_dir.cleanup()


def servers_of(args: argparse.Namespace) -> list[Server]:
    trust = args.callers > 1
    servers = [Server("A", args.url.rstrip("/"), args.server_pid) if args.url else
               start_server("A", args.python, args.root, args.models_dir, args.server_args,
                            trust)]
    if args.url_b:
        servers.append(Server("B", args.url_b.rstrip("/"), args.server_pid_b))
    elif args.root_b or args.python_b or args.models_dir_b or args.server_args_b is not None:
        servers.append(start_server(
            "B", args.python_b or args.python, args.root_b or args.root,
            args.models_dir_b or args.models_dir,
            args.server_args if args.server_args_b is None else args.server_args_b, trust))
    return servers


# --- capacity probe -----------------------------------------------------------------------


async def capacity_probe(server: Server, sentences: list[str], args: argparse.Namespace
                         ) -> dict[str, Any]:
    """Plain-only steps at rising rates until the server saturates."""
    steps = []
    rate = args.probe_start
    good_rate = None
    for step in range(args.probe_steps):
        arrivals = schedule(rate, args.probe_step_s, args.seed + 1000 + step, sentences,
                            args.pair, only="plain")
        outcomes, _ = await run_schedule(server.url, arrivals, args, server.pid)
        summary = summarize(outcomes, args.probe_step_s, args)["plain"]
        offered = len(arrivals)
        p95 = summary["latency_ms"]["p95"]
        refused = offered - summary["statuses"].get("200", 0)
        saturated = (p95 is None or p95 > args.slo_s * 1000 or refused > 0.01 * offered
                     or summary["within_slo"] < 0.9)
        steps.append({"rate": round(rate, 2), "offered": offered, "p95_ms": p95,
                      "not_200": refused, "within_slo": summary["within_slo"],
                      "saturated": saturated})
        print(f"  probe {server.label}: {rate:6.1f} rps  p95 {p95} ms  not 200: {refused}  "
              f"within SLO {summary['within_slo']:.2f}{'  saturated' if saturated else ''}",
              flush=True)
        if saturated:
            break
        good_rate = rate
        rate *= 1.5
    return {"last_good_rps": None if good_rate is None else round(good_rate, 2),
            "saturated_at_rps": round(rate, 2) if steps and steps[-1]["saturated"] else None,
            "steps": steps}


# --- main ---------------------------------------------------------------------------------


def print_summary(label: str, run: int, classes: dict[str, Any], extra: dict[str, Any]) -> None:
    for kind, row in classes.items():
        latency = row["latency_ms"]
        print(f"  {label} run {run} {kind:>12}: n {row['requests']:>4}  p50 {latency['p50']} "
              f"p95 {latency['p95']} p99 {latency['p99']} ms  goodput {row['goodput_per_s']}/s"
              f"  statuses {row['statuses']}  refusal p99 {row['refusal_latency_ms_p99']} ms")
    print(f"  {label} run {run} rss MiB {extra['rss_mib']}  unanswered at drain "
          f"{extra['unanswered_at_drain']}", flush=True)


async def main_async(args: argparse.Namespace, servers: list[Server], sentences: list[str]
                     ) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine_info(), "args": vars(args), "classes": dict(
        CLASSES), "slo_s": {"requests": args.slo_s, "files": args.file_slo_s},
        "servers": {s.label: {"url": s.url, "command": s.command or None} for s in servers}}
    if args.capacity_probe:
        result["capacity_probe"] = {}
        for server in servers:
            result["capacity_probe"][server.label] = await capacity_probe(server, sentences, args)
    arrivals = schedule(args.rate, args.duration, args.seed, sentences, args.pair)
    assign_callers(arrivals, args.callers, args.seed)
    counts: dict[str, int] = {}
    for arrival in arrivals:
        counts[arrival.kind] = counts.get(arrival.kind, 0) + 1
    result["schedule"] = {"arrivals": len(arrivals), "by_class": counts,
                          "callers": len({arrival.caller for arrival in arrivals})}
    rounds = args.rounds or (2 if len(servers) > 1 else 1)
    runs: list[dict[str, Any]] = []
    every: dict[str, list[Outcome]] = {s.label: [] for s in servers}
    for number in range(rounds):
        for server in servers:
            outcomes, extra = await run_schedule(server.url, arrivals, args, server.pid)
            classes = summarize(outcomes, args.duration, args)
            print_summary(server.label, number + 1, classes, extra)
            runs.append({"server": server.label, "round": number + 1, **extra,
                         "classes": classes})
            every[server.label] += outcomes
    result["runs"] = runs
    result["by_server"] = {
        label: {"classes": summarize(outcomes, args.duration * rounds, args),
                "rss_mib_peak": max((r["rss_mib"]["peak"] or 0 for r in runs
                                     if r["server"] == label), default=None) or None}
        for label, outcomes in every.items()}
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sentences = [line.strip() for line in Path(args.src).read_text(encoding="utf-8")
                 .splitlines() if line.strip()]
    if not sentences:
        raise SystemExit(f"error: no sentences in {args.src}")
    servers = servers_of(args)
    try:
        result = asyncio.run(main_async(args, servers, sentences))
    finally:
        for server in servers:
            stop(server)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
