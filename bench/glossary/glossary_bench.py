#!/usr/bin/env python3
"""Glossary benchmark: term success, BLEU and decoding speed with and without a glossary.

bench/glossary/glossary_bench.py --model /work/runs/ref_de_en/best.pt
    [--data /work/shared/data/multi30k] [--repeats 3] [--beam 5] [--threads 1]
    [--out bench/glossary]

The terminology test comes from test2016 (``build_term_test``): the sentences whose German
source has one of the glossary's nouns (``TERMS``, whole word, same case) and whose English
reference has the noun's usual translation; in that reference the translation is replaced by a
synonym the model would not choose (man -> guy, woman -> lady, ...), and the glossary asks for
the synonym. Writes terms.json (the glossary), test.de, test.en (edited references),
test.orig.en, results.json and results.md into --out.

Quality: term success (% of sentences whose output contains every required target term as a
whole word, same case) and sacreBLEU against the edited and the original references, beam 5
without and with the glossary, and beam 1 (greedy) with it. Speed: sentences/s of the whole
test at beam 5 without and with the glossary, ``--repeats`` rounds, the two interleaved (order
alternating per round) so background load hits both alike; medians reported.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_train import machine_info  # noqa: E402

from s2s.inference.glossary import Glossary, Term  # noqa: E402
from s2s.inference.search import SearchOptions  # noqa: E402
from s2s.inference.translator import TranslateOptions, Translator  # noqa: E402
from s2s.scoring import score_corpus  # noqa: E402
from s2s.training.corpus_files import read_lines  # noqa: E402

# German noun (whole word, same case) -> (its usual English translation, the synonym to use)
TERMS = {
    "Mann": ("man", "guy"), "Männer": ("men", "guys"),
    "Frau": ("woman", "lady"), "Frauen": ("women", "ladies"),
    "Hund": ("dog", "hound"), "Hunde": ("dogs", "hounds"),
    "Straße": ("street", "road"), "Kind": ("child", "kid"), "Kinder": ("children", "kids"),
    "Junge": ("boy", "lad"), "Leute": ("people", "folks"), "Menschen": ("people", "folks"),
    "Strand": ("beach", "shore"), "Stadt": ("city", "town"), "Auto": ("car", "automobile"),
    "Hut": ("hat", "cap"), "Boot": ("boat", "vessel"), "Feld": ("field", "meadow"),
}


def word_pattern(word: str, flags: int = 0) -> re.Pattern:
    return re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", flags)


def replace_word(text: str, word: str, synonym: str) -> str:
    """Every whole-word ``word`` in text (any case of its first letter) -> synonym, keeping
    a capital first letter."""
    def swap(found: re.Match) -> str:
        return synonym[0].upper() + synonym[1:] if found.group()[0].isupper() else synonym
    return re.sub(rf"(?<!\w)[{word[0]}{word[0].upper()}]{re.escape(word[1:])}(?!\w)", swap,
                  text)


def build_term_test(sources: list[str], references: list[str]
                    ) -> tuple[Glossary, list[int], list[str], list[list[str]]]:
    """The glossary, the indices of the test sentences, their edited references, and each
    one's required target terms (those of every glossary noun its source has)."""
    glossary = Glossary(tuple(Term(de, synonym) for de, (_, synonym) in TERMS.items()))
    chosen, edited, required = [], [], []
    for index, (source, reference) in enumerate(zip(sources, references)):
        matched = [t for t in glossary.matches(source)]
        usable = [t for t in matched
                  if word_pattern(TERMS[t.source][0], re.IGNORECASE).search(reference)]
        if not usable:
            continue
        for term in usable:
            reference = replace_word(reference, TERMS[term.source][0], term.target)
        chosen.append(index)
        edited.append(reference)
        required.append(list(dict.fromkeys(t.target for t in matched)))
    return glossary, chosen, edited, required


def term_success(outputs: list[str], required: list[list[str]]) -> dict[str, float]:
    """% of sentences with every required term (whole word, same case), and % of required
    term occurrences met."""
    sentences = sum(all(word_pattern(t).search(o) for t in terms)
                    for o, terms in zip(outputs, required))
    wanted = [(o, t) for o, terms in zip(outputs, required) for t in terms]
    met = sum(bool(word_pattern(t).search(o)) for o, t in wanted)
    return {"sentences_pct": 100.0 * sentences / len(outputs),
            "terms_pct": 100.0 * met / max(len(wanted), 1), "sentences": len(outputs),
            "terms": len(wanted)}


def quality(translator: Translator, sources: list[str], edited: list[str], original: list[str],
            required: list[list[str]], beam: int, glossary: Glossary | None) -> dict:
    options = TranslateOptions(search=SearchOptions(beam_size=beam))
    results = translator.translate(sources, options, glossary=glossary)
    outputs = [r.text for r in results]
    against_edited = score_corpus(outputs, edited)
    return {"beam": beam, "glossary": glossary is not None,
            "term_success": term_success(outputs, required),
            "constraints_met_pct": (100.0 * sum(bool(r.constraints_met) for r in results)
                                    / len(results)) if glossary else None,
            "bleu_edited": against_edited.bleu, "chrf_edited": against_edited.chrf,
            "bleu_original": score_corpus(outputs, original).bleu,
            "bleu_signature": against_edited.bleu_signature, "outputs": outputs}


def timed(translator: Translator, sources: list[str], options: TranslateOptions,
          glossary: Glossary | None) -> float:
    """Seconds for one translation of all sources (texts in, texts out)."""
    started = time.perf_counter()
    translator.translate(sources, options, glossary=glossary)
    return time.perf_counter() - started


def speed(translator: Translator, sources: list[str], glossary: Glossary, beam: int,
          repeats: int) -> dict:
    options = TranslateOptions(search=SearchOptions(beam_size=beam))
    translator.translate(sources[:32], options, glossary=glossary)   # warm-up
    seconds: dict[str, list[float]] = {"without": [], "with": []}
    for round_number in range(repeats):
        order = ["without", "with"] if round_number % 2 == 0 else ["with", "without"]
        for name in order:
            seconds[name].append(timed(translator, sources, options,
                                       glossary if name == "with" else None))
    per_second = {name: [len(sources) / s for s in values] for name, values in seconds.items()}
    median = {name: statistics.median(values) for name, values in per_second.items()}
    return {"beam": beam, "repeats": repeats, "seconds": seconds,
            "sentences_per_s": per_second, "median_sentences_per_s": median,
            "cost_pct": 100.0 * (1 - median["with"] / median["without"])}


def markdown(report: dict) -> str:
    rows = ["| decoding | term success (sentences) | term success (terms) | BLEU edited refs | "
            "BLEU original refs | chrF edited |", "|---|---|---|---|---|---|"]
    for run in report["quality"]:
        name = f"beam {run['beam']}, " + ("glossary" if run["glossary"] else "no glossary")
        ts = run["term_success"]
        rows.append(f"| {name} | {ts['sentences_pct']:.1f}% | {ts['terms_pct']:.1f}% | "
                    f"{run['bleu_edited']:.2f} | {run['bleu_original']:.2f} | "
                    f"{run['chrf_edited']:.2f} |")
    sp = report["speed"]
    med = sp["median_sentences_per_s"]
    test = report["test"]
    lines = [
        "# Glossary (lexical constraints) on test2016 de-en", "",
        f"Model: `{report['model']}`. Terminology test: {test['sentences']} of the "
        f"{test['pool']} test2016 sentences ({test['terms']} required terms; "
        f"{len(TERMS)} glossary nouns, see terms.json), references edited to the synonyms "
        "(test.en; test.orig.en the original). Made by `bench/glossary/glossary_bench.py`.", "",
        *rows, "",
        f"Speed, beam {sp['beam']}, {report['threads']} thread(s), whole test per pass, "
        f"{sp['repeats']} interleaved rounds (medians): without glossary "
        f"{med['without']:.2f} sentences/s, with {med['with']:.2f} sentences/s "
        f"({sp['cost_pct']:.1f}% slower). Per pass: without "
        f"{', '.join(f'{v:.2f}' for v in sp['sentences_per_s']['without'])}; with "
        f"{', '.join(f'{v:.2f}' for v in sp['sentences_per_s']['with'])}.", "",
        f"Machine: {report['machine']['cpu']} ({report['machine']['logical_cpus']} logical CPUs, "
        f"torch {report['machine']['torch']}). {report['note']}", "",
        "Notes:", "",
        "- Term success counts a sentence when its output has every target term of the glossary "
        "nouns in its source as a whole word with the same case (a source with Mann and Hut "
        "needs guy and cap). The search (s2s.inference.constraints) forbids EOS until every "
        "term is produced and keeps terms whole words; it could miss one only when no "
        "hypothesis fits it before the maximum output length.",
        "- BLEU against the original references falls with the glossary: the glossary replaces "
        "the very words those references use. Against the edited references it rises.",
        "- Beam 1 with a glossary is a one-beam constrained search: it takes a term as soon as "
        "it may, often first in the sentence (see outputs.json); use beam >= 4 with glossaries.",
        "- The speed cost is for a test where every sentence has terms; sentences without "
        "matching terms decode on the unconstrained path, at its speed.",
        "- Rerun: `bench/glossary/glossary_bench.py --model /work/runs/ref_de_en/best.pt "
        "--note '...'` (about 3 minutes on this machine).", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", default="/work/shared/data/multi30k")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent))
    parser.add_argument("--note", default="")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    data = Path(args.data)
    pool_src = read_lines(data / "test2016.de")
    pool_ref = read_lines(data / "test2016.en")
    glossary, chosen, edited, required = build_term_test(pool_src, pool_ref)
    sources = [pool_src[i] for i in chosen]
    original = [pool_ref[i] for i in chosen]
    (out / "terms.json").write_text(json.dumps(
        [{"source": t.source, "target": t.target} for t in glossary.terms],
        ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    for name, lines in (("test.de", sources), ("test.en", edited), ("test.orig.en", original)):
        (out / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    translator = Translator.from_file(args.model)
    runs = [quality(translator, sources, edited, original, required, beam, g)
            for beam, g in ((args.beam, None), (args.beam, glossary), (1, glossary))]
    report = {
        "model": args.model, "threads": args.threads, "machine": machine_info(),
        "note": args.note,
        "test": {"pool": len(pool_src), "sentences": len(sources),
                 "terms": sum(len(r) for r in required), "indices": chosen,
                 "required": required},
        "quality": [{k: v for k, v in run.items() if k != "outputs"} for run in runs],
        "speed": speed(translator, sources, glossary, args.beam, args.repeats),
    }
    (out / "outputs.json").write_text(json.dumps(
        {f"beam{r['beam']}_{'glossary' if r['glossary'] else 'plain'}": r["outputs"]
         for r in runs}, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    (out / "results.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    (out / "results.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
