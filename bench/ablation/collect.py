#!/usr/bin/env python3
"""Collect the Multi30k de-en ablation into one JSON Lines file: every project run's greedy
validation BLEU/chrF per 200 steps (its metrics.jsonl), and the evaluation lines that
eval_project.sh / eval_onmt.sh printed (greedy and beam 5, validation and test2016).

    python bench/ablation/collect.py --run NAME=RUN_DIR ... --evals FILE ... --out F
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], metavar="NAME=RUN_DIR")
    parser.add_argument("--evals", action="append", default=[], type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = []
    for item in args.run:
        name, folder = item.split("=", 1)
        for line in (Path(folder) / "metrics.jsonl").read_text().splitlines():
            record = json.loads(line)
            if record.get("kind") == "valid":
                rows.append({"system": name, "split": "val", "step": record["step"], "beam": 1,
                             "bleu": round(record["bleu"], 2), "chrf": round(record["chrf"], 2),
                             "source": "training validation (greedy)"})
    for path in args.evals:
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    args.out.write_text("".join(json.dumps(row) + "\n" for row in rows))


if __name__ == "__main__":
    main()
