"""The HTTP translation service: FastAPI app factory, lifespan (model loading, SIGHUP reload,
draining on shutdown) and error handlers.

Run with ``s2s-serve [--settings FILE] [--models-dir DIR] [--port N] ...`` (service.server:
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
from dataclasses import dataclass, field

import torch
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from service.api import STATIC, router
from service.errors import ServiceError
from service.files import FileStore
from service.keys import KeyStore, RateLimiter
from service.langid import LanguageIdentifier
from service.metrics import Metrics
from service.middleware import BodyLimitMiddleware, MetricsMiddleware, error_response
from service.models import ModelRegistry, TranslatorFactory
from service.server import redact_access_log
from service.settings import Settings
from service.suggestions import SuggestionStore

log = logging.getLogger("service")


@dataclass
class Service:
    settings: Settings
    metrics: Metrics
    registry: ModelRegistry
    langid: LanguageIdentifier = field(default_factory=LanguageIdentifier)
    suggestions: SuggestionStore | None = None
    keys: KeyStore | None = None
    limiter: RateLimiter | None = None
    files: FileStore | None = None


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
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_error_handlers(app, service)
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


def _add_error_handlers(app: FastAPI, service: Service) -> None:
    metrics = service.metrics

    @app.exception_handler(ServiceError)
    async def service_error(_request: Request, error: ServiceError) -> JSONResponse:
        headers = dict(error.headers)
        if error.status == 503:
            headers.setdefault("Retry-After", str(service.settings.retry_after_s))
        return error_response(error, error.status, error.kind, metrics, headers, **error.extra)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        summary = "; ".join(f"{'.'.join(str(part) for part in e.get('loc', ()))}: {e.get('msg')}"
                            for e in problems[:5])
        return error_response(f"invalid request: {summary}", 422, "invalid_request", metrics,
                              detail=jsonable_encoder(
                                  [{key: e[key] for key in ("type", "loc", "msg") if key in e}
                                   for e in problems]))

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        return error_response(error.detail, error.status_code, f"http_{error.status_code}",
                              metrics, getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(f"internal error: {type(error).__name__}", 500, "internal",
                              metrics)
