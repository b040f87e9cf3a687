"""A training run's folder: the one place that knows its file names.

    config.yaml            the run's full config
    metrics.jsonl          one JSON record per log line (kind "train" or "valid")
    spm.src.model          SentencePiece model (joint, or the source side)
    spm.tgt.model          the target side's, for separate vocabularies
    step-<N>.pt            resumable training states, the last ``keep_last`` kept
    latest.txt             names the newest training state
    model.pt / best.pt     model files: the latest, and the best by the early-stopping metric
    prepared/              the prepared data (s2s.training.prepare), unless data.prepared_dir
    curves.png tensorboard/   drawn by s2s-train (s2s_scripts.curves)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from s2s.checkpoint import atomic_save, atomic_write_bytes, atomic_write_text
from s2s.config import Config
from s2s.tokenizer import Tokenizer


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

    # ---- config and metrics ---------------------------------------------------------------
    def start(self, config: Config) -> None:
        """A new run: write its config and an empty metrics log."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config_file, yaml.safe_dump(config.model_dump(mode="json"),
                                                           sort_keys=False))
        atomic_write_text(self.metrics_file, "")

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
