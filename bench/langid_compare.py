#!/usr/bin/env python3
"""Language-identification libraries on Multi30k de/en/fr: bench/langid_compare.py --out FILE

bench/langid_compare.py [--data-dir DIR] [--variants NAME ...] [--out bench/langid_compare.json]
Candidates whose models ship inside their wheels (lingua-language-detector, py3langid, pycld2),
each restricted to the candidate languages {de, en, fr} the library's own way (lingua
from_languages, py3langid set_languages; pycld2 has no restriction, so the best of its ranked
results that is a candidate counts, or the text counts wrong). For every variant: accuracy on
test2016 full sentences and on their 1-, 2- and 3-word prefixes, per language and overall;
single-threaded latency per text (median and p95 in microseconds, after a warm-up); the time to
import and build the detector and answer its first text; the RSS growth (MiB) that costs; and
how it gives a confidence per candidate (for LibreTranslate's /detect answer). Each variant
runs in its own child process (--worker NAME), so the memory figures do not mix.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench_train import machine_info

ROOT = Path(__file__).resolve().parent.parent
LANGS = ("de", "en", "fr")
CONDITIONS = ("full", "1", "2", "3")  # full sentence, then 1-, 2- and 3-word prefixes
WARMUP_PER_CONDITION = 100
SINGLE_THREAD_ENV = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                            "MKL_NUM_THREADS", "RAYON_NUM_THREADS")}

Detect = Callable[[str], str | None]
Confidences = Callable[[str], list[tuple[str, float]]]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    default_dir = Path(os.environ.get("S2S_DATA_DIR", ROOT / "data")) / "multi30k"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(default_dir),
                        help="folder with test2016.{de,en,fr}, line-aligned")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", default="bench/langid_compare.json")
    parser.add_argument("--worker", choices=list(VARIANTS), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def rss_mib() -> float:
    """Current resident set size of this process, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


# ---- the variants: each builder imports its library, builds the detector restricted to
# ---- LANGS and returns (detect, confidences, notes). Both callables take one str.

def build_lingua(preload: bool = False, low_accuracy: bool = False):
    from lingua import Language, LanguageDetectorBuilder

    builder = LanguageDetectorBuilder.from_languages(Language.GERMAN, Language.ENGLISH,
                                                     Language.FRENCH)
    if preload:
        builder = builder.with_preloaded_language_models()
    if low_accuracy:
        builder = builder.with_low_accuracy_mode()
    detector = builder.build()

    def code(language) -> str:
        return language.iso_code_639_1.name.lower()

    def detect(text: str) -> str | None:
        language = detector.detect_language_of(text)
        return None if language is None else code(language)

    def confidences(text: str) -> list[tuple[str, float]]:
        return [(code(c.language), c.value)
                for c in detector.compute_language_confidence_values(text)]

    notes = ("confidences: detector.compute_language_confidence_values(text) -> list of "
             "ConfidenceValue(language, value), best first, one per configured language, "
             "values sum to 1 (all 0 when no letters); detect_language_of returns None when "
             "undecidable (counted wrong)")
    return detect, confidences, notes


def build_py3langid():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LANGS))

    def detect(text: str) -> str | None:
        return identifier.classify(text)[0]

    def confidences(text: str) -> list[tuple[str, float]]:
        return [(lang, float(p)) for lang, p in identifier.rank(text)]

    notes = ("LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True) then "
             "set_languages([...]); confidences: identifier.rank(text) -> [(code, prob)], best "
             "first, softmax over the restricted set (sums to 1); classify(text) -> (code, prob)")
    return detect, confidences, notes


def build_pycld2(best_effort: bool = True, hint: bool = False):
    import pycld2

    options: dict[str, object] = {"isPlainText": True, "bestEffort": best_effort}
    if hint:
        options["hintLanguageHTTPHeaders"] = ",".join(LANGS)

    def confidences(text: str) -> list[tuple[str, float]]:
        details = pycld2.detect(text, **options)[2]
        ranked = [(c, percent / 100) for _, c, percent, _ in details if c in LANGS]
        return ranked

    def detect(text: str) -> str | None:
        ranked = confidences(text)
        return ranked[0][0] if ranked else None

    notes = ("no restriction: best of detect()'s ranked details (up to 3) that is a candidate, "
             "else wrong; 'confidence' is only the percent of text bytes per language "
             "(details: (name, code, percent, score)), not a probability, and candidates "
             "outside its top 3 get none; isPlainText=True, "
             f"bestEffort={best_effort}" + (", hintLanguageHTTPHeaders='de,en,fr'" if hint
                                            else ""))
    return detect, confidences, notes


VARIANTS: dict[str, tuple[str, Callable[[], tuple[Detect, Confidences, str]]]] = {
    "lingua": ("lingua-language-detector", lambda: build_lingua()),
    "lingua-preloaded": ("lingua-language-detector", lambda: build_lingua(preload=True)),
    "lingua-low-accuracy": ("lingua-language-detector",
                            lambda: build_lingua(low_accuracy=True)),
    "py3langid": ("py3langid", build_py3langid),
    "pycld2": ("pycld2", lambda: build_pycld2()),
    "pycld2-hint": ("pycld2", lambda: build_pycld2(hint=True)),
    "pycld2-no-best-effort": ("pycld2", lambda: build_pycld2(best_effort=False)),
}


# ---- data and measurement

def load_texts(data_dir: Path) -> dict[str, list[tuple[str, str]]]:
    """Per condition: (gold language, text), the languages interleaved line by line."""
    lines = {lang: (data_dir / f"test2016.{lang}").read_text(encoding="utf-8").splitlines()
             for lang in LANGS}
    if len({len(v) for v in lines.values()}) != 1:
        raise SystemExit(f"{data_dir}: test2016.{{de,en,fr}} are not line-aligned")
    texts: dict[str, list[tuple[str, str]]] = {c: [] for c in CONDITIONS}
    for row in zip(*(lines[lang] for lang in LANGS)):
        for lang, line in zip(LANGS, row):
            words = line.split()
            texts["full"].append((lang, line.strip()))
            for n in (1, 2, 3):
                texts[str(n)].append((lang, " ".join(words[:n])))
    return texts


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_summary(ns: list[int]) -> dict[str, float]:
    us = [v / 1000 for v in ns]
    return {"median_us": round(statistics.median(us), 1),
            "p95_us": round(percentile(us, 0.95), 1), "mean_us": round(statistics.fmean(us), 1)}


def run_worker(name: str, data_dir: Path) -> dict:
    """Build one variant in this process and measure it; returns the figures."""
    dist, build = VARIANTS[name]
    texts = load_texts(data_dir)
    rss_before = rss_mib()
    started = time.perf_counter()
    detect, confidences, notes = build()
    build_s = time.perf_counter() - started
    rss_built = rss_mib()
    started = time.perf_counter()
    detect(texts["full"][0][1])
    first_call_s = time.perf_counter() - started
    for condition in CONDITIONS:  # warm-up: every condition, so lazy models are in
        for _, text in texts[condition][:WARMUP_PER_CONDITION]:
            detect(text)
            confidences(text)
    rss_warm = rss_mib()

    accuracy, latency, confidence_latency, confusion, agreement = {}, {}, {}, {}, {}
    accuracy_distinct = {}
    for condition in CONDITIONS:
        correct, total = Counter(), Counter()
        distinct: dict[tuple[str, str], bool] = {}
        pairs: Counter = Counter()
        detect_ns, confidence_ns = [], []
        agree = 0
        for gold, text in texts[condition]:
            t0 = time.perf_counter_ns()
            predicted = detect(text)
            t1 = time.perf_counter_ns()
            ranked = confidences(text)
            t2 = time.perf_counter_ns()
            detect_ns.append(t1 - t0)
            confidence_ns.append(t2 - t1)
            total[gold] += 1
            correct[gold] += predicted == gold
            pairs[f"{gold}->{predicted}"] += 1
            distinct[gold, text] = predicted == gold
            agree += (ranked[0][0] if ranked and ranked[0][1] > 0 else None) == predicted
        table = {lang: round(correct[lang] / total[lang], 4) for lang in LANGS}
        table["all"] = round(sum(correct.values()) / sum(total.values()), 4)
        accuracy[condition] = table
        by_type = {lang: [ok for (g, _), ok in distinct.items() if g == lang] for lang in LANGS}
        accuracy_distinct[condition] = {lang: round(sum(v) / len(v), 4)
                                        for lang, v in by_type.items()}
        accuracy_distinct[condition]["all"] = round(sum(distinct.values()) / len(distinct), 4)
        latency[condition] = latency_summary(detect_ns)
        confidence_latency[condition] = latency_summary(confidence_ns)
        confusion[condition] = {k: v for k, v in sorted(pairs.items()) if v}
        agreement[condition] = round(agree / len(texts[condition]), 4)

    return {"variant": name, "package": dist, "version": importlib.metadata.version(dist),
            "accuracy": accuracy, "accuracy_distinct_texts": accuracy_distinct,
            "latency_detect": latency,
            "latency_confidences": confidence_latency,
            "confidence_top1_agrees_with_detect": agreement,
            "build_s": round(build_s, 3), "first_call_s": round(first_call_s, 4),
            "ready_s": round(build_s + first_call_s, 3),
            "rss_growth_mib": {"after_build": round(rss_built - rss_before, 1),
                               "after_warmup": round(rss_warm - rss_before, 1),
                               "after_all": round(rss_mib() - rss_before, 1)},
            "confusion": confusion, "notes": notes,
            "example_confidences": {text: confidences(text)
                                    for text in ("Ein Mann", "A man", "Un homme", "Hallo")}}


def run_variant(name: str, data_dir: Path) -> dict:
    env = {**os.environ, **SINGLE_THREAD_ENV}
    command = [sys.executable, __file__, "--worker", name, "--data-dir", str(data_dir)]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        print(completed.stderr, file=sys.stderr)
        return {"variant": name, "package": VARIANTS[name][0], "error": completed.stderr[-2000:]}
    return json.loads(completed.stdout.splitlines()[-1])


def distinct_prefixes(data_dir: Path) -> dict[str, dict[str, int]]:
    texts = load_texts(data_dir)
    return {c: {lang: len({t for g, t in texts[c] if g == lang}) for lang in LANGS}
            for c in ("1", "2", "3")}


def markdown(rows: list[dict]) -> str:
    lines = ["| library | full | 1 word | 2 words | 3 words | median µs | p95 µs | build s "
             "| RSS MiB |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['variant']} | failed: see JSON | | | | | | | |")
            continue
        acc = [f"{100 * row['accuracy'][c]['all']:.1f}%" for c in CONDITIONS]
        lat = row["latency_detect"]["full"]
        lines.append(f"| {row['variant']} {row['version']} | {' | '.join(acc)} | "
                     f"{lat['median_us']:.0f} | {lat['p95_us']:.0f} | {row['ready_s']:.2f} | "
                     f"{row['rss_growth_mib']['after_all']:.1f} |")
    return "\n".join(lines)


def per_language(rows: list[dict], key: str = "accuracy") -> str:
    head = " | ".join(f"{c} {lang}" for c in CONDITIONS for lang in LANGS)
    lines = [f"| library | {head} | 1 all | 2 all | 3 all |",
             "|---|" + "---:|" * (len(CONDITIONS) * len(LANGS) + 3)]
    for row in rows:
        if "error" not in row:
            cells = " | ".join(f"{100 * row[key][c][lang]:.1f}" for c in CONDITIONS
                               for lang in LANGS)
            lines.append(f"| {row['variant']} | {cells} | {100 * row[key]['1']['all']:.1f} | "
                         f"{100 * row[key]['2']['all']:.1f} | {100 * row[key]['3']['all']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_dir = Path(args.data_dir)
    if args.worker:
        print(json.dumps(run_worker(args.worker, data_dir)))
        return 0
    rows = []
    for name in args.variants:
        print(f"measuring {name} ...", flush=True)
        rows.append(run_variant(name, data_dir))
    result = {"data_dir": str(data_dir), "languages": list(LANGS),
              "texts_per_condition": len(load_texts(data_dir)["full"]),
              "distinct_prefixes": distinct_prefixes(data_dir),
              "conditions": {"full": "whole sentence", "1": "first word", "2": "first 2 words",
                             "3": "first 3 words (split on whitespace)"},
              "method": ("one child process per variant, OMP/OPENBLAS/MKL/RAYON threads = 1; "
                         f"warm-up {WARMUP_PER_CONDITION} texts per condition; every text of "
                         "every condition timed with perf_counter_ns around the top-1 call and "
                         "separately around the confidences call; build s = import + build + "
                         "first detection (lazy models load there); RSS MiB = VmRSS growth from "
                         "before the import to after all texts"),
              "excluded": {"fasttext-langdetect": (
                  "1.1.1 wheel is 12 kB with no model inside; ftlangdetect/detect.py downloads "
                  "lid.176.ftz/.bin from dl.fbaipublicfiles.com at run time (cache in $TMP or "
                  "$FTLANG_CACHE)")},
              "machine": machine_info(), "variants": rows}
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n",
                              encoding="utf-8")
    print(markdown(rows))
    print("\naccuracy % per language (condition language):")
    print(per_language(rows))
    print("\nthe same over distinct texts only (each prefix counted once; 1-word prefixes are "
          "mostly articles such as A, Ein, Un):")
    print(per_language(rows, key="accuracy_distinct_texts"))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
