"""train.rdrop_alpha: R-Drop's loss, two dropout copies of each batch and their symmetric KL
(s2s.training.rdrop); off, the trainer keeps the single fused loss."""

from __future__ import annotations

import json

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from s2s import devices
from s2s.config import ConfigError, config_from_dict
from s2s.training import trainer as trainer_module
from s2s.training.data import batch_loss, collate
from s2s.training.distributed import DistInfo
from s2s.training.paired_loss import fused_paired_loss
from s2s.training.rdrop import doubled, rdrop_loss
from s2s.training.trainer import Trainer
from tests.helpers import tiny_demo_config
from tests.test_ddp import ddp_worker, fixed_pairs, free_port, record_gradients


def toy_batch(seed: int = 0, rows: int = 6, vocab: int = 40):
    """Rows of random ids 4..vocab-1 (past the special ids) and lengths 2..8."""
    generator = torch.Generator().manual_seed(seed)

    def sentence() -> list[int]:
        length = int(torch.randint(2, 9, (1,), generator=generator))
        return torch.randint(4, vocab, (length,), generator=generator).tolist()

    return collate([sentence() for _ in range(rows)], [sentence() for _ in range(rows)])


def test_rdrop_off_trains_with_the_single_fused_batch_loss(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the R-Drop path ran with rdrop_alpha 0")

    monkeypatch.setattr(trainer_module, "rdrop_loss", refuse)
    trainer = Trainer.build(tiny_demo_config(tmp_path / "run", rdrop_alpha=0.0))
    batch = trainer.plan.next_batch()
    rng = torch.get_rng_state()
    trainer.model.train()
    expected = batch_loss(trainer.model, batch, 0.1, trainer.cfg.loss_chunk_rows).item()
    torch.set_rng_state(rng)
    loss, tokens, _ = trainer.train_step(batch)
    assert loss == expected and tokens == batch.n_tokens
    assert trainer.last_kl_sum is None


def test_without_dropout_the_kl_is_zero_and_the_loss_is_the_doubled_batch_ce(make_model):
    model = make_model(dropout=0.0, emb_dropout=0.0).train()
    batch = toy_batch()
    parts = rdrop_loss(model, model.output.linear, batch, alpha=5.0, smoothing=0.1,
                       chunk_rows=7)
    assert abs(parts.kl_sum.item()) < 1e-6
    plain = batch_loss(model, doubled(batch), 0.1, chunk_rows=7)
    torch.testing.assert_close(parts.objective, plain / 2)
    torch.testing.assert_close(parts.copy_ce_sum(), batch_loss(model, batch, 0.1, 7))


def rdrop_gradients(model, batch, alpha: float) -> tuple[float, list[torch.Tensor]]:
    """(KL sum, gradients of the objective) with the dropout masks of seed 5."""
    torch.manual_seed(5)
    parts = rdrop_loss(model, model.output.linear, batch, alpha, smoothing=0.1, chunk_rows=7)
    grads = torch.autograd.grad(parts.objective, list(model.parameters()))
    return parts.kl_sum.item(), grads


def test_with_dropout_the_kl_is_positive_and_its_gradient_reaches_every_parameter(make_model):
    model = make_model(dropout=0.3, emb_dropout=0.1).train()
    batch = toy_batch()
    kl, with_kl = rdrop_gradients(model, batch, alpha=1.0)
    _, without_kl = rdrop_gradients(model, batch, alpha=0.0)
    assert kl > 0
    for (name, _), got, plain in zip(model.named_parameters(), with_kl, without_kl):
        assert not torch.allclose(got, plain, rtol=1e-4, atol=1e-9), name


def reference_paired_loss(first, second, weight, bias, targets, smoothing, alpha):
    """fused_paired_loss by autograd on full logits."""
    logits = [F.linear(x, weight, bias) for x in (first, second)]
    ce = sum(F.cross_entropy(z, targets, label_smoothing=smoothing, reduction="sum")
             for z in logits)
    log_p, log_q = (F.log_softmax(z, -1) for z in logits)
    kl = (F.kl_div(log_q, log_p, reduction="sum", log_target=True)     # KL(p || q)
          + F.kl_div(log_p, log_q, reduction="sum", log_target=True)) / 2
    return (ce + alpha * kl) / 2, ce, kl


def test_fused_paired_loss_matches_autograd_in_value_and_gradient():
    torch.manual_seed(0)
    first, second = torch.randn(10, 8, requires_grad=True), torch.randn(10, 8, requires_grad=True)
    weight, bias = torch.randn(30, 8, requires_grad=True), torch.randn(30, requires_grad=True)
    targets = torch.randint(0, 30, (10,))
    inputs = (first, second, weight, bias)
    got = fused_paired_loss(*inputs, targets, smoothing=0.1, alpha=2.0, chunk_rows=3)
    want = reference_paired_loss(*inputs, targets, smoothing=0.1, alpha=2.0)
    for value, expected in zip(got, want):
        torch.testing.assert_close(value, expected)
    grads = torch.autograd.grad(got[0], inputs)
    for grad, expected in zip(grads, torch.autograd.grad(want[0], inputs)):
        torch.testing.assert_close(grad, expected)
    with torch.no_grad():
        torch.testing.assert_close(
            fused_paired_loss(*inputs, targets, smoothing=0.1, alpha=2.0, chunk_rows=3)[0],
            want[0])


def test_fused_paired_loss_under_bf16_autocast_stays_close_to_fp32():
    torch.manual_seed(0)
    first, second = torch.randn(50, 16, requires_grad=True), torch.randn(50, 16, requires_grad=True)
    weight, bias = torch.randn(40, 16, requires_grad=True), torch.randn(40, requires_grad=True)
    inputs, targets = (first, second, weight, bias), torch.randint(0, 40, (50,))
    reference = fused_paired_loss(*inputs, targets, 0.1, 1.0, chunk_rows=16)[0]
    expected = torch.autograd.grad(reference, inputs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = fused_paired_loss(*inputs, targets, 0.1, 1.0, chunk_rows=16)[0]
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, reference, rtol=2e-2, atol=0)
    for got, want in zip(torch.autograd.grad(value, inputs), expected):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=5e-2, atol=5e-2)


def test_training_with_rdrop_logs_its_kl(tmp_path):
    trainer = Trainer.build(tiny_demo_config(tmp_path / "run", max_steps=3, rdrop_alpha=1.0))
    trainer.train()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    train = [r for r in map(json.loads, lines) if r["kind"] == "train"]
    assert len(train) == 3
    assert all(r["rdrop_kl"] > 0 and 0 < r["loss"] < 10 for r in train)


def test_the_update_weighs_the_kl_by_alpha(tmp_path):
    grad_norms = []
    for alpha in (0.5, 500.0):   # at the start the copies differ little: a large alpha shows
        trainer = Trainer.build(tiny_demo_config(tmp_path / str(alpha), rdrop_alpha=alpha))
        grad_norms.append(trainer.train_step()[2])   # same seed: same batch, same masks
    assert grad_norms[0] != pytest.approx(grad_norms[1], rel=1e-2)


@pytest.mark.skipif(not devices.cpu_has_native_bf16(),
                    reason="this CPU has no native bf16 (oneDNN has no emulated bf16 LSTM)")
def test_rdrop_with_ema_trains_under_bf16_autocast(tmp_path):
    config = tiny_demo_config(tmp_path / "run", max_steps=3, rdrop_alpha=1.0, ema_decay=0.9)
    config.train.amp = "bf16"
    trainer = Trainer.build(config)
    losses = [trainer.train_step()[0] for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(losses))) and trainer.last_kl_sum is not None
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


def rdrop_trainer(run_dir, info: DistInfo) -> Trainer:
    """R-Drop without dropout (the processes' dropout streams differ by design)."""
    config = tiny_demo_config(run_dir, rdrop_alpha=1.0)
    config.model.dropout = config.model.emb_dropout = 0.0
    return Trainer.build(config, info)


def test_rdrop_under_ddp_makes_the_update_of_one_process(tmp_path):
    single = rdrop_trainer(tmp_path / "single", DistInfo())
    gradients = record_gradients(single)
    src, tgt = fixed_pairs(single, 8)
    loss, _, _ = single.train_step(collate(src, tgt))
    out_file = tmp_path / "ddp.pt"
    mp.spawn(ddp_worker, args=(2, free_port(), tmp_path / "ddp", out_file, rdrop_trainer),
             nprocs=2, join=True)
    ddp = torch.load(out_file, weights_only=True)
    assert ddp["loss"] == pytest.approx(loss, rel=1e-4)
    assert ddp["gradients"].keys() == gradients.keys()
    for name, value in gradients.items():
        scale = float(value.abs().max())
        torch.testing.assert_close(ddp["gradients"][name], value, rtol=1e-4, atol=1e-6 * scale,
                                   msg=name)


def test_config_rejects_a_negative_rdrop_alpha():
    with pytest.raises(ConfigError, match=r"'train\.rdrop_alpha'"):
        config_from_dict({"train": {"rdrop_alpha": -1.0}})
