#!/usr/bin/env python3
"""The issue-29 ablation table from run_gpu.sh's results (this folder): per run the lever, the
steps it reached, its best greedy validation BLEU during training, and validation BLEU/chrF with
beam 5 of its best.pt and of the average of its last three states; then the ensembles.

    python bench/ablation/issue29/table.py > bench/ablation/issue29/table.md
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
LEVERS = {
    "ref_s1": "reference recipe, seed 1",
    "ref_s2": "reference recipe, seed 2",
    "ref_s3": "reference recipe, seed 3",
    "big": "capacity: emb 512, hidden 768/768 (24.0M parameters)",
    "big_d4": "capacity as above, dropout 0.4",
    "tatoeba": "more data: + Tatoeba deu-eng, sampled 1:1",
    "fr_de_en": "more data: + Multi30k French->English (many-to-one), 1:1",
    "kd_de_only": "distillation: student on the 3-seed teacher's beam-5 output only",
    "ende_s1": "en->de reference recipe, seed 1",
    "ende_s2": "en->de reference recipe, seed 2",
    "ende_s3": "en->de reference recipe, seed 3",
}


def val(label: str) -> str:
    path = HERE / "val" / f"{label}.json"
    if not path.exists():
        return "not scored"
    scores = json.loads(path.read_text())
    return f"{scores['bleu']:.2f} / {scores['chrf']:.2f}"


def main() -> None:
    print("| run | lever | steps | best greedy val BLEU (step) | val beam 5 best.pt | "
          "val beam 5 avg last 3 |")
    print("|---|---|---|---|---|---|")
    for run, lever in LEVERS.items():
        rows = [json.loads(line) for line in (HERE / "metrics" / f"{run}.jsonl").open()]
        steps = max(r["step"] for r in rows if r["kind"] == "train")
        valid = [r for r in rows if r["kind"] == "valid"]
        best = max(valid, key=lambda r: r["bleu"])
        print(f"| {run} | {lever} | {steps} | {best['bleu']:.2f} ({best['step']}) | "
              f"{val(run + '.best')} | {val(run + '.avg')} |")
    print()
    print("| ensemble | val beam 5 BLEU / chrF |")
    print("|---|---|")
    print(f"| de->en, ref_s1-3 (averaged states) | {val('ens_ref_avg')} |")
    print(f"| en->de, ende_s1-3 (averaged states) | {val('ens_ende_avg')} |")


if __name__ == "__main__":
    main()
