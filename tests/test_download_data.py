"""Tests for scripts/download_data.py: small fake corpora, no network."""

from __future__ import annotations

import gzip
import hashlib
import importlib
import io
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
dd = importlib.import_module("scripts.download_data")

EN = ["A man rides a bike.", "Two dogs play.", "A child smiles."]
DE = ["Ein Mann fährt Rad.", "Zwei Hunde spielen.", "Ein Kind lächelt."]


@pytest.fixture
def small(monkeypatch):
    """Expected counts for a 3-line `val` split and no known checksums."""
    monkeypatch.setattr(dd, "EXPECTED_LINES", {"val": 3})
    monkeypatch.setattr(dd, "SHA256", {})


def write(folder: Path, name: str, lines: list[str], gz: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = "".join(f"{line}\n" for line in lines).encode("utf-8")
    path = folder / (f"{name}.gz" if gz else name)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def run(src: Path | None, out: Path, *extra: str) -> int:
    argv = ["--out", str(out), "--splits", "val", "--langs", "en", "de", *extra]
    if src is not None:
        argv += ["--from", str(src)]
    return dd.main(argv)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_from_copies_aligned_files_byte_for_byte(small, tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    write(src, "val.en", EN), write(src, "val.de", DE)
    assert run(src, out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["val.de", "val.en"]
    for name in ("val.en", "val.de"):
        assert (out / name).read_bytes() == (src / name).read_bytes()


def test_summary_lists_lines_bytes_and_sha256(small, tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    write(src, "val.en", EN), write(src, "val.de", DE)
    assert run(src, out) == 0
    stdout = capsys.readouterr().out
    data = (src / "val.de").read_bytes()
    line = next(x for x in stdout.splitlines() if x.startswith("val.de "))
    assert "3 lines" in line and f"{len(data)} bytes" in line
    assert hashlib.sha256(data).hexdigest() in line


def test_line_count_mismatch_names_the_file(small, tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    write(src, "val.en", EN), write(src, "val.de", DE + ["Noch ein Satz."])
    assert run(src, out) == 1
    err = one_line_error(capsys)
    assert "val.de" in err and "expected 3" in err and "found 4" in err


def test_unaligned_languages_are_refused(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(dd, "EXPECTED_LINES", {})  # no expected count: alignment alone
    monkeypatch.setattr(dd, "SHA256", {})
    src, out = tmp_path / "src", tmp_path / "out"
    write(src, "val.en", EN), write(src, "val.de", DE[:2])
    assert run(src, out) == 1
    err = one_line_error(capsys)
    assert "not line-aligned" in err and "val.de has 2 lines" in err and "val.en has 3" in err


def test_empty_line_is_refused(small, tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    write(src, "val.en", EN), write(src, "val.de", [DE[0], "", DE[2]])
    assert run(src, out) == 1
    err = one_line_error(capsys)
    assert "val.de" in err and "line 2 is empty" in err


def test_invalid_utf8_is_refused(small, tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    write(src, "val.en", EN)
    (src / "val.de").write_bytes("\n".join(DE).encode("latin-1") + b"\n")
    assert run(src, out) == 1
    assert "not valid UTF-8" in one_line_error(capsys)


def test_gz_input_in_from_folder_is_accepted(small, tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    write(src, "val.en", EN, gz=True), write(src, "val.de", DE)
    assert run(src, out) == 0
    assert (out / "val.en").read_text(encoding="utf-8") == "".join(f"{x}\n" for x in EN)


def test_rerun_keeps_present_valid_files(small, tmp_path, capsys, monkeypatch):
    src, out = tmp_path / "src", tmp_path / "out"
    write(src, "val.en", EN), write(src, "val.de", DE)
    assert run(src, out) == 0
    capsys.readouterr()

    def no_fetch(*args, **kwargs):
        raise AssertionError("a present valid file was fetched again")

    monkeypatch.setattr(dd, "stage", no_fetch)
    assert run(src, out) == 0
    assert "2 kept" in capsys.readouterr().out


def test_force_fetches_again(small, tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    write(src, "val.en", EN), write(src, "val.de", DE)
    assert run(src, out) == 0
    assert run(src, out, "--force") == 0
    assert "2 written" in capsys.readouterr().out.splitlines()[-1]


def test_download_failure_exits_1_and_suggests_from(small, tmp_path, capsys, monkeypatch):
    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    out = tmp_path / "out"
    assert run(None, out) == 1
    err = one_line_error(capsys)
    assert "--from" in err and "no network" in err
    assert list(out.iterdir()) == []


def test_no_partial_file_left_after_failure(small, tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    write(src, "val.en", EN), write(src, "val.de", DE[:2])  # en is fine, de is short
    assert run(src, out) == 1
    assert list(out.iterdir()) == []  # neither final files nor temp files


def fake_server(monkeypatch, files: dict[str, list[str]]) -> list[str]:
    """Serve gzipped `files` (keyed by upstream file name) through urllib.request.urlopen."""
    seen: list[str] = []

    def urlopen(url, *args, **kwargs):
        seen.append(url)
        name = url.rsplit("/", 1)[-1].removesuffix(".gz")
        return io.BytesIO(gzip.compress("".join(f"{x}\n" for x in files[name]).encode()))

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return seen


def test_download_maps_split_names_and_checks_sha256(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(dd, "EXPECTED_LINES", {"test2016": 3})
    en_sha = hashlib.sha256("".join(f"{x}\n" for x in EN).encode()).hexdigest()
    monkeypatch.setattr(dd, "SHA256", {"test2016.en": en_sha})
    seen = fake_server(monkeypatch, {"test_2016_flickr.en": EN})
    out = tmp_path / "out"
    assert dd.main(["--out", str(out), "--splits", "test2016", "--langs", "en"]) == 0
    assert seen == [f"{dd.BASE_URL}/test_2016_flickr.en.gz"] and dd.COMMIT in seen[0]
    assert hashlib.sha256((out / "test2016.en").read_bytes()).hexdigest() == en_sha


def test_download_sha256_mismatch_is_an_error(small, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(dd, "SHA256", {"val.en": "0" * 64})
    fake_server(monkeypatch, {"val.en": EN, "val.de": DE})
    out = tmp_path / "out"
    assert run(None, out) == 1
    assert "val.en" in one_line_error(capsys) and list(out.iterdir()) == []


def test_from_sha256_mismatch_only_warns(small, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(dd, "SHA256", {"val.en": "0" * 64})
    src, out = tmp_path / "src", tmp_path / "out"
    write(src, "val.en", EN), write(src, "val.de", DE)
    assert run(src, out) == 0
    assert "warning:" in capsys.readouterr().err and (out / "val.en").is_file()


SHARED_BESIDE_CHECKOUT = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_multi30k() -> Path | None:
    """S2S_SHARED_DATA, else the shared data folder beside the checkout (CI has one)."""
    root = os.environ.get("S2S_SHARED_DATA") or (
        str(SHARED_BESIDE_CHECKOUT) if SHARED_BESIDE_CHECKOUT.is_dir() else "")
    if not root:
        return None
    for folder in (Path(root) / "multi30k", Path(root)):
        if (folder / "train.en").is_file() or (folder / "train.en.gz").is_file():
            return folder
    return None


@pytest.mark.skipif(shared_multi30k() is None, reason="set S2S_SHARED_DATA to a multi30k copy")
def test_real_shared_corpus_matches_counts_and_checksums(tmp_path, capsys):
    out = tmp_path / "m30k"
    assert dd.main(["--from", str(shared_multi30k()), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err
    for name, sha in dd.SHA256.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == sha
        assert sha in captured.out
