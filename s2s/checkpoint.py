"""Checkpoint files: atomic writes, safe loads, averaging.

Two kinds of file, each a dict with ``format`` and ``version`` keys:
- a training state (``s2s-train-state``): everything ``--resume`` needs;
- a model file (``s2s-model``): weights, model config and SentencePiece model(s); all that
  inference needs, nothing more.
Files are loaded with ``torch.load(weights_only=True)``: loading never runs code. Version 1
files name the output layer's weights ``output.weight``; version 2 ``output.linear.weight``
(s2s.model.seq2seq.upgrade_state_dict reads both). Every file the project writes goes through
``atomic_file``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import torch

MODEL_FORMAT = "s2s-model"
TRAIN_STATE_FORMAT = "s2s-train-state"
SHORTLIST_FORMAT = "s2s-shortlist"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)


class CheckpointError(ValueError):
    """A checkpoint that is missing, truncated, foreign or of an unknown version."""


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Write ``path`` so that it holds either the old or the new content, never a partial one:
    a temp file in the same folder, fsync, rename, fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(handle, mode, encoding=encoding) as temp:
            yield temp
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_save(payload: dict[str, Any], path: str | Path) -> None:
    """torch.save ``payload`` to ``path`` atomically."""
    with atomic_file(path) as handle:
        torch.save(payload, handle)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_file(path) as handle:
        handle.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_file(path, "w") as handle:
        handle.write(text)


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
        if "weights_only" in reason or "Weights only" in reason:   # never pass torch's advice on
            reason = ("it holds objects other than tensors and plain data, which a safe load "
                      "refuses (loading them could run code)")
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated, corrupt or not a torch file): "
            f"{reason}") from None
    if not isinstance(payload, dict) or "format" not in payload:
        raise CheckpointError(f"{path} is not an s2s checkpoint (no format tag)")
    if payload["format"] != expected_format:
        raise CheckpointError(
            f"{path} is a {payload['format']!r} file, expected {expected_format!r}")
    version = payload.get("version")
    if version not in READABLE_VERSIONS:
        raise CheckpointError(f"{path} has format version {version!r}; this code reads versions "
                              f"{', '.join(map(str, READABLE_VERSIONS))}")
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
