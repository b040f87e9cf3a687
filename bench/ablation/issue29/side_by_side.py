#!/usr/bin/env python3
"""Sentences where two systems' translations differ, side by side, as a Markdown table.

    python bench/ablation/issue29/side_by_side.py --src test2016.de --ref test2016.en \
        --a reference=ref.hyp --b new=new.hyp -n 10

Of the lines where the two translations differ, n are taken evenly spaced through the file (no
choosing by hand); each row has the source, the reference, both translations and each one's
sentence chrF against the reference. The last line counts the differing lines and how many of
them each system scores higher on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sacrebleu.metrics import CHRF


def named_file(text: str) -> tuple[str, list[str]]:
    name, _, path = text.partition("=")
    return name, Path(path).read_text(encoding="utf-8").splitlines()


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--ref", type=Path, required=True)
    parser.add_argument("--a", type=named_file, required=True, help="NAME=FILE")
    parser.add_argument("--b", type=named_file, required=True, help="NAME=FILE")
    parser.add_argument("-n", type=int, default=10)
    args = parser.parse_args()
    sources = args.src.read_text(encoding="utf-8").splitlines()
    refs = args.ref.read_text(encoding="utf-8").splitlines()
    (name_a, hyps_a), (name_b, hyps_b) = args.a, args.b
    if not len(sources) == len(refs) == len(hyps_a) == len(hyps_b):
        raise SystemExit("the four files differ in length")
    chrf = CHRF()
    differ = [i for i in range(len(refs)) if hyps_a[i] != hyps_b[i]]
    chrf_a = {i: chrf.sentence_score(hyps_a[i], [refs[i]]).score for i in differ}
    chrf_b = {i: chrf.sentence_score(hyps_b[i], [refs[i]]).score for i in differ}
    picks = [differ[k * len(differ) // args.n] for k in range(min(args.n, len(differ)))]
    print(f"| line | source | reference | {name_a} (chrF) | {name_b} (chrF) |")
    print("|---|---|---|---|---|")
    for i in picks:
        print(f"| {i + 1} | {cell(sources[i])} | {cell(refs[i])} | "
              f"{cell(hyps_a[i])} ({chrf_a[i]:.1f}) | {cell(hyps_b[i])} ({chrf_b[i]:.1f}) |")
    better_a = sum(chrf_a[i] > chrf_b[i] for i in differ)
    better_b = sum(chrf_b[i] > chrf_a[i] for i in differ)
    print(f"\n{len(differ)} of {len(refs)} lines differ; sentence chrF higher for {name_a} on "
          f"{better_a}, for {name_b} on {better_b}.")


if __name__ == "__main__":
    main()
