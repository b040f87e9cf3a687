"""A held-out split of the shared Tatoeba corpora, for per-domain evaluation.

The shared Tatoeba folders (``tatoeba-deu-eng``, ``tatoeba-eng-fra``, ``tatoeba-spa-eng``: one
``train.en`` and one ``train.<lang>``, no split) are cleaned with the filters of the Debian
corpora (``l10n_corpus.clean_pairs``: whitespace, untranslated, no letters, copied, too long,
length ratio, exact duplicates) and split into train, val and test. Pairs are grouped by their
English side, case-folded with whitespace collapsed; whole groups are drawn in a seeded order
for test, then val, until each holds exactly the number of pairs asked (a group that would
overshoot is left in training), so no English sentence of val or test occurs in train.

``build`` writes ``<out>/tatoeba/<lang>-en/{train,val,test}.{en,<lang>}`` with
``provenance.json`` (source files and sha256, license, counts before and after each filter,
split sizes, file checksums) and a copy of the source's ``_about.txt``. Library code: it
returns values and raises ``L10nError``.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from s2s.training.l10n_corpus import (
    FORMAT_VERSION,
    L10nError,
    Pair,
    clean_pairs,
    publish,
    sha256_file,
    write_splits,
)
from s2s.training.l10n_text import normalize_ws

CORPUS = "tatoeba"
LICENSE = "CC BY 2.0 (Tatoeba, manythings.org)"
VAL_PAIRS = 1000
TEST_PAIRS = 2000
# ISO 639-1 -> the ISO 639-3 code of the manythings.org file names (deu-eng.zip, ...)
ISO3 = {"de": "deu", "fr": "fra", "es": "spa", "it": "ita", "pt": "por", "nl": "nld",
        "ru": "rus", "pl": "pol", "tr": "tur", "ja": "jpn", "zh": "cmn"}


def english_key(text: str) -> str:
    """The group of a pair: its English side case-folded, whitespace collapsed."""
    return normalize_ws(text).casefold()


def source_folder(shared: Path, lang: str) -> Path:
    """``tatoeba-<a>-<b>`` under ``shared`` for ``lang`` paired with English (either order)."""
    code = ISO3.get(lang, lang)
    names = [f"tatoeba-{'-'.join(sorted([code, 'eng']))}", f"tatoeba-{code}-eng",
             f"tatoeba-eng-{code}"]
    for name in dict.fromkeys(names):
        folder = shared / name
        if (folder / "train.en").is_file() and (folder / f"train.{lang}").is_file():
            return folder
    raise L10nError(f"no Tatoeba {lang}-en corpus in {shared}: expected {shared / names[0]}/"
                    f"train.en and train.{lang} (the shared data folder: --shared or "
                    "$S2S_DATA_DIR)")


def read_pairs(folder: Path, lang: str) -> list[Pair]:
    en = (folder / "train.en").read_text(encoding="utf-8").splitlines()
    xx = (folder / f"train.{lang}").read_text(encoding="utf-8").splitlines()
    if len(en) != len(xx):
        raise L10nError(f"{folder}: train.en has {len(en)} lines, train.{lang} {len(xx)}")
    return list(zip(en, xx))


def split_by_english(pairs: list[Pair], val_size: int = VAL_PAIRS, test_size: int = TEST_PAIRS,
                     seed: int = 1) -> tuple[dict[str, list[Pair]], dict]:
    """{train, val, test} and a report. Groups of pairs sharing an English side (``english_key``)
    are taken whole, in an order fixed by the seed, into test and then val while they fit the
    size asked; everything else is training. Each split keeps the input order."""
    if val_size < 0 or test_size < 0:
        raise L10nError("val and test sizes must not be negative")
    if val_size + test_size >= len(pairs):
        raise L10nError(f"cannot hold out {val_size} + {test_size} of {len(pairs)} pairs")
    groups: dict[str, list[int]] = {}
    for index, (en, _) in enumerate(pairs):
        groups.setdefault(english_key(en), []).append(index)
    order = sorted(groups, key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).hexdigest())
    wanted = {"test": test_size, "val": val_size}
    chosen: dict[str, set[str]] = {"test": set(), "val": set()}
    filled = dict.fromkeys(wanted, 0)
    for key in order:
        size = len(groups[key])
        for name in ("test", "val"):
            if filled[name] + size <= wanted[name]:
                chosen[name].add(key)
                filled[name] += size
                break
        if filled == wanted:
            break
    where = {key: name for name, keys in chosen.items() for key in keys}
    splits: dict[str, list[Pair]] = {"train": [], "val": [], "test": []}
    for pair in pairs:
        splits[where.get(english_key(pair[0]), "train")].append(pair)
    train_en = {english_key(en) for en, _ in splits["train"]}
    train_xx = {english_key(xx) for _, xx in splits["train"]}
    report = {
        "groups": len(groups),
        "heldout_groups": {name: len(keys) for name, keys in chosen.items()},
        "heldout_english_in_train": sum(english_key(en) in train_en
                                        for name in ("val", "test") for en, _ in splits[name]),
        "heldout_target_in_train": {name: sum(english_key(xx) in train_xx
                                              for _, xx in splits[name])
                                    for name in ("val", "test")},
    }
    return splits, report


@dataclass
class SplitResult:
    lang: str
    folder: Path
    counts: dict
    provenance: dict


def build_pair(shared: Path, lang: str, out: Path, seed: int = 1, val_size: int = VAL_PAIRS,
               test_size: int = TEST_PAIRS, command: str = "") -> SplitResult:
    """Clean, split and write ``<out>/tatoeba/<lang>-en``."""
    started = time.perf_counter()
    source = source_folder(shared, lang)
    raw = read_pairs(source, lang)
    pairs, rows = clean_pairs(raw)
    splits, report = split_by_english(pairs, val_size, test_size, seed)
    if report["heldout_english_in_train"]:
        raise L10nError("internal error: a held-out English sentence is in training")
    folder = out / CORPUS / f"{lang}-en"
    tmp, files = write_splits(folder, splits, lang)
    sources = []
    for name in ("train.en", f"train.{lang}", "_about.txt"):
        path = source / name
        if path.is_file():
            sources.append({"path": str(path), "bytes": path.stat().st_size,
                            "sha256": sha256_file(path)})
    if (source / "_about.txt").is_file():
        shutil.copyfile(source / "_about.txt", tmp / "about.txt")
    split_sizes = {split: len(part) for split, part in splits.items()}
    provenance = {
        "format_version": FORMAT_VERSION, "corpus": CORPUS,
        "description": "Tatoeba sentence pairs (manythings.org export), held-out split by "
                       "English sentence",
        "pair": f"{lang}-en", "langs": ["en", lang], "command": command,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seed": seed, "asked": {"val": val_size, "test": test_size},
        "license": LICENSE, "sources": sources, "source_pairs": len(raw), "packages": [],
        "filters": rows, "split": split_sizes, **report, "files": files,
        "build_seconds": round(time.perf_counter() - started, 2),
    }
    publish(tmp, folder, provenance)
    counts = {"extracted": len(raw), **{r["filter"]: r["after"] for r in rows}, **split_sizes}
    return SplitResult(lang, folder, counts, provenance)


def build(shared: Path, langs: list[str], out: Path, seed: int = 1, val_size: int = VAL_PAIRS,
          test_size: int = TEST_PAIRS, command: str = "") -> list[SplitResult]:
    """The split for every language of ``langs``; every source is located before any is
    written, so a missing one fails before the others are built."""
    for lang in langs:
        source_folder(shared, lang)
    return [build_pair(shared, lang, out, seed, val_size, test_size, command) for lang in langs]
