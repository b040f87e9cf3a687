"""Checkpoint files: atomic writes, safe loads, rotation, averaging.

Two kinds of file, each a dict with ``format`` and ``version`` keys:
- a training state (``s2s-train-state``): everything ``--resume`` needs;
- a model file (``s2s-model``): weights, model config and SentencePiece model(s); all that
  inference needs, nothing more.
Files are loaded with ``torch.load(weights_only=True)``: loading never runs code.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

MODEL_FORMAT = "s2s-model"
TRAIN_STATE_FORMAT = "s2s-train-state"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that is missing, truncated, foreign or of an unknown version."""


def atomic_save(payload: dict[str, Any], path: str | Path) -> None:
    """Write ``payload`` with torch.save so that ``path`` holds either the old or the new file,
    never a partial one: temp file in the same folder, fsync, rename, fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as temp_file:
            torch.save(payload, temp_file)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def load_checkpoint(path: str | Path, expected_format: str,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint of ``expected_format``; raise CheckpointError with a clear reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch.load raises many types for foreign or broken bytes
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated, corrupt or not a torch file): "
            f"{reason}") from None
    if not isinstance(payload, dict) or "format" not in payload:
        raise CheckpointError(f"{path} is not an s2s checkpoint (no format tag)")
    if payload["format"] != expected_format:
        raise CheckpointError(
            f"{path} is a {payload['format']!r} file, expected {expected_format!r}")
    version = payload.get("version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {version!r}; this code reads version {FORMAT_VERSION}")
    return payload


def bytes_to_tensor(data: bytes) -> torch.Tensor:
    """Bytes as a uint8 tensor (storable under weights_only loading)."""
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).clone()


def tensor_to_bytes(tensor: torch.Tensor) -> bytes:
    return bytes(tensor.numpy().tobytes())


def average_state_dicts(state_dicts: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating-point tensors; other tensors are taken from the last one."""
    if not state_dicts:
        raise CheckpointError("nothing to average")
    keys = state_dicts[0].keys()
    for other in state_dicts[1:]:
        if other.keys() != keys:
            raise CheckpointError("checkpoints to average have different parameters")
    averaged = {}
    for key in keys:
        tensors = [sd[key] for sd in state_dicts]
        if tensors[0].is_floating_point():
            total = torch.stack([t.double() for t in tensors]).mean(0)
            averaged[key] = total.to(tensors[0].dtype)
        else:
            averaged[key] = tensors[-1].clone()
    return averaged


class CheckpointDir:
    """Rotating training states in a run folder.

    ``step-<N>.pt`` training states (last ``keep_last`` kept), ``latest.txt`` naming the newest,
    ``best.pt`` / ``model.pt`` model files written by the trainer.
    """

    def __init__(self, folder: str | Path, keep_last: int):
        self.folder = Path(folder)
        self.keep_last = keep_last

    def state_path(self, step: int) -> Path:
        return self.folder / f"step-{step:08d}.pt"

    def save_state(self, payload: dict[str, Any], step: int) -> Path:
        path = self.state_path(step)
        atomic_save(payload, path)
        self._write_pointer(path.name)
        self._rotate()
        return path

    def _write_pointer(self, name: str) -> None:
        pointer = self.folder / "latest.txt"
        temp = pointer.with_suffix(".tmp")
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(name + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, pointer)
        _fsync_dir(self.folder)

    def states(self) -> list[Path]:
        """Training states, oldest first."""
        return sorted(self.folder.glob("step-*.pt"))

    def _rotate(self) -> None:
        for old in self.states()[: -self.keep_last]:
            old.unlink(missing_ok=True)

    def latest_state(self) -> Path | None:
        """The newest training state that exists (the pointer, else the highest step)."""
        pointer = self.folder / "latest.txt"
        if pointer.is_file():
            candidate = self.folder / pointer.read_text(encoding="utf-8").strip()
            if candidate.is_file():
                return candidate
        states = self.states()
        return states[-1] if states else None
