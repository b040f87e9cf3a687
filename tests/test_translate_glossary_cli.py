"""s2s-translate --glossary: the terms reach the translations, a bad file stops with status 2,
and lines that cannot meet the glossary are counted in a warning."""

from __future__ import annotations

import json

import pytest

from s2s.training.demo_task import generate_pairs
from scripts.translate import main


@pytest.fixture(scope="module")
def model(trained_demo_run):
    return str(trained_demo_run / "model.pt")


def run(model, tmp_path, glossary, sentences, *extra):
    path = tmp_path / "glossary.json"
    path.write_text(json.dumps(glossary) if not isinstance(glossary, str) else glossary,
                    encoding="utf-8")
    return main(["--model", model, "--device", "cpu", "--no-progress", "--beam", "3",
                 "--glossary", str(path), *extra, *sentences])


def test_the_glossary_terms_appear(model, tmp_path, capsys):
    sentences, _ = generate_pairs(3, seed=5)
    word = sentences[0].split()[0]
    assert run(model, tmp_path, [{"source": word, "target": "77"}], sentences[:1]) == 0
    out = capsys.readouterr()
    assert "77" in out.out and "could not meet" not in out.err


@pytest.mark.parametrize("content", [
    "[{\"source\": \"x\"}]",                               # a term without target
    "not json",
    json.dumps([{"source": "the", "target": "\u4e2d\u6587"}]),   # not in the vocabulary
])
def test_a_bad_glossary_exits_2_with_the_message(model, tmp_path, capsys, content):
    assert run(model, tmp_path, content, ["the first of may"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: glossary") and "Traceback" not in err


def test_a_missing_glossary_file_exits_2(model, tmp_path, capsys):
    code = main(["--model", model, "--device", "cpu", "--glossary",
                 str(tmp_path / "missing.json"), "a"])
    assert code == 2 and "missing.json" in capsys.readouterr().err


def test_unmet_lines_are_counted_on_stderr(model, tmp_path, capsys):
    sentences, _ = generate_pairs(2, seed=7)
    terms = [{"source": w, "target": "12.34.5678"} for w in {sentences[0].split()[0]}]
    # an output limit of one piece leaves no room for the term
    assert run(model, tmp_path, terms, sentences[:1], "--max-len-a", "0",
               "--max-len-b", "1") == 0
    assert "1 translated lines" in capsys.readouterr().err
