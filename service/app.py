"""The HTTP translation service: FastAPI app factory, lifespan (model loading, SIGHUP reload,
draining on shutdown) and error handlers.

Run with ``s2s-serve [--settings FILE] [--models-dir DIR] [--port N] ...`` (service.http.server:
connection limits, a draining shutdown), or with plain uvicorn (settings from ``S2S_*``
environment variables, see service/settings.py; without those server-side guards)::

    S2S_MODELS_DIR=models uvicorn service.app:create_app --factory --host 0.0.0.0 --port 8000

Models load in the background after start: /health answers at once, /ready once a model is
loaded and warmed up. A models folder that does not exist stops the server at startup
(StartupError). /docs serves Swagger UI's own files (the fastapi-offline package), so it works
offline and under the Content-Security-Policy every response carries. SIGHUP (or POST
/admin/reload, with the admin key) reloads new or changed model files. On shutdown whatever
is still queued is cancelled (s2s-serve has already given in-flight requests their grace
period).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import torch
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from service.formats.documents import SUPPORTED_FORMATS
from service.http.frontend import STATIC
from service.http.handlers import add_error_handlers
from service.http.middleware import (
    BodyLimitMiddleware,
    MetricsMiddleware,
    ProxyHeadersMiddleware,
    SecurityHeadersMiddleware,
)
from service.http.routes import ROUTERS
from service.http.server import redact_access_log
from service.serving.metrics import Metrics
from service.serving.registry import ModelRegistry, TranslatorFactory, check_models_dir
from service.settings import Settings
from service.state import Service
from service.stores.files import FileStore
from service.stores.glossaries import GlossaryStore
from service.stores.keys import KeyStore
from service.stores.rate_limits import RateLimiter
from service.stores.suggestions import SuggestionStore

log = logging.getLogger("service")


def make_files(settings: Settings) -> FileStore | None:
    if settings.files_dir is None:
        return None
    return FileStore(settings.files_dir, settings.file_ttl_s, settings.max_stored_file_bytes,
                     extensions=SUPPORTED_FORMATS)


def create_app(settings: Settings | None = None,
               translator_factory: TranslatorFactory | None = None) -> FastAPI:
    """The app; ``translator_factory(path)`` replaces Translator.from_file (tests)."""
    settings = settings or Settings()
    redact_access_log()
    metrics = Metrics()
    busy = settings.sqlite_busy_timeout_s
    suggestions = (None if settings.suggestions_db is None
                   else SuggestionStore(settings.suggestions_db, busy_timeout_s=busy))
    rate_file = settings.rate_limit_file()
    service = Service(settings, metrics, ModelRegistry(settings, metrics, translator_factory),
                      suggestions=suggestions,
                      keys=None if settings.keys_db is None
                      else KeyStore(settings.keys_db, busy_timeout_s=busy),
                      limiter=None if rate_file is None
                      else RateLimiter(rate_file, busy_timeout_s=busy),
                      files=make_files(settings),
                      glossaries=None if settings.glossaries_db is None
                      else GlossaryStore(settings.glossaries_db, busy_timeout_s=busy))
    app = FastAPI(title="s2s translation service", version="0.1.0", lifespan=_lifespan,
                  docs_url=None, redoc_url=None,
                  description="LSTM + attention NMT with dynamic batching. Errors are JSON "
                              '`{"error": message, "kind": kind}`.')
    app.state.service = service
    for router in ROUTERS:
        app.include_router(router)
    add_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_error_handlers(app, service)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, metrics=metrics,
                       timeout_s=settings.body_timeout_s,
                       max_buffered=settings.max_buffered_body_bytes)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST"], allow_headers=["*"])
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    if settings.forwarded_allow_ips:   # outermost: every layer sees the client's address
        app.add_middleware(ProxyHeadersMiddleware, trusted=settings.forwarded_allow_ips)
    return app


def swagger_assets() -> Path | None:
    """The folder of Swagger UI's files shipped by the fastapi-offline package."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - Swagger UI</title>
<link rel="stylesheet" href="static/swagger/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="static/swagger/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
"""
DOCS_INIT = """window.ui = SwaggerUIBundle({
  url: "openapi.json", dom_id: "#swagger-ui", layout: "BaseLayout", deepLinking: true,
  showExtensions: true, showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""


def add_docs(app: FastAPI) -> None:
    """/docs from files this server serves (no CDN, no inline script: the page works offline
    and under script-src 'self'). Without the package, /docs says what to install."""
    assets = swagger_assets()
    if assets is not None:
        app.mount("/static/swagger", StaticFiles(directory=assets), name="swagger")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        if assets is None:
            return HTMLResponse("<p>The API docs need the fastapi-offline package (pip install "
                                "fastapi-offline); the schema is at /openapi.json.</p>", 503)
        return HTMLResponse(DOCS_PAGE.format(title=app.title))

    @app.get("/docs/init.js", include_in_schema=False)
    async def docs_init() -> Response:
        return Response(DOCS_INIT, media_type="text/javascript")


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    service: Service = app.state.service
    check_models_dir(service.settings)
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

    def remove() -> None:
        loop.remove_signal_handler(signal.SIGHUP)
    return remove
