"""Scratch buffers reused from one call to the next.

A freshly allocated buffer costs a page fault per 4 KiB page the first time it is written: glibc
hands allocations above its mmap threshold (at most 32 MiB) straight back to the kernel when
they are freed, so a 1024 x 8000 fp32 chunk of logits allocated at every training step costs
about as much to fault in again as to compute (measured in the fused output loss under bf16:
13 ms per 32 MiB copy into a new buffer, against 0.7 ms into a reused one). Buffers are kept
per thread, so concurrent callers never share one.
"""

from __future__ import annotations

import math
import threading

import torch


class Workspace(threading.local):
    """Named scratch buffers, grown on demand and never shrunk. A view handed out is valid
    until the next ``get`` of the same name, dtype and device; it must not escape the caller
    (e.g. be saved for backward or returned)."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, torch.dtype, torch.device], torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: torch.dtype,
            device: torch.device) -> torch.Tensor:
        """An uninitialized tensor of ``shape`` (contiguous) backed by the named buffer."""
        key = (name, dtype, torch.device(device))
        needed = math.prod(shape)
        buffer = self._buffers.get(key)
        if buffer is None or buffer.numel() < needed:
            buffer = torch.empty(needed, dtype=dtype, device=device)
            self._buffers[key] = buffer
        return buffer[:needed].view(shape)
