"""A training run's folder: the one place that knows its file names.

    config.yaml            the run's full config
    run.json               the run's id (every training state carries it) and how it started
    metrics.jsonl          one JSON record per log line (kind "train" or "valid")
    spm.src.model          SentencePiece model (joint, or the source side)
    spm.tgt.model          the target side's, for separate vocabularies
    step-<N>.pt            resumable training states, the last ``keep_last`` kept
    latest.txt             names the newest training state
    model.pt / best.pt     model files: the latest, and the best by the early-stopping metric
    prepared/              the prepared data (s2s.training.prepare), unless data.prepared_dir
    curves.png tensorboard/   drawn by s2s-train (scripts.curves)
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from s2s.checkpoint import (
    TRAIN_STATE_FORMAT,
    atomic_save,
    atomic_write_bytes,
    atomic_write_text,
    load_checkpoint,
)
from s2s.config import Config
from s2s.tokenizer import Tokenizer

RUN_INFO_FILE = "run.json"
# What a run writes into its folder (prepared/ is data, checked for staleness, and kept).
RUN_FILES = ("config.yaml", RUN_INFO_FILE, "metrics.jsonl", "latest.txt", "model.pt", "best.pt",
             "averaged.pt", "spm.src.model", "spm.tgt.model", "curves.png")
RUN_DIRS = ("tensorboard",)


class RunFolderError(RuntimeError):
    """A run folder that cannot be used as asked: a previous run's files where a new run would
    mix with them, nothing to resume, too few training states to average."""


class RunFolder:
    def __init__(self, path: str | Path, keep_last: int = 3):
        self.path = Path(path)
        self.keep_last = keep_last

    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def model_file(self) -> Path:
        return self.path / "model.pt"

    @property
    def best_file(self) -> Path:
        return self.path / "best.pt"

    @property
    def info_file(self) -> Path:
        return self.path / RUN_INFO_FILE

    # ---- a new run's folder -----------------------------------------------------------------
    def previous_run_entries(self, keep: Path | None = None) -> list[Path]:
        """What the folder holds besides ``keep`` (the prepared data, when it lives inside):
        anything there would mix with a new run's files."""
        if not self.path.is_dir():
            return []
        keep_resolved = keep.resolve() if keep is not None else None
        return sorted(entry for entry in self.path.iterdir()
                      if keep_resolved is None or entry.resolve() != keep_resolved)

    def check_new_run(self, keep: Path | None = None, overwrite: bool = False) -> None:
        """Refuse to start a new run in a folder holding another run's files, unless
        ``overwrite`` (then ``clear`` removes them)."""
        entries = self.previous_run_entries(keep)
        if entries and not overwrite:
            names = ", ".join(entry.name for entry in entries[:5])
            more = f" and {len(entries) - 5} more" if len(entries) > 5 else ""
            raise RunFolderError(
                f"run folder {self.path} is not empty ({names}{more}): continue its run with "
                "--resume, replace it with --overwrite, or choose another out_dir")

    def clear(self) -> list[Path]:
        """Remove a previous run's files (RUN_FILES, RUN_DIRS, step-*.pt); returns them.
        Other entries (the prepared data, files a user put there) stay."""
        removed = []
        for name in RUN_FILES:
            path = self.path / name
            if path.is_file():
                path.unlink()
                removed.append(path)
        for name in RUN_DIRS:
            path = self.path / name
            if path.is_dir():
                shutil.rmtree(path)
                removed.append(path)
        for path in self.states():
            path.unlink(missing_ok=True)
            removed.append(path)
        return removed

    # ---- config and metrics ---------------------------------------------------------------
    def start(self, config: Config, info: dict[str, Any] | None = None) -> str:
        """A new run: write its config, run.json (a new run id plus ``info``) and an empty
        metrics log; returns the run id."""
        self.path.mkdir(parents=True, exist_ok=True)
        run_id = uuid.uuid4().hex
        atomic_write_text(self.info_file, json.dumps(
            {"run_id": run_id, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(info or {})},
            indent=2) + "\n")
        atomic_write_text(self.config_file, yaml.safe_dump(config.model_dump(mode="json"),
                                                           sort_keys=False))
        atomic_write_text(self.metrics_file, "")
        return run_id

    def run_id(self) -> str | None:
        """The id of the run in the folder (None: none, or a run from before run ids)."""
        if not self.info_file.is_file():
            return None
        return json.loads(self.info_file.read_text(encoding="utf-8")).get("run_id")

    def append_metric(self, record: dict[str, Any]) -> None:
        with open(self.metrics_file, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def metrics(self) -> list[dict[str, Any]]:
        """The logged records; a line cut short by a kill is skipped."""
        if not self.metrics_file.is_file():
            return []
        records = []
        for line in self.metrics_file.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def truncate_metrics(self, step: int) -> None:
        """Drop records written after the training state a resume starts from."""
        if not self.metrics_file.is_file():
            return
        kept = [record for record in self.metrics() if record["step"] <= step]
        atomic_write_text(self.metrics_file, "".join(json.dumps(r) + "\n" for r in kept))

    # ---- tokenizer ----------------------------------------------------------------------
    def save_tokenizer(self, tokenizer: Tokenizer) -> None:
        save_tokenizer_files(self.path, tokenizer)

    # ---- training states ----------------------------------------------------------------
    def state_file(self, step: int) -> Path:
        return self.path / f"step-{step:08d}.pt"

    def save_state(self, payload: dict[str, Any], step: int) -> Path:
        """Write a training state, point latest.txt at it, drop all but the last keep_last."""
        path = self.state_file(step)
        atomic_save(payload, path)
        atomic_write_text(self.path / "latest.txt", path.name + "\n")
        for old in self.states()[: -self.keep_last]:
            old.unlink(missing_ok=True)
        return path

    def states(self) -> list[Path]:
        """Training states, oldest first."""
        return sorted(self.path.glob("step-*.pt"))

    def run_states(self) -> list[Path]:
        """The training states of the folder's own run, oldest first: states that another run
        left there (a different run id) are not among them."""
        run_id = self.run_id()
        return [path for path in self.states()
                if load_checkpoint(path, TRAIN_STATE_FORMAT).get("run_id") == run_id]

    def last_states(self, count: int) -> list[Path]:
        """The newest ``count`` states of the folder's run; RunFolderError when it has fewer."""
        if count < 1:
            raise RunFolderError(f"--last must be at least 1 (got {count})")
        states = self.run_states()
        if len(states) < count:
            others = len(self.states()) - len(states)
            note = f" ({others} other state(s) there belong to an earlier run)" if others else ""
            raise RunFolderError(
                f"{self.path} holds {len(states)} training state(s) of its run, fewer than "
                f"the {count} asked for{note}; give a smaller --last (train.keep_last keeps "
                "that many)")
        return states[-count:]

    def latest_state(self) -> Path | None:
        """The newest training state that exists (the pointer, else the highest step)."""
        pointer = self.path / "latest.txt"
        if pointer.is_file():
            candidate = self.path / pointer.read_text(encoding="utf-8").strip()
            if candidate.is_file():
                return candidate
        states = self.states()
        return states[-1] if states else None


def save_tokenizer_files(folder: Path, tokenizer: Tokenizer) -> None:
    """spm.src.model (joint, or the source side) and spm.tgt.model (separate vocabularies
    only; a stale one is removed) in ``folder``."""
    src_bytes, tgt_bytes = tokenizer.model_bytes()
    if tgt_bytes is not None:
        atomic_write_bytes(folder / "spm.tgt.model", tgt_bytes)
    else:
        (folder / "spm.tgt.model").unlink(missing_ok=True)
    atomic_write_bytes(folder / "spm.src.model", src_bytes)


def load_tokenizer_files(folder: Path) -> Tokenizer:
    """The tokenizer ``save_tokenizer_files`` wrote to ``folder``."""
    tgt = folder / "spm.tgt.model"
    return Tokenizer((folder / "spm.src.model").read_bytes(),
                     tgt.read_bytes() if tgt.is_file() else None)
