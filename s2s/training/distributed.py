"""torch.distributed helpers: process group from torchrun's environment, reductions."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device_type: str) -> DistInfo:
    """Join the process group torchrun describes (WORLD_SIZE > 1); gloo on CPU, nccl on CUDA."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(minutes=30))
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def shutdown(info: DistInfo) -> None:
    """Leave the process group once every process has finished its collectives (a barrier,
    then destroy). The process should then end without interpreter finalization
    (scripts.train.end_process): gloo's worker threads may still hold a finished work whose
    tensors' Python objects they must release, and taking the GIL from a finalizing
    interpreter aborts the process (SIGABRT, "terminate called without an active
    exception") after training succeeded (pytorch/pytorch#190489)."""
    if not info.enabled or not dist.is_initialized():
        return
    dist.barrier()
    dist.destroy_process_group()


def all_reduce_sum(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    """Sum a few numbers over all processes (identity for a single process)."""
    if not info.enabled:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def gather_objects(value: Any, info: DistInfo) -> list[Any]:
    """Every process's ``value``, in rank order."""
    if not info.enabled:
        return [value]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def broadcast_object(value: Any, info: DistInfo) -> Any:
    """Rank 0's ``value`` on every process."""
    if not info.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
