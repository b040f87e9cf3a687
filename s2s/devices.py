"""Where torch runs: device names to devices, and what the CPU can do natively."""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """A device that was asked for but is not available here."""


def resolve_device(name: str) -> torch.device:
    """"auto" -> CUDA when available, else the CPU; "cuda[:N]" needs CUDA; anything else is
    passed to torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but CUDA is not available")
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise DeviceError(f"unknown device {name!r}: {error}") from None


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 is
    emulated and slower than fp32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def training_amp_dtype(device: torch.device, amp: str) -> torch.dtype | None:
    """The autocast dtype of training (None: fp32). bf16 on CUDA or on a CPU with native bf16
    (AVX512-BF16 or AMX); fp16 on CUDA only. DeviceError where it would be emulated or
    unsupported: emulated bf16 is several times slower than fp32."""
    if amp == "none":
        return None
    if device.type == "cuda":
        return torch.bfloat16 if amp == "bf16" else torch.float16
    if amp == "fp16":
        raise DeviceError("train.amp fp16 needs CUDA; on the CPU use bf16 (with AVX512-BF16 or "
                          "AMX) or none")
    if device.type == "cpu" and not cpu_has_native_bf16():
        raise DeviceError("train.amp bf16: this CPU has no native bf16 (no AVX512-BF16 or AMX), "
                          "so bf16 would be emulated and slower than fp32; use train.amp none")
    return torch.bfloat16
