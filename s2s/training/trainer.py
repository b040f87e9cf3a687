"""The training loop: token-budget batches, Adam, warm-up + plateau decay, clipping by total
norm, AMP (CUDA; bf16 on CPUs with native bf16, fp32 master weights), periodic validation
(loss, perplexity, greedy BLEU/chrF), early stopping,
resumable checkpoints and a model file for inference. Optional DDP (torchrun). Optional levers
for small data: an exponential moving average of the weights (``train.ema_decay``,
s2s.training.ema), which validation and the model files use while training goes on with the
raw weights, and R-Drop (``train.rdrop_alpha``, s2s.training.rdrop).

Progress is reported through a callback; metrics are appended to ``metrics.jsonl`` in the run
folder (one JSON object per line, ``kind`` = "train" or "valid").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from s2s.allocator import keep_freed_memory
from s2s.checkpoint import FORMAT_VERSION, TRAIN_STATE_FORMAT, CheckpointError, load_checkpoint
from s2s.config import Config, saved_config_from_dict
from s2s.devices import resolve_device, training_amp_dtype
from s2s.model import Seq2Seq, count_parameters, upgrade_state_dict
from s2s.model.model_file import (
    LoadedModel,
    save_model_file,
    tokenizer_from_payload,
    tokenizer_payload,
)
from s2s.shortlist import Shortlist
from s2s.tokenizer import Tokenizer
from s2s.training.data import Batch, BatchPlan, batch_loss
from s2s.training.distributed import DistInfo, all_reduce_sum, broadcast_object, gather_objects
from s2s.training.ema import ParameterEMA
from s2s.training.prepare import (
    PreparedData,
    open_prepared,
    prepare,
    prepared_folder,
)
from s2s.training.rdrop import rdrop_loss
from s2s.training.run_folder import RunFolder, RunFolderError
from s2s.training.schedule import LRSchedule
from s2s.training.validation import validate

EventCallback = Callable[[dict[str, Any]], None]


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

    def record(self, score: float, lower_is_better: bool) -> bool:
        """Record a validation score; returns whether it is the best so far."""
        best = self.best_score
        improved = best is None or (score < best if lower_is_better else score > best)
        if improved:
            self.best_score, self.best_step, self.bad_validations = score, self.step, 0
        else:
            self.bad_validations += 1
        return improved

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "elapsed_s": self.elapsed_s, "best_score": self.best_score,
                "best_step": self.best_step, "bad_validations": self.bad_validations,
                "history": self.history}

    @classmethod
    def from_state_dict(cls, saved: dict[str, Any]) -> Progress:
        return cls(step=saved["step"], elapsed_s=saved["elapsed_s"],
                   best_score=saved["best_score"], best_step=saved["best_step"],
                   bad_validations=saved["bad_validations"], last_valid_step=saved["step"],
                   history=list(saved["history"]))


class Trainer:
    """Trains one model; built complete by ``Trainer.build`` (fresh or resumed)."""

    def __init__(self, config: Config, dist_info: DistInfo, run: RunFolder, data: PreparedData,
                 model: Seq2Seq, shortlist: Shortlist | None, on_event: EventCallback):
        self.config = config
        self.cfg = config.train
        self.dist = dist_info
        self.run = run
        self.data = data
        self.model = model
        self.shortlist = shortlist
        self.on_event = on_event
        self.device = next(model.parameters()).device
        self.progress = Progress()
        self.run_id: str | None = None   # the run folder's run id, carried by training states
        self.train_model = self._wrap(model)
        self.ema = ParameterEMA(model, self.cfg.ema_decay) if self.cfg.ema_decay else None
        self.last_kl_sum: float | None = None   # R-Drop: the last step's KL sum (train_step)
        # torch.optim imports torch._dynamo when the first optimizer is made (1.3-1.8 s on 2
        # cores): that runs on a thread while the first batch is read and its forward and
        # backward passes run (torch releases the GIL in its kernels).
        background = ThreadPoolExecutor(1, thread_name_prefix="optimizer")
        self._optimizer = background.submit(torch.optim.Adam, model.parameters(), lr=self.cfg.lr,
                                            betas=self.cfg.betas,
                                            weight_decay=self.cfg.weight_decay, fused=True)
        background.shutdown(wait=False)
        self.schedule = LRSchedule(self.cfg.lr, self.cfg.warmup_steps, self.cfg.lr_decay_factor,
                                   self.cfg.lr_patience, self.cfg.min_lr)
        self.amp_dtype = training_amp_dtype(self.device, self.cfg.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.plan = BatchPlan(data.train, self.cfg.batch_tokens, self.cfg.bucket_size,
                              self.cfg.seed, dist_info.rank, dist_info.world_size)
        torch.manual_seed(self.cfg.seed + dist_info.rank)  # dropout streams differ per rank

    @property
    def optimizer(self) -> torch.optim.Adam:
        """The optimizer (waits for its construction on the background thread)."""
        return self._optimizer.result()

    @classmethod
    def build(cls, config: Config, dist_info: DistInfo | None = None,
              on_event: EventCallback | None = None, resume: bool = False,
              init_from: LoadedModel | None = None, overwrite: bool = False) -> Trainer:
        """Prepare data (s2s.training.prepare, skipped when current) and the model, then
        restore the run folder's latest training state (``resume``: RunFolderError when there
        is none) or start the run folder afresh: a folder holding anything but the prepared
        data is refused (RunFolderError) unless ``overwrite``, which removes the previous
        run's files first. ``init_from`` (fine-tuning) starts from a model file's weights and
        SentencePiece models with a fresh optimizer and schedule; ``config.model`` must equal
        the file's (see ``fine_tuning_config``)."""
        if resume and overwrite:
            raise RunFolderError("--resume and --overwrite exclude each other")
        dist_info = dist_info or DistInfo()
        device = resolve_device(config.train.device)
        if config.train.threads:
            torch.set_num_threads(config.train.threads)
        if config.train.keep_freed_memory and device.type == "cpu":
            keep_freed_memory()
        run = RunFolder(config.run_dir(), config.train.keep_last)
        if not resume:
            run.check_new_run(keep=prepared_folder(config), overwrite=overwrite)
            if overwrite and dist_info.is_main:
                run.clear()
        state = load_resume_state(run, config) if resume else None
        if resume and state is None:
            raise RunFolderError(f"nothing to resume in {run.path}: it holds no training state "
                                 "(step-*.pt); start the run without --resume")
        tokenizer = None if state is None else tokenizer_from_payload(state)
        if state is None and init_from is not None:
            tokenizer = init_from.tokenizer
        data = prepare_on_every_rank(config, tokenizer, dist_info)
        torch.manual_seed(config.train.seed)
        model = Seq2Seq(config.model, len(data.tokenizer.src),
                        len(data.tokenizer.tgt)).to(device)
        if state is None and init_from is not None:
            model.load_state_dict(init_from.model.state_dict())
        trainer = cls(config, dist_info, run, data, model, data.shortlist,
                      on_event or (lambda event: None))
        if state is not None:
            trainer.run_id = state.get("run_id")
            trainer._restore(state)
        elif dist_info.is_main:
            info = {}
            if init_from is not None:
                info["init_from"] = {"path": init_from.source or config.train.init_from,
                                     "meta": _plain(init_from.meta)}
            trainer.run_id = run.start(config, info)
            run.save_tokenizer(data.tokenizer)
            if init_from is not None:
                trainer._emit({"kind": "init", "step": 0,
                               "init_from": init_from.source or config.train.init_from,
                               "src_lang": init_from.meta.get("src_lang"),
                               "tgt_lang": init_from.meta.get("tgt_lang"),
                               "from_step": init_from.meta.get("step")})
        return trainer

    def _wrap(self, model: Seq2Seq) -> torch.nn.Module:
        if not self.dist.enabled:
            return model
        device_ids = [self.device.index or 0] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    # ---- training ---------------------------------------------------------------------
    def train(self) -> Progress:
        """Train until a limit or early stopping; returns the final progress record."""
        started = time.perf_counter() - self.progress.elapsed_s
        window = {"loss": 0.0, "tokens": 0.0, "kl": 0.0, "time": time.perf_counter()}
        while True:
            stop_reason = self._limit_reached(started)
            if stop_reason:
                break
            loss_sum, tokens, grad_norm = self.train_step()
            self.progress.step += 1
            self.progress.elapsed_s = time.perf_counter() - started
            window["loss"] += loss_sum
            window["tokens"] += tokens
            window["kl"] += self.last_kl_sum or 0.0
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
        """One optimizer update on ``batch`` (default: the plan's next batch), then the EMA's
        update. Returns (summed loss, target tokens, grad norm before clipping), summed over all
        processes; with R-Drop the loss is the cross-entropy averaged over the two copies and
        the summed KL goes to ``last_kl_sum``."""
        self.train_model.train()
        batch = (batch or self.plan.next_batch()).to(self.device)
        local_tokens = float(batch.n_tokens)
        (total_tokens,) = all_reduce_sum([local_tokens], self.dist, self.device)
        autocast = (torch.autocast(self.device.type, dtype=self.amp_dtype)
                    if self.amp_dtype else nullcontext())
        with autocast:
            objective, loss_sum, kl_sum = self._batch_objective(batch)
        # DDP averages gradients over processes; scale so the result is sum / global tokens.
        loss = objective * (self.dist.world_size / total_tokens)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        max_norm = self.cfg.clip_norm if self.cfg.clip_norm > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        for group in self.optimizer.param_groups:
            group["lr"] = self.schedule.lr(self.progress.step + 1)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        sums = [loss_sum.item()] + ([] if kl_sum is None else [kl_sum.item()])
        sums = all_reduce_sum(sums, self.dist, self.device)
        self.last_kl_sum = None if kl_sum is None else sums[1]
        return sums[0], total_tokens, float(grad_norm)

    def _batch_objective(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor,
                                                       torch.Tensor | None]:
        """(what backward runs on, the loss to report, R-Drop's KL sum or None), each a sum
        over the batch's target tokens: the fused batch loss, or with ``rdrop_alpha`` > 0 the
        R-Drop loss of s2s.training.rdrop."""
        cfg = self.cfg
        if not cfg.rdrop_alpha:
            loss_sum = batch_loss(self.train_model, batch, cfg.label_smoothing,
                                  cfg.loss_chunk_rows)
            return loss_sum, loss_sum, None
        parts = rdrop_loss(self.train_model, self.model.output.linear, batch, cfg.rdrop_alpha,
                           cfg.label_smoothing, cfg.loss_chunk_rows)
        return parts.objective, parts.copy_ce_sum(), parts.kl_sum

    def _log_train(self, window: dict[str, float], grad_norm: float) -> None:
        now = time.perf_counter()
        record = {
            "kind": "train", "step": self.progress.step, "epoch": self.plan.epoch,
            "loss": window["loss"] / max(window["tokens"], 1),
            "lr": self.optimizer.param_groups[0]["lr"], "grad_norm": grad_norm,
            "tokens_per_s": window["tokens"] / max(now - window["time"], 1e-9),
            "elapsed_s": round(self.progress.elapsed_s, 2),
        }
        if self.cfg.rdrop_alpha:
            record["rdrop_kl"] = window["kl"] / max(window["tokens"], 1)
        window.update(loss=0.0, tokens=0.0, kl=0.0, time=now)
        self._emit(record)

    def _emit(self, record: dict[str, Any]) -> None:
        if self.dist.is_main:
            self.run.append_metric(record)
        self.on_event(record)

    # ---- validation and checkpoints ---------------------------------------------------
    def validate_and_save(self) -> str | None:
        """Validate (rank 0), save checkpoints, update schedule; returns a stop reason or None."""
        rng_states = gather_objects(_rng_state(self.device), self.dist)
        reason = None
        if self.dist.is_main:
            with self._inference_weights():
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
        improved = self.progress.record(score, lower_is_better=metric == "loss")
        self.schedule.on_validation(improved)
        record = {"kind": "valid", "step": self.progress.step, **metrics,
                  "improved": improved, "elapsed_s": round(self.progress.elapsed_s, 2)}
        self.progress.history.append(record)
        self._emit(record)
        return improved

    def _save(self, improved: bool, rng_states: list[Any]) -> None:
        """Training state, latest model file and (when improved) best model file; rank 0 only.
        A save without validation (at the end of a run) leaves schedule and best untouched.
        Model files hold the EMA weights when ``ema_decay`` is on."""
        if not self.dist.is_main:
            return
        meta = {"step": self.progress.step, "config_name": self.config.name,
                "src_lang": self.config.data.src_lang, "tgt_lang": self.config.data.tgt_lang,
                "parameters": count_parameters(self.model)}
        weights = None
        if self.ema is not None:
            meta["ema_decay"] = self.ema.decay
            weights = self.ema.averaged_state_dict(self.model)
        self.run.save_state(self._state_payload(rng_states), self.progress.step)
        save_model_file(self.run.model_file, self.model, self.data.tokenizer, meta, weights,
                        shortlist=self.shortlist)
        if improved:
            save_model_file(self.run.best_file, self.model, self.data.tokenizer,
                            {**meta, "best_score": self.progress.best_score}, weights,
                            shortlist=self.shortlist)

    def _inference_weights(self) -> AbstractContextManager[None]:
        """A block in which ``self.model`` holds the weights its model files get: the EMA's
        when ``ema_decay`` is on (the raw ones come back after it), else its own."""
        return nullcontext() if self.ema is None else self.ema.swapped_in(self.model)

    def _state_payload(self, rng_states: list[Any]) -> dict[str, Any]:
        return {
            "format": TRAIN_STATE_FORMAT, "version": FORMAT_VERSION, "run_id": self.run_id,
            "config": self.config.model_dump(mode="json"),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(self.model),
            "schedule": self.schedule.state_dict(), "scaler": self.scaler.state_dict(),
            "rng": rng_states, "data": self.plan.state_dict(),
            "progress": self.progress.state_dict(),
            **tokenizer_payload(self.data.tokenizer),
            "shortlist": None if self.shortlist is None else self.shortlist.state_dict(),
        }

    # ---- resume -----------------------------------------------------------------------
    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(upgrade_state_dict(state["model"], state["version"]))
        if self.ema is not None and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        elif self.ema is not None:   # EMA switched on at this resume: it starts from here
            self.ema.reset(self.model)
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
        self.plan.load_state_dict(state["data"])
        self.progress = Progress.from_state_dict(state["progress"])
        rng = state["rng"]
        _set_rng_state(rng[self.dist.rank] if self.dist.rank < len(rng) else rng[0], self.device)
        if self.dist.is_main:
            self.run.truncate_metrics(self.progress.step)
        self.on_event({"kind": "resume", "step": self.progress.step})


def load_resume_state(run: RunFolder, config: Config) -> dict[str, Any] | None:
    """The run folder's latest training state (None: nothing to resume), checked against the
    config: the model and tokenizer sections must not have changed."""
    path = run.latest_state()
    if path is None:
        return None
    state = load_checkpoint(path, TRAIN_STATE_FORMAT)
    saved = saved_config_from_dict(state["config"])
    if saved.model != config.model or saved.tokenizer != config.tokenizer:
        raise CheckpointError(
            f"{path} was trained with a different model or tokenizer config; "
            "resume with the run's own config.yaml")
    return state


def prepare_on_every_rank(config: Config, tokenizer: Tokenizer | None, dist_info: DistInfo
                          ) -> PreparedData:
    """Rank 0 prepares the data when it is missing or stale; every rank then memory-maps the
    same prepared files (no rank encodes again)."""
    folder = prepared_folder(config)
    if dist_info.is_main:
        prepare(config, folder, tokenizer)
    if dist_info.enabled:
        torch.distributed.barrier()
    data = open_prepared(config, folder)
    if tokenizer is not None and data.tokenizer.fingerprint() != tokenizer.fingerprint():
        raise CheckpointError(f"the prepared data in {folder} uses other SentencePiece models "
                              "than the training state or model file")
    return data


class LanguageMismatchError(ValueError):
    """A model file fine-tuned on data of another language pair."""


def fine_tuning_config(config: Config, loaded: LoadedModel) -> Config:
    """``config`` with the model section of the model file it fine-tunes. The file's language
    pair (src_lang/tgt_lang in its metadata) must be the data's: LanguageMismatchError
    otherwise (a file without them is taken as it is)."""
    check_fine_tuning_languages(config, loaded)
    train = config.train
    if train.init_from is None and loaded.source:
        train = train.model_copy(update={"init_from": loaded.source})
    return config.model_copy(update={"model": loaded.model.config, "train": train})


def check_fine_tuning_languages(config: Config, loaded: LoadedModel) -> None:
    data = config.data
    model_pair = (loaded.meta.get("src_lang"), loaded.meta.get("tgt_lang"))
    if None in model_pair:
        return
    if model_pair != (data.src_lang, data.tgt_lang):
        raise LanguageMismatchError(
            f"{loaded.source or 'the model file'} translates {model_pair[0]}->{model_pair[1]} "
            f"but the fine-tuning data is {data.src_lang}->{data.tgt_lang} "
            "(data.src_lang/data.tgt_lang); fine-tune on data of the model's language pair")


def _plain(value: Any) -> Any:
    """JSON-ready copy of model metadata (numbers, strings, lists, dicts)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
