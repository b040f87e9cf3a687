"""The held-out Tatoeba split (s2s.training.tatoeba_split and ``s2s-download-data --corpus
tatoeba``): tiny shared Tatoeba folders written here; no network."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
from pathlib import Path

import pytest

from s2s.training import tatoeba_split as ts
from s2s.training.l10n_corpus import L10nError

ROOT = Path(__file__).resolve().parents[1]
dd = importlib.import_module("scripts.download_data")


def english(i: int) -> str:
    return f"Sentence number {i} is here."


def fake_pairs(n: int = 300) -> list[tuple[str, str]]:
    """n English sentences; every fifth has three translations, and a variant of its English
    side differing only in case and spacing, so groups have 1 to 4 pairs."""
    pairs = []
    for i in range(n):
        pairs.append((english(i), f"Frase número {i} está aquí."))
        if i % 5 == 0:
            pairs.append((english(i), f"La frase {i} está aquí."))
            pairs.append((english(i).upper().replace(" ", "  "), f"Oración {i} aquí."))
    return pairs


def german_pairs() -> list[tuple[str, str]]:
    return [(en, f"Satz Nummer {i} ist hier.") for i, (en, _) in enumerate(fake_pairs())]


def keys(pairs):
    return {ts.english_key(en) for en, _ in pairs}


def test_split_is_disjoint_by_english_sentence_with_the_counts_asked():
    pairs = fake_pairs()
    splits, report = ts.split_by_english(pairs, val_size=25, test_size=50, seed=3)
    assert len(splits["val"]) == 25 and len(splits["test"]) == 50
    assert sum(len(part) for part in splits.values()) == len(pairs)
    assert not keys(splits["train"]) & keys(splits["val"])
    assert not keys(splits["train"]) & keys(splits["test"])
    assert not keys(splits["val"]) & keys(splits["test"])
    assert report["heldout_english_in_train"] == 0
    # a group of variants of one sentence (case, spacing) is never divided
    held = keys(splits["val"]) | keys(splits["test"])
    assert any(ts.english_key(english(i)) in held for i in range(0, 300, 5))
    for part in splits.values():   # each split keeps the input order
        assert part == [p for p in pairs if p in part]


def test_split_is_seeded():
    pairs = fake_pairs()
    first, _ = ts.split_by_english(pairs, 25, 50, seed=3)
    again, _ = ts.split_by_english(list(pairs), 25, 50, seed=3)
    other, _ = ts.split_by_english(pairs, 25, 50, seed=4)
    assert first == again
    assert keys(first["test"]) != keys(other["test"])


def test_split_refuses_to_hold_out_everything():
    with pytest.raises(L10nError, match="cannot hold out"):
        ts.split_by_english(fake_pairs(10), val_size=10, test_size=10)


def write_shared(root: Path, folder: str, lang: str, pairs) -> Path:
    path = root / folder
    path.mkdir(parents=True)
    (path / "train.en").write_text("".join(f"{en}\n" for en, _ in pairs), encoding="utf-8")
    (path / f"train.{lang}").write_text("".join(f"{xx}\n" for _, xx in pairs), encoding="utf-8")
    (path / "_about.txt").write_text("Attribution: www.manythings.org/anki and tatoeba.org\n")
    return path


def test_command_writes_the_split_with_provenance(tmp_path, capsys):
    shared = tmp_path / "shared"
    pairs = fake_pairs() + [("Copied.", "Copied."), ("Untranslated", "")]
    source = write_shared(shared, "tatoeba-spa-eng", "es", pairs)
    write_shared(shared, "tatoeba-deu-eng", "de", german_pairs())
    out = tmp_path / "corpora"
    argv = ["--corpus", "tatoeba", "--langs", "es,de", "--shared", str(shared), "--out", str(out),
            "--val-size", "20", "--test-size", "40", "--seed", "2"]
    assert dd.main(argv) == 0
    assert "ok: 1 corpora x 2 languages" in capsys.readouterr().out
    folder = out / "tatoeba" / "es-en"
    assert sorted(p.name for p in folder.iterdir()) == [
        "about.txt", "provenance.json", "test.en", "test.es", "train.en", "train.es",
        "val.en", "val.es"]
    prov = json.loads((folder / "provenance.json").read_text())
    assert prov["license"] == ts.LICENSE and prov["pair"] == "es-en" and prov["seed"] == 2
    assert prov["split"] == {"train": len(fake_pairs()) - 60, "val": 20, "test": 40}
    assert prov["source_pairs"] == len(pairs)
    rows = {r["filter"]: r["after"] for r in prov["filters"]}
    assert rows["translated"] == len(pairs) - 1 and rows["not_copied"] == len(pairs) - 2
    sources = {Path(s["path"]).name: s["sha256"] for s in prov["sources"]}
    assert sources["train.es"] == hashlib.sha256((source / "train.es").read_bytes()).hexdigest()
    split_en = {}
    for split in ("train", "val", "test"):
        en = (folder / f"{split}.en").read_text().splitlines()
        es = (folder / f"{split}.es").read_text().splitlines()
        assert len(en) == len(es) == prov["split"][split] == prov["files"][f"{split}.en"]["lines"]
        split_en[split] = {ts.english_key(x) for x in en}
    assert not split_en["train"] & (split_en["val"] | split_en["test"])
    assert "--shared" in prov["command"]
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix != ".json"}
    assert dd.main(argv) == 0   # rebuilt: the same files
    assert before == {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix != ".json"}
    assert (out / "tatoeba" / "de-en" / "test.de").is_file()


def test_all_includes_tatoeba_and_a_missing_shared_folder_fails_first(tmp_path, monkeypatch,
                                                                       capsys):
    monkeypatch.setenv(dd.DATA_ENV, str(tmp_path / "shared"))
    args = dd.parse_args(["--corpus", "all"])
    assert "tatoeba" in args.corpora and set(dd.L10N_CORPORA) <= set(args.corpora)
    assert args.shared == tmp_path / "shared"
    debs = tmp_path / "debs"
    argv = ["--corpus", "all", "--langs", "es", "--out", str(tmp_path / "o"), "--debs", str(debs)]
    assert dd.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no Tatoeba es-en corpus") and "\n" not in err
    assert not debs.exists()   # nothing was fetched


def test_corpus_table_counts_a_split_tatoeba_once(tmp_path):
    spec = importlib.util.spec_from_file_location("make_table",
                                                  ROOT / "bench/corpora/make_table.py")
    make_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_table)
    shared = tmp_path / "shared"
    write_shared(shared, "tatoeba-spa-eng", "es", fake_pairs())
    write_shared(shared, "tatoeba-deu-eng", "de", german_pairs())
    out = tmp_path / "corpora"
    ts.build(shared, ["es"], out, val_size=20, test_size=40)
    built = make_table.built_rows(out, 1)
    rows = make_table.shared_rows(shared, 1, {(r["corpus"], r["lang"]) for r in built}) + built
    by = {(r["corpus"], r["lang"]): r for r in rows}
    assert ("tatoeba-spa-eng", "es") not in by and ("tatoeba-deu-eng", "de") in by
    assert by[("tatoeba", "es")]["clean"] == len(fake_pairs())
    assert by[("tatoeba", "es")]["license"] == ts.LICENSE
