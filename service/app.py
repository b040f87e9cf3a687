"""The HTTP translation service: FastAPI app factory, lifespan (model loading, SIGHUP reload,
draining on shutdown) and error handlers.

Run with ``s2s-serve [--settings FILE] [--models-dir DIR] [--port N] ...`` (service.http.server:
connection limits, a draining shutdown), or with plain uvicorn (settings from ``S2S_*``
environment variables, see service/settings.py; without those server-side guards)::

    S2S_MODELS_DIR=models uvicorn service.app:create_app --factory --host 0.0.0.0 --port 8000

Models load in the background after start: /health answers at once, /ready once a model is
loaded and warmed up. SIGHUP (or POST /admin/reload, with the admin key) reloads new or changed
model files. On shutdown whatever is still queued is cancelled (s2s-serve has already given
in-flight requests their grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable

import torch
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from service.http.frontend import STATIC
from service.http.handlers import add_error_handlers
from service.http.middleware import BodyLimitMiddleware, MetricsMiddleware
from service.http.routes import ROUTERS
from service.http.server import redact_access_log
from service.serving.metrics import Metrics
from service.serving.registry import ModelRegistry, TranslatorFactory
from service.settings import Settings
from service.state import Service
from service.stores.files import FileStore
from service.stores.keys import KeyStore
from service.stores.rate_limits import RateLimiter
from service.stores.suggestions import SuggestionStore

log = logging.getLogger("service")


def make_files(settings: Settings) -> FileStore | None:
    if settings.files_dir is None:
        return None
    return FileStore(settings.files_dir, settings.file_ttl_s, settings.max_stored_file_bytes)


def create_app(settings: Settings | None = None,
               translator_factory: TranslatorFactory | None = None) -> FastAPI:
    """The app; ``translator_factory(path)`` replaces Translator.from_file (tests)."""
    settings = settings or Settings()
    redact_access_log()
    metrics = Metrics()
    suggestions = (None if settings.suggestions_db is None
                   else SuggestionStore(settings.suggestions_db))
    rate_file = settings.rate_limit_file()
    service = Service(settings, metrics, ModelRegistry(settings, metrics, translator_factory),
                      suggestions=suggestions,
                      keys=None if settings.keys_db is None else KeyStore(settings.keys_db),
                      limiter=None if rate_file is None else RateLimiter(rate_file),
                      files=make_files(settings))
    app = FastAPI(title="s2s translation service", version="0.1.0", lifespan=_lifespan,
                  description="LSTM + attention NMT with dynamic batching. Errors are JSON "
                              '`{"error": message, "kind": kind}`.')
    app.state.service = service
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_error_handlers(app, service)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, metrics=metrics,
                       timeout_s=settings.body_timeout_s,
                       max_buffered=settings.max_buffered_body_bytes)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST"], allow_headers=["*"])
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    service: Service = app.state.service
    if service.settings.threads:
        torch.set_num_threads(service.settings.threads)
    loading = asyncio.create_task(service.registry.startup(), name="load-models")
    cleaning = (asyncio.create_task(_clean_files(service.files, service.settings.file_ttl_s / 2),
                                    name="clean-files") if service.files else None)
    remove_handler = (_install_sighup(service.registry) if service.settings.reload_on_sighup
                      else lambda: None)
    try:
        yield
    finally:
        remove_handler()
        if cleaning is not None:
            cleaning.cancel()
        if not loading.done():
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
        await service.registry.close(drain=False)   # uvicorn's graceful period is over


async def _clean_files(files: FileStore, every_s: float) -> None:
    """Delete expired translated files now and then (downloads also check expiry)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await asyncio.to_thread(files.cleanup)
        except OSError:
            log.exception("cleaning the translated files failed")


_background: set[asyncio.Task] = set()


def _install_sighup(registry: ModelRegistry) -> Callable[[], None]:
    loop = asyncio.get_running_loop()

    async def reload() -> None:
        report = await registry.reload()
        log.info("SIGHUP reload: loaded %s, unchanged %s, removed %s, failed %s",
                 report.loaded, report.unchanged, report.removed, report.failed)

    def on_signal() -> None:
        task = loop.create_task(reload())
        _background.add(task)
        task.add_done_callback(_background.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, on_signal)
    except (NotImplementedError, RuntimeError, ValueError, AttributeError):
        log.info("SIGHUP reload not available here (not the main thread or no signals)")
        return lambda: None
    return lambda: loop.remove_signal_handler(signal.SIGHUP)
