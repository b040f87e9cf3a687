"""Test helpers of the HTTP service: a tiny trained model file, fake translators with controlled
timing, an in-process client (lifespan included) and a real uvicorn server in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import torch

from s2s.checkpoint import CheckpointError
from s2s.inference.interrupt import NO_INTERRUPT, Interrupt, run_to_end
from s2s.inference.translator import (
    Candidate,
    InputTooLongError,
    Source,
    TranslateOptions,
    Translation,
    Translator,
)
from service.app import create_app
from service.http.server import make_server
from service.settings import Settings


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A model file of the demo task (English dates in words -> DD.MM.YYYY) trained for a few
    seconds: translations are poor but deterministic and non-empty."""
    from s2s.training.trainer import Trainer
    from tests.helpers import tiny_demo_config

    run_dir = tmp_path_factory.mktemp("service_run")
    Trainer.build(tiny_demo_config(run_dir, max_steps=40, valid_every=20)).train()
    return run_dir / "best.pt"


@pytest.fixture
def models_dir(tmp_path, tiny_model_file) -> Path:
    """A models folder holding the tiny model as en-date.pt."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(tiny_model_file, folder / "en-date.pt")
    return folder


ADMIN_KEY = "admin-test-key"
ADMIN = {"X-Admin-Key": ADMIN_KEY}


def settings_for(models_dir: Path, **values: Any) -> Settings:
    base = dict(models_dir=models_dir, device="cpu", max_wait_ms=0, reload_on_sighup=False,
                default_beam_size=2, admin_api_key=ADMIN_KEY)
    return Settings(**{**base, **values})


class FakeTranslator:
    """Translator stand-in: ``name(text)`` per sentence; records every batch it gets.

    gate: a threading.Event each batch waits for; delay: seconds per decoding step; steps:
    decoding steps per batch; oom_above: raise CUDA out-of-memory for batches with more
    sentences than this."""

    def __init__(self, name: str = "fake", gate: threading.Event | None = None,
                 delay: float = 0.0, oom_above: int | None = None, max_src_len: int = 50,
                 steps: int = 1):
        self.name = name
        self.gate = gate
        self.delay = delay
        self.oom_above = oom_above
        self.max_src_len = max_src_len
        self.meta = {"fake": name}
        self.calls: list[tuple[list[str], TranslateOptions]] = []
        self.prepared = 0     # texts prepare() tokenized
        self.steps = steps
        self.steps_run: list[int] = []   # per batch: texts still wanted at its end

    @property
    def batches(self) -> list[list[str]]:
        return [texts for texts, _ in self.calls]

    def translated(self) -> list[str]:
        return [text for texts in self.batches for text in texts]

    def prepare(self, texts) -> list[Source]:
        sources = [Source(text.strip(), tuple([1] * len(text.split()))) for text in texts]
        for index, source in enumerate(sources):
            if len(source) > self.max_src_len:
                raise InputTooLongError(index, len(source), self.max_src_len)
        self.prepared += len(sources)
        return sources

    def translate(self, texts, options: TranslateOptions | None = None) -> list[Translation]:
        return self.translate_sources(self.prepare(texts), options)

    def translate_sources(self, sources, options: TranslateOptions | None = None
                          ) -> list[Translation]:
        return run_to_end(self.translation_steps(sources, options))

    def translation_steps(self, sources, options: TranslateOptions | None = None,
                          interrupt: Interrupt = NO_INTERRUPT, n_bests=None):
        """``steps`` decoding steps of ``delay`` seconds each; a dropped text (interrupt)
        comes back empty."""
        texts = [source.text for source in sources]
        options = options or TranslateOptions()
        self.calls.append((texts, options))
        if self.gate is not None:
            self.gate.wait(10)
        if self.oom_above is not None and len(texts) > self.oom_above:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
        dropped: set[int] = set()
        for _ in range(self.steps):
            if self.delay:
                time.sleep(self.delay)
            dropped |= set(interrupt.dropped(range(len(texts))))
            if len(dropped) == len(texts):
                break
            yield
        self.steps_run.append(len(texts) - len(dropped))
        wanted = n_bests or [options.search.n_best] * len(texts)
        return [Translation("", 0.0, []) if i in dropped else self.result(text, options, n)
                for i, (text, n) in enumerate(zip(texts, wanted))]

    def result(self, text: str, options: TranslateOptions, n_best: int | None = None
               ) -> Translation:
        if not text.strip():
            return Translation("", 0.0, [])
        source = text.split()
        candidates = []
        for rank in range(n_best or options.search.n_best):
            out = f"{self.name}({text.strip()})" + (f"#{rank}" if rank else "")
            tokens = out.split()
            attention = [[1.0 / len(source)] * len(source) for _ in range(len(tokens) + 1)]
            candidates.append(Candidate(out, -1.0 - rank, -0.5 - rank, tokens,
                                        attention if options.search.return_attention else None))
        best = candidates[0]
        return Translation(best.text, best.score, best.tokens, source, best.attention,
                           candidates)


def fake_file_factory(**fake_options: Any):
    """Loads "model files" that are text files starting with 'fake' (the rest names the model);
    anything else raises CheckpointError as a corrupt model file would."""

    def load(path: Path) -> FakeTranslator:
        content = path.read_bytes()
        if not content.startswith(b"fake"):
            raise CheckpointError(f"{path} is not a readable checkpoint (fake)")
        return FakeTranslator(name=content.decode().strip(), **fake_options)

    return load


class RecordingTranslator:
    """A real Translator that records the size of every batch it runs."""

    def __init__(self, path: Path):
        self.inner = Translator.from_file(path, "cpu", "fp32")
        self.tokenizer = self.inner.tokenizer
        self.max_src_len = self.inner.max_src_len
        self.meta = self.inner.meta
        self.batch_sizes: list[int] = []

    def prepare(self, texts):
        return self.inner.prepare(texts)

    def translate(self, texts, options=None):
        return run_to_end(self.translation_steps(self.prepare(texts), options))

    def translation_steps(self, sources, options=None, interrupt: Interrupt = NO_INTERRUPT,
                          n_bests=None):
        self.batch_sizes.append(len(sources))
        return self.inner.translation_steps(sources, options, interrupt, n_bests)


@contextlib.asynccontextmanager
async def serve(settings: Settings, factory=None, wait_ready: bool = True
                ) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, and an httpx client talking to it in-process."""
    app = create_app(settings, factory)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            client.app = app
            if wait_ready:
                await wait_until(lambda: app.state.service.registry.startup_done)
            yield client


async def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(settings: Settings, factory=None) -> Iterator[SimpleNamespace]:
    """The service's own server (service.http.server: connection limits, draining shutdown) on a
    free localhost port in a thread, once the models are loaded: yields .url, .port and
    .server (server.handle_exit(signal.SIGTERM, None) is what SIGTERM does)."""
    app = create_app(settings, factory)
    port = free_port()
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": port,
                                           "log_level": "warning"})
    server = make_server(app, settings)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not (server.started and app.state.service.registry.startup_done):
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        yield SimpleNamespace(url=url, port=port, server=server, thread=thread, app=app)
    finally:
        server.should_exit = True
        thread.join(15)
