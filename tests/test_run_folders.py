"""Run folders, averaging, vocabulary size, strict YAML and fine-tuning checks (s2s-train,
s2s-average, s2s-prepare)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from s2s.checkpoint import TRAIN_STATE_FORMAT, atomic_save, load_checkpoint
from s2s.config import ConfigError, load_config
from s2s.model.model_file import load_model_file
from s2s.training.run_folder import RunFolder, RunFolderError
from s2s.training.trainer import LanguageMismatchError, Trainer, fine_tuning_config
from scripts import average_checkpoints, prepare, train
from tests.helpers import tiny_demo_config


def config_file(tmp_path: Path, run_dir: Path, **train_overrides) -> Path:
    path = tmp_path / f"{run_dir.name}.yaml"
    config = tiny_demo_config(run_dir, **train_overrides)
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """A run of 10 steps with training states at steps 5 and 10."""
    run_dir = tmp_path_factory.mktemp("small") / "run"
    Trainer.build(tiny_demo_config(run_dir, max_steps=10)).train()
    return run_dir


def test_a_second_run_into_a_used_out_dir_is_refused(tmp_path, small_run, capsys):
    code = train.main(["--config", str(config_file(tmp_path, small_run)), "--quiet"])
    assert code == 2
    assert "not empty" in capsys.readouterr().err


def test_overwrite_removes_the_previous_runs_states(tmp_path):
    run_dir = tmp_path / "run"
    Trainer.build(tiny_demo_config(run_dir, max_steps=10)).train()
    Trainer.build(tiny_demo_config(run_dir, max_steps=5), overwrite=True).train()
    assert [p.name for p in RunFolder(run_dir).states()] == ["step-00000005.pt"]


def test_resume_with_nothing_to_resume_is_an_error(tmp_path, capsys):
    code = train.main(["--config", str(config_file(tmp_path, tmp_path / "empty")), "--resume",
                       "--quiet"])
    assert code == 2
    assert "nothing to resume" in capsys.readouterr().err


def _plant_foreign_state(run_dir: Path, step: int) -> Path:
    """A training state another run left in the folder (its run id differs)."""
    state = load_checkpoint(RunFolder(run_dir).states()[0], TRAIN_STATE_FORMAT)
    state["run_id"] = "an-earlier-run"
    path = RunFolder(run_dir).state_file(step)
    atomic_save(state, path)
    return path


def test_average_takes_only_the_states_of_the_folders_run(tmp_path, small_run, capsys):
    foreign = _plant_foreign_state(small_run, 99)
    try:
        output = tmp_path / "avg.pt"
        code = average_checkpoints.main(["--run-dir", str(small_run), "--last", "2",
                                         "--output", str(output)])
        assert code == 0
        assert load_model_file(output).meta["steps"] == [5, 10]
    finally:
        foreign.unlink()


def test_average_last_more_than_the_run_has_is_an_error(tmp_path, small_run, capsys):
    code = average_checkpoints.main(["--run-dir", str(small_run), "--last", "5",
                                     "--output", str(tmp_path / "avg.pt")])
    assert code == 2
    assert "fewer than the 5 asked for" in capsys.readouterr().err
    assert not (tmp_path / "avg.pt").exists()


def test_vocabulary_shortfall_is_reported_with_its_reason(tmp_path, capsys):
    path = config_file(tmp_path, tmp_path / "run")
    code = prepare.main(["--config", str(path), "--set", "tokenizer.vocab_size=8000"])
    captured = capsys.readouterr()
    assert code == 0
    assert "vocabulary: " in captured.out
    assert "tokenizer.vocab_size is 8,000 but SentencePiece made only" in captured.err


def test_duplicate_yaml_key_is_an_error_naming_key_and_line(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("name: a\ntrain:\n  lr: 0.001\n  max_steps: 5\n  lr: 0.01\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'lr' at line 5 .*first given at line 3"):
        load_config(path)


def test_fine_tuning_on_another_language_pair_is_refused(small_run, tmp_path):
    loaded = load_model_file(small_run / "model.pt")   # de->en (the tiny config's languages)
    config = tiny_demo_config(tmp_path / "tuned")
    config = config.model_copy(update={"data": config.data.model_copy(
        update={"src_lang": "en", "tgt_lang": "de"})})
    with pytest.raises(LanguageMismatchError, match="de->en .* en->de"):
        fine_tuning_config(config, loaded)


def test_init_from_is_recorded_in_config_yaml_and_log(small_run, tmp_path):
    model = small_run / "model.pt"
    run_dir = tmp_path / "tuned"
    code = train.main(["--config", str(config_file(tmp_path, run_dir, max_steps=1)),
                       "--init-from", str(model), "--quiet"])
    assert code == 0
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["train"]["init_from"] == str(model.resolve())
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["kind"] == "init" and records[0]["init_from"] == str(model.resolve())


def test_last_states_counts_only_the_folders_run(small_run):
    foreign = _plant_foreign_state(small_run, 1)
    try:
        with pytest.raises(RunFolderError, match="belong to an earlier run"):
            RunFolder(small_run).last_states(3)
    finally:
        foreign.unlink()
