#!/usr/bin/env python3
"""Carry a model file back from the lent GPU within its 16 MiB-per-file limit.

bench/ablation/gpu_transport.py pack MODEL.pt PREFIX     # fp16 weights, PREFIX.part00, 01, ...
bench/ablation/gpu_transport.py unpack PREFIX MODEL.pt   # joins the parts, fp32 weights again

Packing rounds each floating-point weight to fp16 (the rest of the model file is unchanged);
unpacking gives fp32 tensors holding those rounded values, so a model scored after the trip
may differ from the GPU's scores in the last digit. A sha256 of the joined bytes is checked.
"""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path

import torch

PART_BYTES = 15 * 1024 * 1024


def pack(model: Path, prefix: Path) -> list[Path]:
    payload = torch.load(model, map_location="cpu", weights_only=False)
    payload["state_dict"] = {name: tensor.half() if tensor.is_floating_point() else tensor
                             for name, tensor in payload["state_dict"].items()}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    prefix.with_name(prefix.name + ".sha256").write_text(hashlib.sha256(data).hexdigest() + "\n")
    parts = []
    for number, start in enumerate(range(0, len(data), PART_BYTES)):
        part = prefix.with_name(f"{prefix.name}.part{number:02d}")
        part.write_bytes(data[start:start + PART_BYTES])
        parts.append(part)
    return parts


def unpack(prefix: Path, model: Path) -> None:
    parts = sorted(prefix.parent.glob(prefix.name + ".part*"))
    data = b"".join(part.read_bytes() for part in parts)
    digest = prefix.with_name(prefix.name + ".sha256")
    if digest.exists() and digest.read_text().strip() != hashlib.sha256(data).hexdigest():
        sys.exit(f"{prefix}: the joined parts do not match {digest}")
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    payload["state_dict"] = {name: tensor.float() if tensor.is_floating_point() else tensor
                             for name, tensor in payload["state_dict"].items()}
    torch.save(payload, model)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("pack", "unpack"):
        sys.exit(__doc__)
    action, first, second = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    if action == "pack":
        print("\n".join(str(part) for part in pack(first, second)))
    else:
        unpack(first, second)
