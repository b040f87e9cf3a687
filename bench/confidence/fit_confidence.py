#!/usr/bin/env python3
"""Fit the confidence calibration on a validation set and measure it on a test set.

    python bench/confidence/fit_confidence.py MODEL.pt --data DIR --src de --tgt en \
        [--valid val --test test2016] [--beam 5] [--out bench/confidence/DIR]

Translates both splits, takes each sentence's mean log-probability per token (the library's
feature, s2s.inference.confidence) and its sentence chrF against the reference; fits the
one-feature logistic curve for "chrF >= 40" on the validation split; reports on the test split
the ROC AUC at flagging the sentences with chrF < 40, the calibration table (predicted against
observed, in deciles) and a picture of it. Writes results.json and calibration.png.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import sacrebleu
import torch

from s2s.inference.confidence import Calibration, mean_log_prob
from s2s.inference.search import SearchOptions
from s2s.inference.translator import TranslateOptions, Translator

USABLE_CHRF = 40.0


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def features(translator: Translator, sources: list[str], beam: int
             ) -> tuple[list[str], np.ndarray]:
    options = TranslateOptions(search=SearchOptions(beam_size=beam))
    results = translator.translate(sources, options)
    feats = np.array([mean_log_prob(r.score, len(r.tokens)) for r in results])
    return [r.text for r in results], feats


def chrf_per_sentence(outputs: list[str], references: list[str]) -> np.ndarray:
    return np.array([sacrebleu.sentence_chrf(o, [r]).score for o, r in zip(outputs, references)])


def fit_logistic(x: np.ndarray, y: np.ndarray, steps: int = 50) -> Calibration:
    """Newton's method for p = sigmoid(a x + b), with a tiny ridge for stability."""
    a, b = 1.0, 0.0
    design = np.stack([x, np.ones_like(x)], axis=1)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(design @ np.array([a, b]))))
        gradient = design.T @ (p - y) + 1e-6 * np.array([a, b])
        hessian = (design * (p * (1 - p))[:, None]).T @ design + 1e-6 * np.eye(2)
        a, b = np.array([a, b]) - np.linalg.solve(hessian, gradient)
    return Calibration(float(a), float(b))


def roc_auc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties: half)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def calibration_table(predicted: np.ndarray, usable: np.ndarray, bins: int = 10) -> list[dict]:
    edges = np.quantile(predicted, np.linspace(0, 1, bins + 1))
    table = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (predicted >= lo) & (predicted <= hi)
        if inside.any():
            table.append({"predicted": float(predicted[inside].mean()),
                          "observed": float(usable[inside].mean() * 100), "n": int(inside.sum())})
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", type=Path, required=True, help="corpus folder (split.lang)")
    parser.add_argument("--src", required=True)
    parser.add_argument("--tgt", required=True)
    parser.add_argument("--valid", default="val")
    parser.add_argument("--test", default="test2016")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench/confidence"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    translator = Translator.from_file(args.model)
    started = time.perf_counter()
    split = {}
    for name in (args.valid, args.test):
        sources = read_lines(args.data / f"{name}.{args.src}")
        references = read_lines(args.data / f"{name}.{args.tgt}")
        outputs, feats = features(translator, sources, args.beam)
        split[name] = (feats, chrf_per_sentence(outputs, references) >= USABLE_CHRF)
    calibration = fit_logistic(*split[args.valid])
    feats, usable = split[args.test]
    predicted = 100 / (1 + np.exp(-(calibration.slope * feats + calibration.intercept)))
    auc = roc_auc(-predicted, ~usable)       # low confidence flags chrF < 40
    table = calibration_table(predicted, usable)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"model": str(args.model), "beam": args.beam, "valid": args.valid,
              "test": args.test, "usable_chrf": USABLE_CHRF,
              "calibration": {"slope": calibration.slope, "intercept": calibration.intercept},
              "test_sentences": int(len(feats)), "test_below_40": int((~usable).sum()),
              "roc_auc_flagging_below_40": auc, "calibration_table": table,
              "seconds": round(time.perf_counter() - started, 1),
              "torch": torch.__version__, "threads": args.threads}
    (args.out / "results.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(table, auc, args.out / "calibration.png")
    print(json.dumps({k: v for k, v in report.items() if k != "calibration_table"}, indent=1))


def plot(table: list[dict], auc: float, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 100], [0, 100], color="grey", linestyle="--", label="perfect calibration")
    axis.plot([row["predicted"] for row in table], [row["observed"] for row in table],
              marker="o", label=f"test2016 deciles (ROC AUC {auc:.3f})")
    axis.set_xlabel("confidence (predicted % usable)")
    axis.set_ylabel("observed % with sentence chrF >= 40")
    axis.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
