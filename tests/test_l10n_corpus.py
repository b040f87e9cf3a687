"""Corpora from Debian localization packages (s2s.training.l10n_corpus, l10n_text and the
``s2s-download-data --corpus`` command): tiny .mo catalogs and help pages written here, tiny
.deb packages built with dpkg-deb where it exists. No network: the real build runs only with
S2S_L10N_REAL=1 (it fetches Debian packages with apt-get download)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from s2s.training import l10n_corpus as lc
from s2s.training.l10n_text import (
    L10nFormatError,
    MoEntry,
    help_paragraphs,
    html_blocks,
    mo_pairs,
    normalize_ws,
    parse_mo,
    strip_mnemonics,
)

ROOT = Path(__file__).resolve().parents[1]
dd = importlib.import_module("scripts.download_data")

HAVE_DPKG = shutil.which("dpkg-deb") is not None


# ------------------------------------------------------------------ .mo writer (GNU format)

def make_mo(entries: list[tuple], charset: str = "UTF-8", big_endian: bool = False) -> bytes:
    """A .mo catalog: entries are (context or None, msgid, msgid_plural or None, [msgstr...])."""
    header = f"Content-Type: text/plain; charset={charset}\nPlural-Forms: nplurals=2;\n"
    items = [(b"", header.encode("ascii"))]
    for context, msgid, plural, msgstr in entries:
        key = (f"{context}\x04" if context else "") + msgid + (f"\x00{plural}" if plural else "")
        items.append((key.encode(charset), "\x00".join(msgstr).encode(charset)))
    items.sort()
    order = ">" if big_endian else "<"
    n = len(items)
    orig_at, trans_at = 28, 28 + 8 * n
    data_at = trans_at + 8 * n
    blob, orig, trans = b"", [], []
    for table, index in ((orig, 0), (trans, 1)):
        for item in items:
            table.append((len(item[index]), data_at + len(blob)))
            blob += item[index] + b"\x00"
    head = struct.pack(order + "7I", 0x950412DE, 0, n, orig_at, trans_at, 0, 0)
    tables = b"".join(struct.pack(order + "2I", *x) for x in orig + trans)
    return head + tables + blob


def test_parse_mo_reads_contexts_plurals_and_both_byte_orders():
    entries = [(None, "~Open", None, ["Ö~ffnen"]),
               ("menu|file", "_Save As", None, ["Speichern _unter"]),
               (None, "%1 slide", "%1 slides", ["%1 Folie", "%1 Folien"])]
    for big in (False, True):
        parsed = parse_mo(make_mo(entries, big_endian=big))
        assert MoEntry("menu|file", "_Save As", None, ("Speichern _unter",)) in parsed
        assert MoEntry(None, "%1 slide", "%1 slides", ("%1 Folie", "%1 Folien")) in parsed
        assert len(parsed) == 3   # the header entry is left out
    pairs = mo_pairs(parse_mo(make_mo(entries)))
    assert ("%1 slide", "%1 Folie") in pairs and ("%1 slides", "%1 Folien") in pairs
    assert ("%1 slide", "%1 Folie") in mo_pairs(parse_mo(make_mo(entries)), nplurals=1)
    assert ("%1 slides", "%1 Folien") not in mo_pairs(parse_mo(make_mo(entries)), nplurals=1)


def test_parse_mo_uses_the_header_charset_and_rejects_garbage():
    latin = parse_mo(make_mo([(None, "Open", None, ["Öffnen"])], charset="ISO-8859-1"))
    assert latin[0].msgstr == ("Öffnen",)
    with pytest.raises(L10nFormatError, match="magic"):
        parse_mo(b"\x00" * 40)
    with pytest.raises(L10nFormatError):
        parse_mo(b"\xde\x12\x04\x95")
    broken = bytearray(make_mo([(None, "Open", None, ["Öffnen"])]))
    broken[28 + 8 + 4: 28 + 8 + 8] = struct.pack("<I", 10**6)   # an offset past the end
    with pytest.raises(L10nFormatError, match="outside"):
        parse_mo(bytes(broken))


@pytest.mark.parametrize("text, marks, expected", [
    ("~Open", "~_", "Open"),
    ("Ö~ffnen...", "~_", "Öffnen..."),
    ("_Save As", "_", "Save As"),
    ("Speichern _unter", "_", "Speichern unter"),
    ("file_name and dir_name", "_", "file_name and dir_name"),   # two: not a mnemonic
    ("&File", "&", "File"),
    ("Tom && Jerry", "&", "Tom & Jerry"),
    ("Find & Replace", "&", "Find & Replace"),
    ("a &amp; b", "&", "a &amp; b"),
    ("Delete {file_name} _now", "_", "Delete {file_name} now"),
    ("Save %s_%d as _PNG", "_", "Save %s_%d as PNG"),
    ("%<-fno_common%> and %qs", "_", "%<-fno_common%> and %qs"),
    ("<b>_Bold</b>", "_", "<b>Bold</b>"),
    ("~Open", "", "~Open"),
])
def test_strip_mnemonics_keeps_placeholders(text, marks, expected):
    assert strip_mnemonics(text, marks) == expected


def test_normalize_ws_collapses_newlines_and_keeps_no_break_spaces():
    assert normalize_ws("  a\n\tb\u2028c\u00ad d ") == "a b c d"
    assert normalize_ws("Bonjour\u202f!") == "Bonjour\u202f!"


# ------------------------------------------------------------------ help pages

def help_page(lang: str, paragraphs: dict[str, str], extra: str = "") -> str:
    body = "".join(f'<p id="{k}" class="paragraph">{v}</p>\n' for k, v in paragraphs.items())
    return (f'<!DOCTYPE html><html lang="{lang}"><head><title>x</title>'
            f'<script>var x = "<p id=par_id0>no</p>";</script></head><body>'
            f'<header><p>Help for LibreOffice</p></header><div id="DisplayArea">'
            f'{body}{extra}</div></body></html>')


SWITCH_EN = ('<p id="par_id9">Press <span class="switchinline"><span hidden="true" id="MAC1" '
             'class="MAC"><span class="keycode">Command</span></span><span hidden="true" '
             'id="default1"><span class="keycode">Ctrl</span></span></span>'
             '<span class="keycode"> + F</span> to find.</p>')
SWITCH_DE = SWITCH_EN.replace("Press", "Drücken Sie").replace("to find.", "zum Suchen.")


def test_help_paragraphs_keys_by_id_and_occurrence_and_keeps_the_default_variant():
    page = help_page("en", {"hd_id1": "Find <b>Toolbar</b>", "par_id2": "Line one<br>two"},
                     SWITCH_EN + '<p id="par_id2">Again</p><p id="bm_id3">bookmark</p>')
    got = {k: normalize_ws(v) for k, v in help_paragraphs(page).items()}
    assert got == {"hd_id1#0": "Find Toolbar", "par_id2#0": "Line one two",
                   "par_id9#0": "Press Ctrl + F to find.", "par_id2#1": "Again"}


def test_html_blocks_pairs_pages_with_the_same_structure():
    en = "<html><body><h1>Blur</h1><p>Makes it <i>soft</i>.</p><ul><li><p>A</p></li></ul>"
    es = "<html><body><h1>Desenfoque</h1><p>Lo hace <i>suave</i>.</p><ul><li><p>A</p></li></ul>"
    assert html_blocks(en) == [("h1", "Blur"), ("p", "Makes it soft."), ("li", "A")]
    assert [t for t, _ in html_blocks(es)] == [t for t, _ in html_blocks(en)]


# ------------------------------------------------------------------ cleaning and split

@pytest.mark.parametrize("en, xx, failed", [
    ("Open", "", "translated"),
    ("%s", "%s", "has_letters"),
    ("Name", "name", "not_copied"),
    ("a" * 20, "b" * 1001, "max_chars"),
    ("Close the window now and never again open it", "Zu", "length_ratio"),
])
def test_clean_pair_names_the_filter(en, xx, failed):
    assert lc.clean_pair(en, xx) == (None, failed)


def test_clean_units_counts_before_and_after_each_filter():
    units = {"a": [("~Open", "Ö~ffnen"), ("Open", ""), ("OK", "OK")], "b": [("Save", "Sichern")]}
    kept, rows = lc.clean_units(units, lambda unit: "~")
    assert kept == {"a": [("Open", "Öffnen")], "b": [("Save", "Sichern")]}
    assert [r["filter"] for r in rows] == list(lc.FILTERS)
    assert rows[0] == {"filter": "translated", "before": 4, "after": 3}
    assert rows[-1]["after"] == 2
    assert all(r["after"] == n["before"] for r, n in zip(rows, rows[1:]))


def word(*numbers: int) -> str:
    """Numbers spelled in letters, so that near-duplicate keys (letters only) differ."""
    return "".join(chr(97 + int(d)) for n in numbers for d in f"{n:02d}")


def fake_units(n_units: int = 12, per_unit: int = 30) -> lc.Units:
    return {f"mod{u:02d}": [(f"Sentence {word(u)} {word(i)} in module", f"Satz {word(u, i)} hier")
                            for i in range(per_unit)] for u in range(n_units)}


def test_split_holds_out_whole_modules_and_no_near_duplicates():
    units = fake_units()
    units["mod00"].append(("Cancel", "Abbrechen"))
    for name in units:   # the same generic string in every module, with varying punctuation
        units[name].append(("Cancel!", "Abbrechen!"))
    splits, report = lc.split_units(units, seed=3, fraction=0.1, min_pairs=10)
    held = report["heldout_modules"]
    assert held["val"] and held["test"] and not set(held["val"]) & set(held["test"])
    for split in ("val", "test"):
        modules = {en.split()[1] for en, _ in splits[split] if en.startswith("Sentence")}
        assert modules and modules <= {word(int(m[3:])) for m in held[split]}
    train_keys = {lc.near_key(x) for pair in splits["train"] for x in pair}
    for en, xx in splits["val"] + splits["test"]:
        assert lc.near_key(en) not in train_keys and lc.near_key(xx) not in train_keys
    assert ("Cancel!", "Abbrechen!") in splits["train"]
    assert report["duplicates_removed"]["train"] == len(units) - len(held["val"]) - len(
        held["test"]) - 1
    again, _ = lc.split_units(units, seed=3, fraction=0.1, min_pairs=10)
    assert again == splits
    other, other_report = lc.split_units(units, seed=4, fraction=0.1, min_pairs=10)
    assert other_report["heldout_modules"] != held


def test_split_with_few_modules_keeps_everything_in_training():
    splits, report = lc.split_units(fake_units(n_units=2))
    assert len(splits["train"]) == 60 and not splits["val"] and not splits["test"]


def test_license_summary_of_both_copyright_formats():
    dep5 = ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
            "Files: *\nCopyright: 2000 Someone\nLicense: MPL-2.0\n text\n\n"
            "Files: extras/*\nCopyright: x\nLicense: Apache-2.0\n")
    assert lc.license_summary(dep5) == {"format": "machine-readable (DEP-5)", "main": "MPL-2.0",
                                        "all": ["Apache-2.0", "MPL-2.0"]}
    free = "This package is distributed under the GNU General Public License, version 2.\n"
    assert lc.license_summary(free)["main"].startswith("GNU General Public License")


# ------------------------------------------------------------------ packages and the command

def missing_tool(monkeypatch, tool: str) -> None:
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == tool
                        else real(name, *a, **k))


@pytest.mark.parametrize("tool", ["apt-get", "dpkg-deb"])
def test_a_missing_tool_names_itself_and_the_files_needed(monkeypatch, tmp_path, tool):
    missing_tool(monkeypatch, tool)
    with pytest.raises(lc.ToolMissing) as info:
        lc.fetch_debs(["libreoffice-l10n-de"], tmp_path)
    assert tool in str(info.value) and "libreoffice-l10n-de_*.deb" in str(info.value)


def build_deb(folder: Path, name: str, files: dict[str, bytes],
              copyright_text: str = "Files: *\nCopyright: x\nLicense: MPL-2.0\n") -> Path:
    """A tiny binary package built with dpkg-deb (files: path inside the package -> bytes)."""
    tree = folder / f"tree-{name}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: 1:7.4-1\nArchitecture: all\nMaintainer: t <t@t>\n"
        f"Description: test\n test\n")
    files = {**files, f"usr/share/doc/{name}/copyright": copyright_text.encode()}
    for path, data in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_bytes(data)
    deb = folder / f"{name}_7.4-1_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb)],
                   check=True, capture_output=True)
    shutil.rmtree(tree)
    return deb


def ui_catalogs(lang: str, n_catalogs: int = 8) -> dict[str, bytes]:
    files = {}
    for c in range(n_catalogs):
        entries = [(f"ctx{i}", f"~Open file {word(c, i)} now", None,
                    [f"Datei {word(c, i)} ö~ffnen"]) for i in range(40)]
        entries.append((None, "_Cancel", None, ["_Abbrechen"]))      # in every catalog
        entries.append((None, "OK", None, ["OK"]))                    # copied
        entries.append((None, "%d file", "%d files", ["%d Datei", "%d Dateien"]))
        files[f"{lc.LO_UI_ROOT}/{lang}/LC_MESSAGES/cat{c}.mo"] = make_mo(entries)
    return files


@pytest.mark.skipif(not HAVE_DPKG, reason="needs dpkg-deb")
def test_command_builds_ui_corpus_from_cached_debs(tmp_path, monkeypatch, capsys):
    debs = tmp_path / "debs"
    debs.mkdir()
    build_deb(debs, "libreoffice-l10n-de", ui_catalogs("de"))
    missing_tool(monkeypatch, "apt-get")   # everything needed is in --debs: apt-get not used
    out = tmp_path / "corpora"
    argv = ["--corpus", "libreoffice-ui", "--langs", "de", "--out", str(out), "--debs", str(debs)]
    assert dd.main(argv) == 0
    folder = out / "libreoffice-ui" / "de-en"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["copyright.libreoffice-l10n-de", "provenance.json", "test.de", "test.en",
                     "train.de", "train.en", "val.de", "val.en"]
    prov = json.loads((folder / "provenance.json").read_text())
    assert prov["packages"][0]["version"] == "1:7.4-1"
    assert prov["packages"][0]["license"]["main"] == "MPL-2.0"
    assert len(prov["packages"][0]["deb_sha256"]) == 64
    rows = {r["filter"]: r for r in prov["filters"]}
    assert rows["translated"]["before"] == 8 * 44 and rows["not_copied"]["after"] == 8 * 43
    for split in ("train", "val", "test"):
        en = (folder / f"{split}.en").read_text().splitlines()
        de = (folder / f"{split}.de").read_text().splitlines()
        assert len(en) == len(de) == prov["split"][split] == prov["files"][f"{split}.en"]["lines"]
        assert not any("~" in x or "_" in x for x in en + de)
    train = (folder / "train.en").read_text().splitlines()
    assert train.count("Cancel") == 1 and "%d files" in train
    assert prov["split"]["val"] and prov["split"]["test"]
    assert "ok:" in capsys.readouterr().out


@pytest.mark.skipif(not HAVE_DPKG, reason="needs dpkg-deb")
def test_command_builds_help_corpus_aligned_by_file_and_id(tmp_path):
    debs = tmp_path / "debs"
    debs.mkdir()
    en_files, de_files = {}, {}
    for section in ("scalc/01", "swriter/guide", "simpress/02", "sdraw/01", "smath/01"):
        for page in range(3):
            en_par = {f"par_id{section[1:4]}{page}{i}":
                      f"Paragraph {word(i)} of {section} page {word(page)}."
                      for i in range(30)}
            de_par = {k: v.replace("Paragraph", "Absatz").replace("page", "Seite")
                      for k, v in en_par.items()}
            de_par.pop(next(iter(de_par)))     # one paragraph missing in German
            rel = f"text/{section}/{page}.html"
            en_files[f"{lc.LO_HELP_ROOT}/en-US/{rel}"] = help_page("en", en_par).encode()
            de_files[f"{lc.LO_HELP_ROOT}/de/{rel}"] = help_page("de", de_par).encode()
    build_deb(debs, "libreoffice-help-en-us", en_files)
    build_deb(debs, "libreoffice-help-de", de_files)
    out = tmp_path / "corpora"
    argv = ["--corpus", "libreoffice-help", "--langs", "de", "--out", str(out), "--debs",
            str(debs)]
    assert dd.main(argv) == 0
    folder = out / "libreoffice-help" / "de-en"
    prov = json.loads((folder / "provenance.json").read_text())
    assert prov["filters"][0]["before"] == 15 * 29
    assert [p["name"] for p in prov["packages"]] == ["libreoffice-help-en-us",
                                                      "libreoffice-help-de"]
    test_en = (folder / "test.en").read_text().splitlines()
    held = prov["heldout_modules"]["test"]
    assert test_en and all(any(m.removeprefix("text/") in line for m in held) for line in test_en)
    for en, de in zip((folder / "train.en").read_text().splitlines(),
                      (folder / "train.de").read_text().splitlines()):
        assert de == en.replace("Paragraph", "Absatz").replace("page", "Seite")


def test_command_errors_are_one_line(tmp_path, monkeypatch, capsys):
    missing_tool(monkeypatch, "apt-get")
    argv = ["--corpus", "libreoffice-ui", "--langs", "de", "--out", str(tmp_path / "o"),
            "--debs", str(tmp_path / "debs")]
    assert dd.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: apt-get not found") and "\n" not in err
    with pytest.raises(SystemExit):
        dd.main(["--corpus", "nope"])
    with pytest.raises(SystemExit):
        dd.main(["--langs", "es"])   # multi30k has no Spanish


def test_langs_accept_commas_and_the_corpora_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv(dd.CORPORA_ENV, str(tmp_path / "c"))
    args = dd.parse_args(["--corpus", "all", "--langs", "de,fr", "es"])
    assert args.corpora == list(dd.CORPORA) and args.langs == ["de", "fr", "es"]
    assert args.out == tmp_path / "c"
    assert dd.parse_args([]).langs == list(dd.LANGS)


@pytest.mark.skipif(os.environ.get("S2S_L10N_REAL") != "1",
                    reason="set S2S_L10N_REAL=1 to fetch real Debian packages (apt-get download)")
def test_real_libreoffice_ui_build(tmp_path):
    results = lc.build("libreoffice-ui", ["de"], tmp_path / "out", tmp_path / "work")
    counts = results[0].counts
    assert counts["extracted"] > 20000 and counts["train"] > 10000
    assert counts["val"] > 0 and counts["test"] > 0
