"""Translator and the translate / evaluate / average commands on a tiny trained model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from s2s.checkpoint import MODEL_FORMAT, CheckpointError, load_checkpoint
from s2s.devices import cpu_has_native_bf16
from s2s.inference.search import SearchOptions
from s2s.inference.sentences import split_sentences
from s2s.inference.translator import InputTooLongError, TranslateOptions, Translator
from s2s.training.average import average_training_states
from s2s.training.demo_task import generate_pairs

SOURCES, REFERENCES = generate_pairs(12, seed=5)


@pytest.fixture(scope="module")
def translator(trained_demo_run) -> Translator:
    return Translator.from_file(trained_demo_run / "model.pt")


@pytest.mark.parametrize("beam", [1, 4])
def test_sentence_translates_the_same_alone_and_in_a_batch(translator, beam):
    options = TranslateOptions(search=SearchOptions(beam_size=beam))
    together = translator.translate(SOURCES, options)
    for text, result in zip(SOURCES, together):
        alone = translator.translate([text], options)[0]
        assert alone.text == result.text
        assert alone.score == pytest.approx(result.score, abs=1e-4)


def test_outputs_follow_input_order(translator):
    forward = [r.text for r in translator.translate(SOURCES)]
    backward = [r.text for r in translator.translate(SOURCES[::-1])]
    assert backward == forward[::-1]


def test_empty_and_blank_inputs_give_empty_output(translator):
    results = translator.translate(["", "   ", SOURCES[0], "\t"])
    assert [r.text for r in results[:2]] == ["", ""]
    assert results[3].text == ""
    assert results[2].tokens  # the real sentence still got translated


def test_too_long_input_is_an_error_naming_the_limit(translator):
    long_text = " ".join(["twenty-first"] * 400)
    with pytest.raises(InputTooLongError, match="at most 250"):
        translator.translate([SOURCES[0], long_text])


def test_n_best_alternatives_are_ordered(translator):
    options = TranslateOptions(search=SearchOptions(beam_size=4, n_best=3))
    for result in translator.translate(SOURCES[:4], options):
        scores = [c.normalized_score for c in result.alternatives]
        assert len(scores) == 3
        assert scores == sorted(scores, reverse=True)


def test_int8_translator_runs_and_differs_only_slightly(translator, trained_demo_run):
    quantized = Translator.from_file(trained_demo_run / "model.pt", dtype="int8")
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized")
               for m in quantized.model.modules())
    results = quantized.translate(SOURCES)
    assert len(results) == len(SOURCES)


def test_half_precision_on_cpu_is_refused(trained_demo_run):
    with pytest.raises(ValueError, match="needs CUDA"):
        Translator.from_file(trained_demo_run / "model.pt", dtype="fp16")


def test_bf16_on_a_cpu_without_native_bf16_is_refused(trained_demo_run, monkeypatch):
    monkeypatch.setattr("s2s.inference.translator.cpu_has_native_bf16", lambda: False)
    with pytest.raises(ValueError, match="emulated"):
        Translator.from_file(trained_demo_run / "model.pt", dtype="bf16")


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no AVX512-BF16 or AMX")
def test_bf16_on_a_cpu_with_native_bf16_translates(trained_demo_run):
    translator = Translator.from_file(trained_demo_run / "model.pt", dtype="bf16")
    assert all(p.dtype == torch.bfloat16 for p in translator.model.parameters())
    results = translator.translate(["", *SOURCES[:3]])
    assert results[0].text == "" and all(r.text for r in results[1:])


def test_split_sentences_keeps_order():
    assert split_sentences("One. Two!  Three?\nFour") == ["One.", "Two!", "Three?", "Four"]


def test_average_of_identical_checkpoints_equals_the_checkpoint(trained_demo_run, tmp_path):
    state = sorted(trained_demo_run.glob("step-*.pt"))[-1]
    output = tmp_path / "avg.pt"
    average_training_states([state, state, state], output)
    averaged = load_checkpoint(output, MODEL_FORMAT)["state_dict"]
    original = load_checkpoint(state, "s2s-train-state")["model"]
    assert averaged.keys() == original.keys()
    for name, value in original.items():
        assert torch.equal(averaged[name], value), name


def test_average_refuses_a_model_file(trained_demo_run, tmp_path):
    with pytest.raises(CheckpointError, match="s2s-train-state"):
        average_training_states([trained_demo_run / "model.pt"], tmp_path / "avg.pt")


def run_script(command: str, *args: str, stdin: str | None = None
               ) -> subprocess.CompletedProcess:
    """An installed console command (pyproject's [project.scripts]) of this environment."""
    executable = Path(sys.executable).parent / command
    return subprocess.run([str(executable), *args], input=stdin, capture_output=True, text=True,
                          timeout=120)


def test_translate_command_reads_stdin_and_writes_one_line_each(trained_demo_run, translator):
    done = run_script("s2s-translate", "--model", str(trained_demo_run / "model.pt"),
                      "--beam", "1", stdin="\n".join(SOURCES[:3]) + "\n")
    assert done.returncode == 0, done.stderr
    expected = [r.text for r in translator.translate(
        SOURCES[:3], TranslateOptions(search=SearchOptions(beam_size=1)))]
    assert done.stdout.splitlines() == expected


def test_translate_command_reports_a_missing_model(tmp_path):
    done = run_script("s2s-translate", "--model", str(tmp_path / "nope.pt"), "x")
    assert done.returncode == 2
    assert "checkpoint not found" in done.stderr


def test_evaluate_command_scores_and_writes_json(trained_demo_run, tmp_path):
    src, ref = tmp_path / "src.txt", tmp_path / "ref.txt"
    src.write_text("\n".join(SOURCES) + "\n")
    ref.write_text("\n".join(REFERENCES) + "\n")
    out = tmp_path / "scores.json"
    done = run_script("s2s-evaluate", "--model", str(trained_demo_run / "model.pt"),
                      "--src", str(src), "--ref", str(ref), "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "BLEU" in done.stdout and "nrefs:1|case:mixed" in done.stdout
    scores = json.loads(out.read_text())
    assert 0 <= scores["bleu"] <= 100 and 0 <= scores["chrf"] <= 100


def test_evaluate_command_on_a_hypothesis_file(tmp_path):
    ref = tmp_path / "ref.txt"
    ref.write_text("a cat sat on the mat\n")
    done = run_script("s2s-evaluate", "--hyp", str(ref), "--ref", str(ref))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("BLEU 100.00")
