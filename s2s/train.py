"""The training loop: token-budget batches, Adam, warm-up + plateau decay, clipping by total
norm, AMP on CUDA, periodic validation (loss, perplexity, greedy BLEU/chrF), early stopping,
resumable checkpoints and a model file for inference. Optional DDP (torchrun).

Progress is reported through a callback; metrics are appended to ``metrics.jsonl`` in the run
folder (one JSON object per line, ``kind`` = "train" or "valid").
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.nn.parallel import DistributedDataParallel

from s2s.checkpoint import (
    FORMAT_VERSION,
    TRAIN_STATE_FORMAT,
    CheckpointDir,
    CheckpointError,
    bytes_to_tensor,
    load_checkpoint,
    tensor_to_bytes,
)
from s2s.config import Config, ConfigError, config_from_dict
from s2s.data import Batch, BatchPlan, iterate_batches
from s2s.distributed import DistInfo, all_reduce_sum, broadcast_object, gather_objects
from s2s.evaluate import greedy_decode_ids, score_corpus
from s2s.model import Seq2Seq, count_parameters
from s2s.model_file import save_model_file
from s2s.prepare import PreparedData, prepare_data
from s2s.schedule import LRSchedule
from s2s.shortlist import Shortlist
from s2s.tokenizer import Tokenizer

EventCallback = Callable[[dict[str, Any]], None]


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but CUDA is not available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


@dataclass
class Progress:
    """What the training state records beyond module/optimizer states."""

    step: int = 0
    elapsed_s: float = 0.0
    best_score: float | None = None
    best_step: int = 0
    bad_validations: int = 0
    last_valid_step: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)


class Trainer:
    def __init__(self, config: Config, dist_info: DistInfo | None = None,
                 on_event: EventCallback | None = None):
        self.config = config
        self.cfg = config.train
        self.dist = dist_info or DistInfo()
        self.on_event = on_event or (lambda event: None)
        self.run_dir = config.run_dir()
        self.device = resolve_device(self.cfg.device)
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        self.checkpoints = CheckpointDir(self.run_dir, self.cfg.keep_last)
        self.progress = Progress()

    # ---- set-up -----------------------------------------------------------------------
    def setup(self, resume: bool = False) -> None:
        state = self._load_resume_state() if resume else None
        tokenizer = None if state is None else tokenizer_from_state(state)
        if self.dist.is_main:
            self.data = prepare_data(self.config, self.run_dir, tokenizer)
        if self.dist.enabled:  # other ranks read the tokenizer rank 0 trained or restored
            torch.distributed.barrier()
            if not self.dist.is_main:
                self.data = prepare_data(self.config, self.run_dir, tokenizer)
        self.shortlist = self._build_shortlist()
        torch.manual_seed(self.cfg.seed)
        self.model = Seq2Seq(self.config.model, len(self.data.tokenizer.src),
                             len(self.data.tokenizer.tgt)).to(self.device)
        self.train_model = self._wrap(self.model)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr,
                                          betas=self.cfg.betas, weight_decay=self.cfg.weight_decay,
                                          fused=True)
        self.schedule = LRSchedule(self.cfg.lr, self.cfg.warmup_steps, self.cfg.lr_decay_factor,
                                   self.cfg.lr_patience, self.cfg.min_lr)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self._amp_dtype() == torch.float16)
        self.plan = BatchPlan(self.data.train, self.cfg.batch_tokens, self.cfg.bucket_size,
                              self.cfg.seed, self.dist.rank, self.dist.world_size)
        torch.manual_seed(self.cfg.seed + self.dist.rank)  # dropout streams differ per rank
        if state is not None:
            self._restore(state)
        elif self.dist.is_main:
            self._start_run_folder()

    def _build_shortlist(self) -> Shortlist | None:
        if not (self.dist.is_main and self.cfg.shortlist_per_source):
            return None
        tokenizer = self.data.tokenizer
        return Shortlist.build(self.data.train.src, self.data.train.tgt, len(tokenizer.src),
                               len(tokenizer.tgt), self.cfg.shortlist_per_source,
                               self.cfg.shortlist_frequent)

    def _wrap(self, model: Seq2Seq) -> torch.nn.Module:
        if not self.dist.enabled:
            return model
        device_ids = [self.device.index or 0] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def _amp_dtype(self) -> torch.dtype | None:
        if self.device.type != "cuda" or self.cfg.amp == "none":
            return None
        return torch.bfloat16 if self.cfg.amp == "bf16" else torch.float16

    def _start_run_folder(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(
            yaml.safe_dump(self.config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
        (self.run_dir / "metrics.jsonl").write_text("", encoding="utf-8")

    # ---- training ---------------------------------------------------------------------
    def train(self) -> Progress:
        """Train until a limit or early stopping; returns the final progress record."""
        started = time.perf_counter() - self.progress.elapsed_s
        window = {"loss": 0.0, "tokens": 0.0, "time": time.perf_counter()}
        while True:
            stop_reason = self._limit_reached(started)
            if stop_reason:
                break
            loss_sum, tokens, grad_norm = self.train_step()
            self.progress.step += 1
            self.progress.elapsed_s = time.perf_counter() - started
            window["loss"] += loss_sum
            window["tokens"] += tokens
            if self.progress.step % self.cfg.log_every == 0:
                self._log_train(window, grad_norm)
            if self.progress.step % self.cfg.valid_every == 0:
                stop_reason = self.validate_and_save()
                if stop_reason:
                    break
        if self.progress.last_valid_step != self.progress.step:
            self._save(improved=False, rng_states=gather_objects(_rng_state(self.device),
                                                                 self.dist))
        self.on_event({"kind": "stop", "step": self.progress.step, "reason": stop_reason})
        return self.progress

    def _limit_reached(self, started: float) -> str | None:
        if self.cfg.max_steps and self.progress.step >= self.cfg.max_steps:
            return "max_steps"
        if self.cfg.max_epochs and self.plan.epoch >= self.cfg.max_epochs:
            return "max_epochs"
        if self.cfg.max_minutes:
            elapsed_min = broadcast_object((time.perf_counter() - started) / 60, self.dist)
            if elapsed_min >= self.cfg.max_minutes:
                return "max_minutes"
        return None

    def train_step(self, batch: Batch | None = None) -> tuple[float, float, float]:
        """One optimizer update on ``batch`` (default: the plan's next batch). Returns (summed
        loss, target tokens, grad norm before clipping), summed over all processes."""
        self.train_model.train()
        batch = (batch or self.plan.next_batch()).to(self.device)
        local_tokens = float(batch.n_tokens)
        (total_tokens,) = all_reduce_sum([local_tokens], self.dist, self.device)
        autocast = (torch.autocast("cuda", dtype=self._amp_dtype())
                    if self._amp_dtype() else nullcontext())
        with autocast:
            loss_sum = self.train_model(batch.src, batch.src_lens, batch.tgt_in, batch.tgt_out,
                                        self.cfg.label_smoothing, True, self.cfg.loss_chunk_rows)
        # DDP averages gradients over processes; scale so the result is sum / global tokens.
        loss = loss_sum * (self.dist.world_size / total_tokens)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        max_norm = self.cfg.clip_norm if self.cfg.clip_norm > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        for group in self.optimizer.param_groups:
            group["lr"] = self.schedule.lr(self.progress.step + 1)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        (global_loss,) = all_reduce_sum([loss_sum.item()], self.dist, self.device)
        return global_loss, total_tokens, float(grad_norm)

    def _log_train(self, window: dict[str, float], grad_norm: float) -> None:
        now = time.perf_counter()
        record = {
            "kind": "train", "step": self.progress.step, "epoch": self.plan.epoch,
            "loss": window["loss"] / max(window["tokens"], 1),
            "lr": self.optimizer.param_groups[0]["lr"], "grad_norm": grad_norm,
            "tokens_per_s": window["tokens"] / max(now - window["time"], 1e-9),
            "elapsed_s": round(self.progress.elapsed_s, 2),
        }
        window.update(loss=0.0, tokens=0.0, time=now)
        self._emit(record)

    def _emit(self, record: dict[str, Any]) -> None:
        if self.dist.is_main:
            with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        self.on_event(record)

    # ---- validation and checkpoints ---------------------------------------------------
    def validate_and_save(self) -> str | None:
        """Validate (rank 0), save checkpoints, update schedule; returns a stop reason or None."""
        rng_states = gather_objects(_rng_state(self.device), self.dist)
        reason = None
        if self.dist.is_main:
            metrics = validate(self.model, self.data, self.config, self.device)
            improved = self._record_validation(metrics)
            self._save(improved, rng_states)
            patience = self.cfg.early_stopping_patience
            if patience and self.progress.bad_validations >= patience:
                reason = "early_stopping"
        state = broadcast_object((reason, self.schedule.state_dict()), self.dist)
        reason, schedule_state = state
        self.schedule.load_state_dict(schedule_state)
        self.progress.last_valid_step = self.progress.step
        return reason

    def _record_validation(self, metrics: dict[str, float]) -> bool:
        metric = self.cfg.early_stopping_metric
        score = metrics["valid_loss"] if metric == "loss" else metrics[metric]
        best = self.progress.best_score
        improved = best is None or (score < best if metric == "loss" else score > best)
        if improved:
            self.progress.best_score, self.progress.best_step = score, self.progress.step
            self.progress.bad_validations = 0
        else:
            self.progress.bad_validations += 1
        self.schedule.on_validation(improved)
        record = {"kind": "valid", "step": self.progress.step, **metrics,
                  "improved": improved, "elapsed_s": round(self.progress.elapsed_s, 2)}
        self.progress.history.append(record)
        self._emit(record)
        return improved

    def _save(self, improved: bool, rng_states: list[Any]) -> None:
        """Training state, latest model file and (when improved) best model file; rank 0 only.
        A save without validation (at the end of a run) leaves schedule and best untouched."""
        if not self.dist.is_main:
            return
        meta = {"step": self.progress.step, "config_name": self.config.name,
                "src_lang": self.config.data.src_lang, "tgt_lang": self.config.data.tgt_lang,
                "parameters": count_parameters(self.model)}
        self.checkpoints.save_state(self._state_payload(rng_states), self.progress.step)
        save_model_file(self.run_dir / "model.pt", self.model, self.data.tokenizer, meta,
                        shortlist=self.shortlist)
        if improved:
            save_model_file(self.run_dir / "best.pt", self.model, self.data.tokenizer,
                            {**meta, "best_score": self.progress.best_score},
                            shortlist=self.shortlist)

    def _state_payload(self, rng_states: list[Any]) -> dict[str, Any]:
        src_bytes, tgt_bytes = self.data.tokenizer.model_bytes()
        progress = self.progress
        return {
            "format": TRAIN_STATE_FORMAT, "version": FORMAT_VERSION,
            "config": self.config.model_dump(mode="json"),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(), "scaler": self.scaler.state_dict(),
            "rng": rng_states, "data": self.plan.state_dict(),
            "progress": {"step": progress.step, "elapsed_s": progress.elapsed_s,
                         "best_score": progress.best_score, "best_step": progress.best_step,
                         "bad_validations": progress.bad_validations,
                         "history": progress.history},
            "src_spm": bytes_to_tensor(src_bytes),
            "tgt_spm": None if tgt_bytes is None else bytes_to_tensor(tgt_bytes),
            "shortlist": None if self.shortlist is None else self.shortlist.state_dict(),
        }

    # ---- resume -----------------------------------------------------------------------
    def _load_resume_state(self) -> dict[str, Any] | None:
        path = self.checkpoints.latest_state()
        if path is None:
            return None
        state = load_checkpoint(path, TRAIN_STATE_FORMAT)
        saved = config_from_dict(state["config"])
        if saved.model != self.config.model or saved.tokenizer != self.config.tokenizer:
            raise CheckpointError(
                f"{path} was trained with a different model or tokenizer config; "
                "resume with the run's own config.yaml")
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
        self.plan.load_state_dict(state["data"])
        saved = state["progress"]
        self.progress = Progress(step=saved["step"], elapsed_s=saved["elapsed_s"],
                                 best_score=saved["best_score"], best_step=saved["best_step"],
                                 bad_validations=saved["bad_validations"],
                                 last_valid_step=saved["step"], history=list(saved["history"]))
        rng = state["rng"]
        _set_rng_state(rng[self.dist.rank] if self.dist.rank < len(rng) else rng[0], self.device)
        if self.dist.is_main:
            _truncate_metrics(self.run_dir / "metrics.jsonl", self.progress.step)
        self.on_event({"kind": "resume", "step": self.progress.step})


def validate(model: Seq2Seq, data: PreparedData, config: Config,
             device: torch.device) -> dict[str, float]:
    """Validation loss and perplexity (teacher forced, no smoothing), greedy BLEU, chrF and
    exact-match percentage."""
    cfg = config.train
    model.eval()
    loss_sum, tokens = 0.0, 0
    with torch.no_grad():
        for batch in iterate_batches(data.valid, cfg.batch_tokens):
            batch = batch.to(device)
            loss_sum += float(model.loss(batch, 0.0, True, cfg.loss_chunk_rows))
            tokens += batch.n_tokens
    hyp_ids = greedy_decode_ids(model, data.valid.src, cfg.batch_tokens, cfg.valid_max_len_a,
                                cfg.valid_max_len_b, device)
    hypotheses = data.tokenizer.tgt.decode(hyp_ids)
    scores = score_corpus(hypotheses, data.valid_ref)
    valid_loss = loss_sum / max(tokens, 1)
    return {"valid_loss": valid_loss, "valid_ppl": math.exp(min(valid_loss, 50)),
            "bleu": scores.bleu, "chrf": scores.chrf, "exact": scores.exact}


def tokenizer_from_state(state: dict[str, Any]) -> Tokenizer:
    tgt = state["tgt_spm"]
    return Tokenizer(tensor_to_bytes(state["src_spm"]),
                     None if tgt is None else tensor_to_bytes(tgt))


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop log records written after the checkpoint we resume from."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the kill
            continue
        if record["step"] <= step:
            kept.append(line)
    temp = path.with_suffix(".tmp")
    temp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    temp.replace(path)
