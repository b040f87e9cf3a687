#!/usr/bin/env python3
"""Per-domain evaluation: every model on every domain's held-out test, one table.

bench/corpora/eval_domains.py --model captions=models_ref/de-en.pt \\
    --model multidomain=runs/x/best.pt --pair de-en --data $S2S_DATA_DIR \\
    --corpora $S2S_CORPORA_DIR --out bench/corpora/eval_de_en.json [--max-lines 500]

Domains (each skipped when its files are missing): Multi30k test2016 (captions), the held-out
Tatoeba test (s2s-download-data --corpus tatoeba: no English sentence of it occurs in the
split's train files, which the multi-domain recipes read), and the held-out test split of each
corpus the builder makes from Debian packages (whole help modules and UI catalogs held out, so
no test paragraph has a near-duplicate in training). Each model
translates each test with s2s-evaluate (beam 5), which scores it with sacreBLEU; the JSON holds
every score with its signature and the machine, the Markdown next to it the BLEU / chrF table,
the folder OUT_hyps/ each translation (DOMAIN.NAME.txt), OUT_samples.md --samples random
lines of --samples-domain side by side (source, reference, each model). --jobs N runs N
translations at a time (a GPU); --merge A.json B.json ... makes one table of earlier runs
(e.g. one run per model, side by side on a GPU) without translating again. --split val runs
the same on every domain's validation set (Multi30k val, each corpus's val split): choose
checkpoints there, then read the tests once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from bench_train import machine_info  # noqa: E402

BUILT = ("tatoeba", "libreoffice-help", "gimp-help", "libreoffice-ui", "gettext-apps")


def domain_tests(pair: str, data: Path, corpora: Path,
                 split: str = "test") -> dict[str, tuple[Path, Path]]:
    """Domain name -> (source file, reference file) of its held-out ``split`` (test: Multi30k
    test2016 and each built corpus's test; val: Multi30k val and each built corpus's val)."""
    src, tgt = pair.split("-")
    multi30k = "test2016" if split == "test" else "val"
    tests = {f"multi30k-{multi30k}": (data / "multi30k" / f"{multi30k}.{src}",
                                      data / "multi30k" / f"{multi30k}.{tgt}")}
    folder = "-".join(sorted([src, tgt], key=lambda lang: lang == "en"))   # de-en, fr-en, ...
    for corpus in BUILT:
        base = corpora / corpus / folder
        tests[corpus] = (base / f"{split}.{src}", base / f"{split}.{tgt}")
    return {name: files for name, files in tests.items() if all(f.is_file() for f in files)}


def first_lines(path: Path, count: int, folder: Path) -> Path:
    if not count:
        return path
    out = folder / f"{path.parent.name}.{path.name}"
    with path.open(encoding="utf-8") as lines:
        out.write_text("".join(line for _, line in zip(range(count), lines)), encoding="utf-8")
    return out


def evaluate(model: Path, src: Path, ref: Path, folder: Path, beam: int, hyp: Path) -> dict:
    scores = folder / f"{hyp.stem}.scores.json"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "scripts.evaluate", "--model", str(model), "--src",
                    str(src), "--ref", str(ref), "--beam", str(beam), "--long-lines", "split",
                    "--json", str(scores), "--output", str(hyp)],
                   cwd=ROOT, check=True, capture_output=True, text=True)
    result = json.loads(scores.read_text(encoding="utf-8"))
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["lines"] = sum(1 for _ in ref.open(encoding="utf-8"))
    result["hyp"] = f"{hyp.parent.name}/{hyp.name}"   # beside the JSON
    return result


def markdown(results: dict[str, dict[str, dict]], models: list[str]) -> str:
    lines = ["| domain (test lines) | " + " | ".join(f"{m} BLEU / chrF" for m in models) + " |",
             "|---|" + "---:|" * len(models)]
    for domain, by_model in results.items():
        lines_n = next(iter(by_model.values())).get("lines", "?")
        cells = [f"{by_model[m]['bleu']:.1f} / {by_model[m]['chrf']:.1f}" for m in models]
        lines.append(f"| {domain} ({lines_n}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def side_by_side(src: Path, ref: Path, hyps: dict[str, Path], count: int, seed: int) -> str:
    """``count`` random lines of a test (seeded): source, reference and each model's output."""
    sources = src.read_text(encoding="utf-8").splitlines()
    references = ref.read_text(encoding="utf-8").splitlines()
    outputs = {name: path.read_text(encoding="utf-8").splitlines() for name, path in hyps.items()}
    size = min([len(sources), *(len(lines) for lines in outputs.values())])   # --max-lines
    picked = sorted(random.Random(seed).sample(range(size), min(count, size)))
    blocks = []
    for number in picked:
        rows = [f"- **source** ({number + 1}): {sources[number]}",
                f"- **reference**: {references[number]}"]
        rows += [f"- **{name}**: {lines[number]}" for name, lines in outputs.items()]
        blocks.append("\n".join(rows))
    return "\n\n".join(blocks) + "\n"


def evaluate_all(models: dict[str, str], tests: dict[str, tuple[Path, Path]], hyps: Path,
                 args: argparse.Namespace) -> dict[str, dict[str, dict]]:
    """Every model on every test, ``args.jobs`` translations at a time."""
    results: dict[str, dict[str, dict]] = {domain: {} for domain in tests}
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        folder = Path(tmp)
        futures = {}
        for domain, (src, ref) in tests.items():
            src, ref = (first_lines(f, args.max_lines, folder) for f in (src, ref))
            for name, model in models.items():
                futures[domain, name] = pool.submit(evaluate, Path(model), src, ref, folder,
                                                    args.beam, hyps / f"{domain}.{name}.txt")
        for (domain, name), future in futures.items():
            result = results[domain][name] = future.result()
            print(f"{domain:22s} {name:14s} BLEU {result['bleu']:5.1f}  "
                  f"chrF {result['chrf']:5.1f}  ({result['wall_s']} s)", flush=True)
    return results


def merged(paths: list[Path], out: Path) -> tuple[dict[str, dict[str, dict]], list[str]]:
    """The results of several earlier runs (--merge), hypothesis paths made relative to
    ``out``'s folder."""
    results: dict[str, dict[str, dict]] = {}
    models: list[str] = []
    for path in paths:
        for domain, by_model in json.loads(path.read_text(encoding="utf-8"))["results"].items():
            for name, result in by_model.items():
                result["hyp"] = os.path.relpath(path.parent / result["hyp"], out.parent)
                results.setdefault(domain, {})[name] = result
                models += [name] if name not in models else []
    return results, models


def write_outputs(results: dict[str, dict[str, dict]], models: list[str], out: Path,
                  tests: dict[str, tuple[Path, Path]], args: argparse.Namespace) -> None:
    record = {"machine": machine_info(), "args": vars(args), "results": results}
    out.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    complete = {domain: by_model for domain, by_model in results.items()
                if all(name in by_model for name in models)}
    out.with_suffix(".md").write_text(markdown(complete, models), encoding="utf-8")
    shown_domain = complete.get(args.samples_domain)
    if args.samples and shown_domain and args.samples_domain in tests:
        src, ref = tests[args.samples_domain]
        hyp_files = {name: out.parent / shown_domain[name]["hyp"] for name in models}
        shown = side_by_side(src, ref, hyp_files, args.samples, args.seed)
        out.with_name(out.stem + "_samples.md").write_text(shown, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="NAME=MODEL.pt")
    parser.add_argument("--merge", nargs="+", type=Path, default=[],
                        help="JSON files of earlier runs: one table of all their models")
    parser.add_argument("--pair", default="de-en")
    parser.add_argument("--data", required=True, help="the shared corpora (S2S_DATA_DIR)")
    parser.add_argument("--corpora", required=True, help="the built corpora (S2S_CORPORA_DIR)")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--split", choices=("test", "val"), default="test",
                        help="val: every domain's validation set (choose checkpoints and "
                             "settings there; read test once)")
    parser.add_argument("--max-lines", type=int, default=0, help="first N lines of each test")
    parser.add_argument("--jobs", type=int, default=1, help="translations run at a time")
    parser.add_argument("--samples", type=int, default=10, help="lines shown side by side")
    parser.add_argument("--samples-domain", default="libreoffice-help")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if bool(args.model) == bool(args.merge):
        parser.error("give --model NAME=MODEL.pt (repeatable) or --merge JSON...")
    tests = domain_tests(args.pair, Path(args.data), Path(args.corpora), args.split)
    out = Path(args.out)
    if args.merge:
        results, models = merged(args.merge, out)
    else:
        specs = dict(spec.split("=", 1) for spec in args.model)
        hyps = out.with_name(out.stem + "_hyps")
        hyps.mkdir(parents=True, exist_ok=True)
        results, models = evaluate_all(specs, tests, hyps, args), list(specs)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_outputs(results, models, out, tests, args)


if __name__ == "__main__":
    main()
