#!/usr/bin/env python3
"""The corpus table: every corpus built by ``s2s-download-data --corpus ...`` (their
provenance.json) and the shared corpora (cleaned with the same filters), with pairs before and
after each filter, licenses, totals per language pair and ten seeded sample pairs per corpus.
A shared Tatoeba corpus whose held-out split was built (``--corpus tatoeba``: the same pairs,
cleaned and split) is counted once, as the built ``tatoeba`` row.

    python bench/corpora/make_table.py --corpora /work/corpora --shared /work/shared/data \
        --out bench/corpora/corpus_table
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from s2s.training import l10n_corpus as lc

SHARED = {  # name -> (folder, [split files], license, the built corpus made from it or None)
    "multi30k": ("multi30k", ["train", "val", "test2016"],
                 "none stated (Flickr30K-derived; non-commercial research/education use)", None),
    "tatoeba-deu-eng": ("tatoeba-deu-eng", ["train"], "CC BY 2.0 (Tatoeba, manythings.org)",
                        "tatoeba"),
    "tatoeba-eng-fra": ("tatoeba-eng-fra", ["train"], "CC BY 2.0 (Tatoeba, manythings.org)",
                        "tatoeba"),
    "tatoeba-spa-eng": ("tatoeba-spa-eng", ["train"], "CC BY 2.0 (Tatoeba, manythings.org)",
                        "tatoeba"),
}
LANGS = ("de", "fr", "es")
TARGETS = {"de": 300_000, "fr": 250_000, "es": 250_000}


def read_pairs(folder: Path, splits: list[str], lang: str) -> list[tuple[str, str]]:
    pairs = []
    for split in splits:
        en_file, xx_file = folder / f"{split}.en", folder / f"{split}.{lang}"
        if not en_file.is_file() or not xx_file.is_file():
            return []
        en = en_file.read_text(encoding="utf-8").splitlines()
        xx = xx_file.read_text(encoding="utf-8").splitlines()
        pairs.extend(zip(en, xx, strict=True))
    return pairs


def shared_rows(root: Path, seed: int, built: set[tuple[str, str]] = frozenset()) -> list[dict]:
    """Rows of the shared corpora, except those whose split is among ``built`` (corpus, lang)."""
    rows = []
    for name, (folder, splits, license_, built_as) in SHARED.items():
        for lang in LANGS:
            if (built_as, lang) in built:
                continue
            pairs = read_pairs(root / folder, splits, lang)
            if not pairs:
                continue
            kept, filters = lc.clean_pairs(pairs)
            picks = random.Random(seed).sample(range(len(kept)), min(10, len(kept)))
            rows.append({"corpus": name, "pair": f"{lang}-en", "lang": lang,
                         "source": f"shared data: {folder} ({', '.join(splits)})",
                         "packages": [], "license": license_, "filters": filters,
                         "clean": len(kept), "split": None,
                         "samples": [kept[i] for i in sorted(picks)]})
    return rows


def built_rows(root: Path, seed: int) -> list[dict]:
    rows = []
    for prov_file in sorted(root.glob("*/*-en/provenance.json")):
        prov = json.loads(prov_file.read_text(encoding="utf-8"))
        lang = prov["langs"][1]
        licenses = sorted({f"{p['name']}: {p['license'].get('main')}" for p in prov["packages"]})
        rows.append({"corpus": prov["corpus"], "pair": prov["pair"], "lang": lang,
                     "source": prov["description"],
                     "packages": [f"{p['name']} {p['version']}" for p in prov["packages"]],
                     "license": "; ".join(licenses) or prov.get("license", ""),
                     "filters": prov["filters"],
                     "clean": sum(prov["split"].values()), "split": prov["split"],
                     "heldout_modules": prov.get("heldout_modules"),
                     "heldout_groups": prov.get("heldout_groups"),
                     "build_seconds": prov.get("build_seconds"),
                     "samples": lc.sample_pairs(prov_file.parent, lang, 10, seed)})
    return rows


def esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(rows: list[dict], totals: dict) -> str:
    out = ["# Corpus table", "",
           "Clean pairs per corpus (after every filter; built corpora: train + val + test). "
           "Filters in order: `translated` (both sides non-empty), `has_letters`, `not_copied` "
           "(target differs from source), `max_chars` (<= 1000 characters), `length_ratio` "
           "((longer+5)/(shorter+5) <= 2.5), `unique` (exact duplicates), and for the built "
           "corpora `heldout_not_near_duplicate` (val/test pairs whose letters-only source or "
           "target occurs in an earlier split). Each cell: pairs after the filter. `tatoeba`: "
           "the shared Tatoeba files with the same filters, split by English sentence "
           "(`s2s-download-data --corpus tatoeba`; counted once, instead of the shared rows).",
           "",
           "| corpus | pair | extracted | translated | has_letters | not_copied | max_chars | "
           "length_ratio | unique | held-out check | train / val / test | license |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        f = {x["filter"]: x["after"] for x in r["filters"]}
        split = r["split"]
        split_text = (f"{split['train']} / {split['val']} / {split['test']}" if split
                      else "(no split)")
        out.append(f"| {r['corpus']} | {r['pair']} | {r['filters'][0]['before']} | "
                   f"{f['translated']} | {f['has_letters']} | {f['not_copied']} | "
                   f"{f['max_chars']} | {f['length_ratio']} | {f['unique']} | "
                   f"{f.get('heldout_not_near_duplicate', '-')} | {split_text} | "
                   f"{esc(r['license'])} |")
    out += ["", "## Totals per language pair (clean pairs, all corpora)", "",
            "| pair | clean pairs | target | met |", "|---|---:|---:|---|"]
    for lang, total in totals.items():
        out.append(f"| {lang}-en | {total} | {TARGETS[lang]} | "
                   f"{'yes' if total >= TARGETS[lang] else 'no'} |")
    out += ["", "## Packages", ""]
    for r in rows:
        if r["packages"]:
            out.append(f"- {r['corpus']} {r['pair']}: {', '.join(r['packages'])}")
    out += ["", "## Ten random pairs per corpus (seeded)", ""]
    for r in rows:
        out += [f"### {r['corpus']} {r['pair']}", "", f"| en | {r['lang']} |", "|---|---|"]
        out += [f"| {esc(en)} | {esc(xx)} |" for en, xx in r["samples"]]
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, required=True)
    parser.add_argument("--shared", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("bench/corpora/corpus_table"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    built = built_rows(args.corpora, args.seed)
    rows = shared_rows(args.shared, args.seed, {(r["corpus"], r["lang"]) for r in built}) + built
    totals = {lang: sum(r["clean"] for r in rows if r["lang"] == lang) for lang in LANGS}
    args.out.with_suffix(".md").write_text(markdown(rows, totals) + "\n", encoding="utf-8")
    record = {"totals": totals, "targets": TARGETS,
              "corpora": [{k: v for k, v in r.items() if k != "samples"} for r in rows]}
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2, ensure_ascii=False)
                                             + "\n", encoding="utf-8")
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
