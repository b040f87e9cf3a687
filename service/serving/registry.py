"""The models being served: one per language pair, each with a batcher. A pair is a file
``<src>-<tgt>.pt`` or a folder ``<src>-<tgt>/`` whose ``*.pt`` files (same SentencePiece models,
taken in name order) translate as an ensemble; a folder with model files wins over a file of
the same pair. A folder reloads when any of its files changes, appears or goes.

All torch work (loading, warm-up and every model's batches) runs in one thread, the registry's
``torch`` worker (serving.torch_worker explains why). A reload therefore holds up the
batches while the new file loads. A (re)loaded model is swapped in only
after it loaded and translated the warm-up sentence; a file that fails keeps the old model
serving and the error is reported, without paths or raw exception text (the log has them). The
registry is ready while at least one pair serves; each pair reports its own state. On SIGTERM
``begin_drain`` refuses new requests and, once the grace period is over, tells the waiting ones
to give up (503), so no accepted request is cut off.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s2s.checkpoint import MODEL_FORMAT, CheckpointError, load_checkpoint
from s2s.devices import resolve_device
from s2s.inference.search import SearchOptions
from s2s.inference.translator import TranslateOptions, Translator, VocabularyMismatchError
from service.errors import StartupError
from service.serving.batcher import Batcher, Translating
from service.serving.metrics import Metrics
from service.serving.torch_worker import TorchWorker
from service.settings import Settings

log = logging.getLogger(__name__)

PAIR_FILE = re.compile(r"^([A-Za-z]{2,8})-([A-Za-z]{2,8})\.pt$")
PAIR_FOLDER = re.compile(r"^([A-Za-z]{2,8})-([A-Za-z]{2,8})$")

LANGUAGE_NAMES = {
    "ar": "Arabic", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "fi": "Finnish", "fr": "French", "hi": "Hindi",
    "hu": "Hungarian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "nl": "Dutch",
    "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sv": "Swedish",
    "tr": "Turkish", "uk": "Ukrainian", "zh": "Chinese",
}

TranslatorFactory = Callable[[Path], Translating]   # a pair's file or ensemble folder -> translator


def default_factory(settings: Settings) -> TranslatorFactory:
    """Translator.from_files of the pair's model files with the settings' device; dtype by
    the device it resolves to."""

    def load(path: Path) -> Translator:
        device = resolve_device(settings.device)
        dtype = settings.dtype if device.type == "cuda" else settings.cpu_dtype
        return Translator.from_files(member_files(path), str(device), dtype)

    return load


def member_files(path: Path) -> list[Path]:
    """A pair's model files: the file itself, or an ensemble folder's ``*.pt`` files by name."""
    if not path.is_dir():
        return [path]
    return sorted(child for child in path.iterdir() if child.suffix == ".pt" and child.is_file())


def check_models_dir(settings: Settings) -> None:
    """StartupError unless the models folder exists (a typo there would otherwise serve
    nothing, forever not ready)."""
    folder = Path(settings.models_dir)
    if not folder.is_dir():
        where = "is not a folder" if folder.exists() else "does not exist"
        raise StartupError(f"the models folder {folder} {where} (models_dir / S2S_MODELS_DIR "
                           f"/ --models-dir; it holds <src>-<tgt>.pt model files)")


def find_model_files(folder: Path) -> dict[str, Path]:
    """{"de-en": folder/de-en.pt, "en-de": folder/en-de (an ensemble folder), ...}; other
    files, and folders without model files, are ignored."""
    if not folder.is_dir():
        return {}
    found, folders = {}, {}
    for path in sorted(folder.iterdir()):
        if (match := PAIR_FILE.match(path.name)) and path.is_file():
            found[f"{match[1].lower()}-{match[2].lower()}"] = path
        elif (match := PAIR_FOLDER.match(path.name)) and path.is_dir() and member_files(path):
            folders[f"{match[1].lower()}-{match[2].lower()}"] = path
    return dict(sorted({**found, **folders}.items()))


def misnamed_model_files(folder: Path) -> list[Path]:
    """``*.pt`` files directly in the models folder that are not named ``<src>-<tgt>.pt`` (so
    not served), e.g. a training run's ``best.pt`` copied as it was."""
    if not folder.is_dir():
        return []
    return [path for path in sorted(folder.iterdir())
            if path.suffix == ".pt" and path.is_file() and not PAIR_FILE.match(path.name)]


def needed_name(path: Path) -> str:
    """The name a model file must have to be served: ``<src>-<tgt>.pt`` from its metadata when
    it is a readable model file that records its languages, else the pattern itself."""
    try:
        meta = load_checkpoint(path, MODEL_FORMAT).get("meta") or {}
    except Exception:  # noqa: BLE001 - any unreadable file just gets the pattern
        meta = {}
    source, target = meta.get("src_lang"), meta.get("tgt_lang")
    if (isinstance(source, str) and isinstance(target, str)
            and PAIR_FILE.match(f"{source}-{target}.pt")):
        return f"{source.lower()}-{target.lower()}.pt"
    return "<src>-<tgt>.pt"


def misnamed_hint(name: str, needed: str) -> str:
    return (f"{name} is not served: model files must be named <src>-<tgt>.pt; rename it to "
            f"{needed}" + (" (from its metadata)" if not needed.startswith("<") else
                           " (e.g. de-en.pt)"))


def file_signature(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


def pair_signature(path: Path) -> tuple:
    """Changes when the pair's model file, or any file of its ensemble folder (or which files
    it holds), changes."""
    if not path.is_dir():
        return file_signature(path)
    return tuple((member.name, *file_signature(member)) for member in member_files(path))


@dataclass
class ModelSlot:
    pair: str
    path: Path
    batcher: Batcher | None = None
    signature: tuple | None = None
    loaded_at: float | None = None
    error: str | None = None
    members: int = 1            # model files of the serving translator (an ensemble: > 1)

    @property
    def source(self) -> str:
        return self.pair.split("-")[0]

    @property
    def target(self) -> str:
        return self.pair.split("-")[1]

    @property
    def translator(self) -> Translating | None:
        return None if self.batcher is None else self.batcher.translator

    @property
    def serving(self) -> bool:
        return self.batcher is not None

    def state(self) -> dict[str, Any]:
        """"ready", "loading" or "failed" with the reason (no paths, no raw errors); an
        ensemble that serves also gives its number of ``members``."""
        if self.serving:
            state: dict[str, Any] = {"state": "ready"}
            if self.members > 1:
                state["members"] = self.members
            if self.error:
                state["last_reload"] = f"failed ({self.error}); the previous model serves"
            return state
        if self.error:
            return {"state": "failed", "reason": self.error}
        return {"state": "loading"}


def describe_load_error(error: Exception) -> str:
    """What a client may learn of a failed load: the kind of failure, never a path or a raw
    exception text (the server log has those)."""
    if isinstance(error, VocabularyMismatchError):
        return "the ensemble's model files do not share their SentencePiece models"
    if isinstance(error, CheckpointError):
        return ("not a readable s2s model file (corrupt, truncated, foreign or of an unknown "
                "format version)")
    if isinstance(error, OSError):
        return "the model file cannot be read"
    if isinstance(error, ValueError):
        return "the model cannot run with the server's device or dtype settings"
    return f"loading failed ({type(error).__name__})"


@dataclass
class ReloadReport:
    loaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class ModelRegistry:
    def __init__(self, settings: Settings, metrics: Metrics,
                 factory: TranslatorFactory | None = None):
        self.settings = settings
        self.metrics = metrics
        self.factory = factory or default_factory(settings)
        self.slots: dict[str, ModelSlot] = {}
        self.startup_done = False
        self.torch = TorchWorker()
        self._lock = asyncio.Lock()
        self.draining = False
        self.drain_expired = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None   # set by startup()
        self.misnamed: dict[str, str] = {}   # file name -> what to rename it to (a sentence)
        self._misnamed_cache: dict[str, tuple[tuple, str]] = {}

    @property
    def ready(self) -> bool:
        return self.startup_done and not self.draining and bool(self.serving_slots())

    def readiness(self) -> dict[str, Any]:
        state = {"ready": self.ready, "startup_done": self.startup_done,
                 "draining": self.draining,
                 "models": {pair: slot.state() for pair, slot in self.slots.items()}}
        if self.misnamed:
            state["misnamed_files"] = dict(self.misnamed)
        return state

    def begin_drain(self, grace_s: float) -> None:
        """Shutdown started: refuse new requests; after ``grace_s`` the waiting ones get 503
        and the running batches stop."""
        if self.draining:
            return
        self.draining = True
        log.info("draining: new requests are refused, in-flight ones have %.0f s", grace_s)
        asyncio.get_running_loop().call_later(grace_s, self._expire_drain)

    def _expire_drain(self) -> None:
        self.drain_expired.set()
        for slot in self.slots.values():
            if slot.batcher is not None:
                slot.batcher.cancel_all()

    def serving_slots(self) -> list[ModelSlot]:
        return [slot for slot in self.slots.values() if slot.serving]

    def languages(self) -> list[dict[str, Any]]:
        """LibreTranslate's shape: one entry per source language with its targets."""
        targets: dict[str, list[str]] = {}
        for slot in self.serving_slots():
            targets.setdefault(slot.source, []).append(slot.target)
        return [{"code": code, "name": LANGUAGE_NAMES.get(code, code), "targets": sorted(tgts)}
                for code, tgts in sorted(targets.items())]

    def _load_and_warm(self, path: Path) -> Translating:
        """In the torch thread: load the file and translate the warm-up sentence."""
        translator = self.factory(path)
        options = TranslateOptions(search=SearchOptions(beam_size=self.settings.default_beam_size))
        translator.translate([self.settings.warmup_text], options)
        return translator

    def _new_batcher(self, pair: str, translator: Translating) -> Batcher:
        s = self.settings
        batcher = Batcher(pair, translator, self.torch, max_tokens=s.max_batch_tokens,
                          max_sentences=s.max_batch_sentences, max_wait_s=s.max_wait_ms / 1000,
                          max_delay_s=s.max_delay_ms / 1000, capacity=s.queue_capacity,
                          metrics=self.metrics, max_batch_seconds=s.max_batch_seconds,
                          caller_share=s.caller_queue_share, max_groups=s.max_option_groups,
                          retry_after_s=s.retry_after_s,
                          max_queue_wait_s=s.max_queue_wait_s,
                          express_sentences=s.express_sentences)
        batcher.start()
        return batcher

    async def startup(self) -> None:
        """Load and warm up every model file (the ready state follows)."""
        self.loop = asyncio.get_running_loop()
        try:
            report = await self.reload()
            if not self.slots:
                log.warning("no model files (<src>-<tgt>.pt or <src>-<tgt>/*.pt) in %s: "
                            "not ready", self.settings.models_dir)
            for hint in self.misnamed.values():
                log.warning("%s", hint)
            for pair, reason in report.failed.items():
                log.error("model %s failed to load: %s", pair, reason)
        finally:
            self.startup_done = True

    async def reload(self, force: bool = False) -> ReloadReport:
        """Load new or changed pairs (all with ``force``), drop pairs whose file or folder is
        gone."""
        async with self._lock:
            report = ReloadReport()
            found = find_model_files(self.settings.models_dir)
            for pair, path in found.items():
                await self._reload_one(pair, path, force, report)
            await self._find_misnamed()
            for pair in [pair for pair in self.slots if pair not in found]:
                slot = self.slots.pop(pair)
                if slot.batcher is not None:
                    await slot.batcher.close()
                self.metrics.model_ready.labels(pair).set(0)
                report.removed.append(pair)
            return report

    async def _find_misnamed(self) -> None:
        """Note the ``*.pt`` files that are not served for their name, with the name each
        needs (read from its metadata in the torch thread, once per file version)."""
        found: dict[str, str] = {}
        cache: dict[str, tuple[tuple, str]] = {}
        for path in misnamed_model_files(self.settings.models_dir):
            try:
                signature = file_signature(path)
            except OSError:
                continue
            cached = self._misnamed_cache.get(path.name)
            if cached is not None and cached[0] == signature:
                needed = cached[1]
            else:
                needed = await self.torch.call(needed_name, path)
            cache[path.name] = (signature, needed)
            found[path.name] = misnamed_hint(path.name, needed)
        self.misnamed, self._misnamed_cache = found, cache

    async def _reload_one(self, pair: str, path: Path, force: bool, report: ReloadReport) -> None:
        slot = self.slots.setdefault(pair, ModelSlot(pair, path))
        try:
            signature = pair_signature(path)
        except OSError as error:
            log.error("cannot read %s: %s", path, error)
            report.failed[pair] = slot.error = describe_load_error(error)
            return
        if slot.serving and signature == slot.signature and not force:
            report.unchanged.append(pair)
            return
        try:
            translator = await self.torch.call(self._load_and_warm, path)
        except Exception as error:  # any failure keeps the old model serving
            slot.error = describe_load_error(error)
            report.failed[pair] = slot.error
            self.metrics.reloads.labels(pair, "failed").inc()
            log.error("loading %s failed (%s: %s); %s", path, type(error).__name__, error,
                      "the old model keeps serving" if slot.serving else "pair not served")
            return
        if slot.batcher is None:
            slot.batcher = self._new_batcher(pair, translator)
        else:
            slot.batcher.translator = translator   # batches from now on use the new model
        slot.path, slot.signature, slot.loaded_at, slot.error = path, signature, time.time(), None
        slot.members = len(signature) if path.is_dir() else 1
        self.metrics.model_ready.labels(pair).set(1)
        self.metrics.reloads.labels(pair, "loaded").inc()
        report.loaded.append(pair)
        log.info("serving %s from %s", pair, path)

    async def close(self, drain: bool = True) -> None:
        """Stop the batchers, finishing their queued work (``drain``) or cancelling it, then
        the torch thread."""
        for slot in self.slots.values():
            if slot.batcher is not None:
                await slot.batcher.close(drain)
        self.torch.close()
