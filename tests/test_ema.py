"""train.ema_decay: an fp32 moving average of the weights that validation, the model files and
checkpoint averaging use, while training goes on with the raw weights (s2s.training.ema)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from s2s.checkpoint import TRAIN_STATE_FORMAT, load_checkpoint
from s2s.config import ConfigError, config_from_dict
from s2s.model.model_file import load_model_file
from s2s.training.average import average_training_states
from s2s.training.ema import ParameterEMA, warmed_up_decay
from s2s.training.run_folder import RunFolder
from s2s.training.trainer import Trainer
from s2s.training.validation import validate
from tests.helpers import tiny_demo_config

CPU = torch.device("cpu")


def records(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def assert_same_weights(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert got.keys() == want.keys()
    for name, value in want.items():
        assert torch.equal(got[name].cpu(), value.cpu()), name


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory) -> Trainer:
    """10 tiny steps with ema_decay 0.9, validated and saved at steps 5 and 10."""
    config = tiny_demo_config(tmp_path_factory.mktemp("ema") / "run", max_steps=10,
                              ema_decay=0.9)
    trainer = Trainer.build(config)
    trainer.train()
    return trainer


def test_ema_equals_the_closed_form_average_of_the_weight_history():
    torch.manual_seed(0)
    toy = nn.Linear(3, 2)
    decay, steps = 0.9, 120   # the warm-up (1+n)/(10+n) passes 0.9 at n = 81
    ema = ParameterEMA(toy, decay)
    history = [torch.cat([p.detach().flatten() for p in toy.parameters()]).double()]
    for _ in range(steps):
        with torch.no_grad():
            for param in toy.parameters():
                param.add_(torch.randn_like(param))
        history.append(torch.cat([p.detach().flatten() for p in toy.parameters()]).double())
        ema.update(toy)
    decays = [warmed_up_decay(decay, n) for n in range(steps)]
    # weight of history[i]: (1 - d_{i-1}) * d_i * ... * d_{steps-1}; history[0] keeps all d's
    coefficients = [math.prod(decays)] + [(1 - decays[i - 1]) * math.prod(decays[i:])
                                          for i in range(1, steps + 1)]
    expected = sum(c * w for c, w in zip(coefficients, history))
    got = torch.cat([s.flatten() for s in ema.shadow]).double()
    assert math.isclose(sum(coefficients), 1.0)
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, history[-1], atol=1e-2)


def test_the_decay_warms_up_as_1_plus_n_over_10_plus_n():
    assert warmed_up_decay(0.999, 0) == pytest.approx(0.1)
    assert warmed_up_decay(0.999, 10) == pytest.approx(11 / 20)
    assert warmed_up_decay(0.9, 100) == 0.9


def test_model_files_hold_the_ema_weights_not_the_raw_ones(ema_run):
    ema_weights = ema_run.ema.averaged_state_dict(ema_run.model)
    loaded = load_model_file(ema_run.run.model_file)
    assert_same_weights(loaded.model.state_dict(), ema_weights)
    assert loaded.meta["ema_decay"] == 0.9
    raw = ema_run.model.state_dict()["output.linear.weight"]
    assert not torch.allclose(ema_weights["output.linear.weight"], raw)
    assert load_model_file(ema_run.run.best_file).meta["ema_decay"] == 0.9


def test_validation_scores_the_ema_weights(ema_run):
    loaded = load_model_file(ema_run.run.model_file)
    metrics = validate(loaded.model, ema_run.data, ema_run.config, CPU)
    last = records(ema_run.run.path, "valid")[-1]
    assert last["step"] == 10
    assert last["valid_loss"] == pytest.approx(metrics["valid_loss"], rel=1e-6)


def test_averaging_training_states_uses_their_ema_weights(ema_run, tmp_path):
    latest = RunFolder(ema_run.run.path).latest_state()
    assert load_checkpoint(latest, TRAIN_STATE_FORMAT)["ema"]["updates"] == 10
    average_training_states([latest], tmp_path / "averaged.pt")
    averaged = load_model_file(tmp_path / "averaged.pt").model.state_dict()
    assert_same_weights(averaged, load_model_file(ema_run.run.model_file).model.state_dict())


def test_training_goes_on_with_the_raw_weights(tmp_path):
    # lr_patience: validation must not change the learning rate of either run
    plain = Trainer.build(tiny_demo_config(tmp_path / "plain", max_steps=12, lr_patience=100))
    plain.train()
    averaged = Trainer.build(tiny_demo_config(tmp_path / "ema", max_steps=12, lr_patience=100,
                                              ema_decay=0.9))
    averaged.train()
    train_losses = [[r["loss"] for r in records(run, "train")]
                    for run in (tmp_path / "plain", tmp_path / "ema")]
    assert len(train_losses[0]) == 12 and train_losses[0] == train_losses[1]
    assert_same_weights(averaged.model.state_dict(), plain.model.state_dict())


def test_resume_with_ema_continues_exactly(tmp_path):
    Trainer.build(tiny_demo_config(tmp_path / "full", ema_decay=0.9)).train()
    Trainer.build(tiny_demo_config(tmp_path / "split", ema_decay=0.9, max_steps=12)).train()
    Trainer.build(tiny_demo_config(tmp_path / "split", ema_decay=0.9), resume=True).train()
    full, split = (RunFolder(tmp_path / name) for name in ("full", "split"))
    assert [r["loss"] for r in records(split.path, "train")] == \
        [r["loss"] for r in records(full.path, "train")]
    assert_same_weights(load_model_file(split.model_file).model.state_dict(),
                        load_model_file(full.model_file).model.state_dict())


@pytest.mark.parametrize("decay", [-0.1, 1.0])
def test_config_rejects_an_ema_decay_outside_0_to_1(decay):
    with pytest.raises(ConfigError, match=r"'train\.ema_decay'"):
        config_from_dict({"train": {"ema_decay": decay}})
