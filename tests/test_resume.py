"""Resuming a killed run continues exactly like the uninterrupted run (CPU)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from s2s.checkpoint import TRAIN_STATE_FORMAT, atomic_save, load_checkpoint
from s2s.training.run_folder import RunFolder
from s2s.training.trainer import Trainer
from tests.helpers import tiny_demo_config

ROOT = Path(__file__).resolve().parent.parent


def train_losses(run_dir: Path) -> list[tuple[int, float]]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in records if r["kind"] == "train"]


def run_trainer(run_dir: Path, resume: bool, **overrides) -> None:
    trainer = Trainer.build(tiny_demo_config(run_dir, **overrides), resume=resume)
    trainer.train()


def test_resume_in_process_matches_uninterrupted(tmp_path):
    run_trainer(tmp_path / "full", resume=False)
    run_trainer(tmp_path / "split", resume=False, max_steps=12)
    run_trainer(tmp_path / "split", resume=True)
    full = train_losses(tmp_path / "full")
    assert len(full) == 20
    assert train_losses(tmp_path / "split") == full


def test_state_saved_with_a_retired_config_key_resumes(tmp_path):
    run_trainer(tmp_path / "split", resume=False, max_steps=12)
    state_path = RunFolder(tmp_path / "split").latest_state()
    state = load_checkpoint(state_path, TRAIN_STATE_FORMAT)
    state["config"]["data"]["test_split"] = "test2016"  # written by versions before its removal
    atomic_save(state, state_path)
    run_trainer(tmp_path / "split", resume=True)
    assert [step for step, _ in train_losses(tmp_path / "split")] == list(range(1, 21))


def test_kill_9_then_resume_matches_uninterrupted(tmp_path):
    config = tiny_demo_config(tmp_path / "run", max_steps=40, valid_every=3)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    command = [sys.executable, "-m", "scripts.train", "--config", str(config_file),
               "--quiet"]
    subprocess.run(command, check=True, capture_output=True)
    reference = train_losses(tmp_path / "run")
    shutil.rmtree(tmp_path / "run")

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    metrics = tmp_path / "run" / "metrics.jsonl"
    while time.time() < deadline and (
            not metrics.exists() or len(metrics.read_text().splitlines()) < 25):
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert len(train_losses(tmp_path / "run")) < 40, "the run ended before it was killed"

    subprocess.run([*command, "--resume"], check=True, capture_output=True)
    assert train_losses(tmp_path / "run") == reference
