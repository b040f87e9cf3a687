"""bf16 training on the CPU: refused where bf16 would be emulated (simulated), autocast with
fp32 master weights where the CPU has native bf16 (that test skips elsewhere)."""

from __future__ import annotations

import pytest
import torch

from s2s import devices
from s2s.devices import DeviceError, training_amp_dtype
from s2s.model.loss import fused_output_loss
from s2s.training.data import batch_loss, collate
from s2s.training.trainer import Trainer
from tests.helpers import tiny_demo_config

CPU = torch.device("cpu")


def test_bf16_is_refused_on_a_cpu_without_native_bf16(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(DeviceError, match="emulated"):
        training_amp_dtype(CPU, "bf16")


def test_trainer_refuses_bf16_on_a_cpu_without_native_bf16(monkeypatch, tmp_path):
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)
    config = tiny_demo_config(tmp_path / "run", max_steps=2)
    config.train.amp = "bf16"
    with pytest.raises(DeviceError):
        Trainer.build(config)


def test_fp16_is_refused_on_the_cpu():
    with pytest.raises(DeviceError, match="CUDA"):
        training_amp_dtype(CPU, "fp16")


def test_bf16_is_chosen_on_a_cpu_with_native_bf16(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    assert training_amp_dtype(CPU, "bf16") == torch.bfloat16


def test_fused_loss_under_bf16_autocast_stays_close_to_fp32():
    torch.manual_seed(0)
    hidden = torch.randn(50, 16, requires_grad=True)
    weight = torch.randn(40, 16, requires_grad=True)
    bias = torch.randn(40, requires_grad=True)
    targets = torch.randint(0, 40, (50,))
    reference = fused_output_loss(hidden, weight, bias, targets, 0.1, chunk_rows=16)
    expected = torch.autograd.grad(reference, (hidden, weight, bias))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = fused_output_loss(hidden, weight, bias, targets, 0.1, chunk_rows=16)
    grads = torch.autograd.grad(value, (hidden, weight, bias))
    assert value.dtype == torch.float32
    assert torch.allclose(value, reference, rtol=2e-2)
    for got, want in zip(grads, expected):
        assert got.dtype == torch.float32
        assert torch.allclose(got, want, rtol=5e-2, atol=5e-2)


@pytest.mark.skipif(not devices.cpu_has_native_bf16(),
                    reason="this CPU has no native bf16 (oneDNN has no emulated bf16 LSTM)")
def test_bf16_training_keeps_fp32_master_weights(tmp_path):
    config = tiny_demo_config(tmp_path / "run", max_steps=3)
    config.train.amp = "bf16"
    trainer = Trainer.build(config)
    losses = [trainer.train_step()[0] for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    state = trainer.optimizer.state_dict()["state"]
    assert state and all(s["exp_avg"].dtype == torch.float32 for s in state.values())


@pytest.mark.skipif(not devices.cpu_has_native_bf16(),
                    reason="this CPU has no native bf16 (oneDNN has no emulated bf16 LSTM)")
def test_input_feeding_under_bf16_autocast_stays_close_to_fp32(make_model):
    """The step-by-step decoder casts its inputs once under autocast: same loss and gradient
    direction as fp32, up to bf16 rounding."""
    model = make_model(input_feeding=True)
    generator = torch.Generator().manual_seed(3)
    sentences = [torch.randint(4, 40, (n,), generator=generator).tolist() for n in (5, 3, 6)]
    batch = collate(sentences, [s[::-1] for s in sentences])
    results = []
    for autocast in (False, True):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = batch_loss(model, batch)
        loss.backward()
        results.append((loss.item(), model.decoder.embed.weight.grad.flatten().clone()))
    (loss32, grad32), (loss16, grad16) = results
    assert loss16 == pytest.approx(loss32, rel=2e-2)
    assert torch.nn.functional.cosine_similarity(grad32, grad16, dim=0) > 0.99
