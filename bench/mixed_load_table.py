#!/usr/bin/env python3
"""The mixed-load records as one Markdown table: bench/mixed_load_table.py RECORD.json ...

Per record (one arrival rate, servers A and B interleaved over rounds) and class: p99 latency
of the answers per round, goodput per second per round, and the statuses summed over rounds.
Writes the table to stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def cell(runs: list[dict], name: str) -> tuple[str, str, str]:
    p99 = " / ".join(f"{run['classes'][name]['latency_ms']['p99'] / 1000:.2f}"
                     if run["classes"][name]["latency_ms"]["p99"] is not None else "-"
                     for run in runs)
    goodput = " / ".join(f"{run['classes'][name]['goodput_per_s']:.2f}" for run in runs)
    statuses: dict[str, int] = {}
    for run in runs:
        for status, count in run["classes"][name]["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    return p99, goodput, ", ".join(f"{s}: {c}" for s, c in sorted(statuses.items()))


def main(paths: list[str]) -> None:
    print("| rate | class | A p99 s | B p99 s | A goodput/s | B goodput/s | A statuses | "
          "B statuses |")
    print("|---|---|---|---|---|---|---|---|")
    for path in paths:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        by_server = {label: [run for run in record["runs"] if run["server"] == label]
                     for label in ("A", "B")}
        for name in record["runs"][0]["classes"]:
            a, b = cell(by_server["A"], name), cell(by_server["B"], name)
            print(f"| {record['args']['rate']:g}/s | {name} | {a[0]} | {b[0]} | {a[1]} | "
                  f"{b[1]} | {a[2]} | {b[2]} |")


if __name__ == "__main__":
    main(sys.argv[1:])
