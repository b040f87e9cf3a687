"""DDP with two gloo processes makes the same update as one process on the combined batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml

from s2s.training.data import collate
from s2s.training.distributed import DistInfo, shutdown
from s2s.training.run_folder import RunFolder
from s2s.training.trainer import Trainer
from scripts.train import end_process
from tests.helpers import tiny_demo_config


def fixed_pairs(trainer: Trainer, count: int) -> tuple[list[list[int]], list[list[int]]]:
    pairs = [trainer.data.train.pair(index) for index in range(count)]
    return [s.tolist() for s, _ in pairs], [t.tolist() for _, t in pairs]


def make_trainer(run_dir, info: DistInfo) -> Trainer:
    # no dropout: the processes' dropout streams differ by design
    config = tiny_demo_config(run_dir)
    config.model.dropout = 0.0
    config.model.emb_dropout = 0.0
    trainer = Trainer.build(config, info)
    return trainer


def record_gradients(trainer: Trainer) -> dict[str, torch.Tensor]:
    """Gradients as the optimizer sees them (after the all-reduce and clipping), filled in at
    the next update. Adam's first step moves a parameter by about lr * sign(gradient), so
    parameters alone differ by lr wherever a gradient is within rounding of zero."""
    seen: dict[str, torch.Tensor] = {}
    step = trainer.optimizer.step

    def recording_step(*args, **kwargs):
        for name, param in trainer.model.named_parameters():
            if param.grad is not None:
                seen[name] = param.grad.detach().clone()
        return step(*args, **kwargs)

    trainer.optimizer.step = recording_step
    return seen


def ddp_worker(rank: int, world_size: int, port: int, run_dir, out_file,
               build=make_trainer) -> None:
    """One process of a two-process step on uneven halves; rank 0 saves its gradients and
    the step's figures. ``build(run_dir, info)``: the trainer (a module-level function)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    info = DistInfo(rank, world_size, rank)
    try:
        trainer = build(run_dir, info)
        gradients = record_gradients(trainer)
        src, tgt = fixed_pairs(trainer, 8)
        # uneven halves: 3 and 5 sentences, so token counts differ between processes
        part = slice(0, 3) if rank == 0 else slice(3, 8)
        loss, tokens, grad_norm = trainer.train_step(collate(src[part], tgt[part]))
        if rank == 0:
            torch.save({"gradients": gradients, "loss": loss, "tokens": tokens,
                        "grad_norm": grad_norm}, out_file)
        shutdown(info)
    except BaseException:   # leave without waiting for the other process
        dist.destroy_process_group()
        raise
    end_process(0)   # as the training command ends its processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_processes_equal_one_process_on_combined_batch(tmp_path):
    single = make_trainer(tmp_path / "single", DistInfo())
    gradients = record_gradients(single)
    src, tgt = fixed_pairs(single, 8)
    loss, tokens, grad_norm = single.train_step(collate(src, tgt))

    out_file = tmp_path / "ddp_state.pt"
    mp.spawn(ddp_worker, args=(2, free_port(), tmp_path / "ddp", out_file), nprocs=2, join=True)
    ddp = torch.load(out_file, weights_only=True)
    assert ddp["tokens"] == tokens
    assert abs(ddp["loss"] - loss) < 1e-4 * abs(loss)
    # the gradient norm (before clipping) checks the gradient's scale, which Adam's first
    # update alone would hide
    assert abs(ddp["grad_norm"] - grad_norm) < 1e-5 * grad_norm
    assert ddp["gradients"].keys() == gradients.keys()
    for name, value in gradients.items():
        scale = float(value.abs().max())
        torch.testing.assert_close(ddp["gradients"][name], value, rtol=1e-4, atol=1e-6 * scale,
                                   msg=name)


def test_update_differs_without_combined_batch(tmp_path):
    """Guards the test above: one half alone gives a different update."""
    full = make_trainer(tmp_path / "full", DistInfo())
    half = make_trainer(tmp_path / "half", DistInfo())
    src, tgt = fixed_pairs(full, 8)
    full.train_step(collate(src, tgt))
    half.train_step(collate(src[:3], tgt[:3]))
    weight = "output.linear.weight"
    assert not torch.allclose(full.model.state_dict()[weight], half.model.state_dict()[weight])


def test_training_command_under_torchrun_ends_both_processes_cleanly(tmp_path):
    """Two gloo processes train a few steps and exit 0: neither aborts while gloo's threads
    release their last work as the process ends."""
    config = tiny_demo_config(tmp_path / "run", max_steps=6, valid_every=3)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-port", str(free_port()), "-m", "scripts.train",
               "--config", str(config_file), "--quiet"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert RunFolder(tmp_path / "run").latest_state() is not None
