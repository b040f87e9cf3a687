"""Backward compatibility: a model file written by an earlier release (format version 1, kept in
tests/fixtures with the translations that release produced) still loads and translates the
same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s2s.checkpoint import MODEL_FORMAT, load_checkpoint
from s2s.inference.search import SearchOptions
from s2s.inference.translator import TranslateOptions, Translator

FIXTURES = Path(__file__).resolve().parent / "fixtures"
V1_FILE = FIXTURES / "model_format_v1.pt"
EXPECTED = json.loads((FIXTURES / "model_format_v1.json").read_text(encoding="utf-8"))
OPTIONS = {
    "greedy": TranslateOptions(search=SearchOptions(beam_size=1)),
    "beam4_nbest2": TranslateOptions(search=SearchOptions(beam_size=4, n_best=2)),
    "beam4_full_vocab": TranslateOptions(search=SearchOptions(beam_size=4),
                                         use_shortlist=False),
}


def test_the_fixture_is_a_version_1_file():
    payload = load_checkpoint(V1_FILE, MODEL_FORMAT)
    assert payload["version"] == 1 and "output.weight" in payload["state_dict"]


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_a_version_1_file_translates_as_its_release_did(name):
    translator = Translator.from_file(V1_FILE)
    results = translator.translate(EXPECTED["sources"], OPTIONS[name])
    expected = EXPECTED[name]
    assert [r.text for r in results] == [e["text"] for e in expected]
    assert [[a.text for a in r.alternatives] for r in results] == [
        e["alternatives"] for e in expected]
    assert [r.score for r in results] == pytest.approx([e["score"] for e in expected], abs=1e-4)
