"""The HTTP server around the app: uvicorn with connection hygiene and a bounded shutdown.

- Headers must arrive within ``header_timeout_s`` of a connection opening (or of a kept-alive
  connection starting its next request); a slow sender is disconnected. The body has
  ``body_timeout_s`` (service.http.middleware), idle kept-alive connections ``keep_alive_s``.
- Above ``max_connections`` open connections a request gets a JSON 503 with Retry-After, and
  above twice that a new connection is closed at once, so slow clients cannot hold sockets and
  memory without limit.
- SIGTERM: uvicorn stops accepting connections; the registry refuses new requests and, after
  ``shutdown_grace_s``, answers the ones still waiting with 503; uvicorn's own graceful period
  is a little longer, so every accepted request gets an answer before the process exits.
- The access log never shows query strings' values (an ``api_key`` there would leak).
- X-Forwarded-For is believed only from ``forwarded_allow_ips`` (service.http.middleware), not
  from uvicorn's own default of 127.0.0.1.
- A server that cannot start (no models folder) exits non-zero with the reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.errors import StartupError
from service.serving.registry import check_models_dir
from service.settings import Settings

log = logging.getLogger("service")
SHUTDOWN_MARGIN_S = 2.0   # uvicorn's graceful period beyond the registry's grace


async def too_many_connections(scope: Any, receive: Any, send: Any) -> None:
    body = json.dumps({"error": "too many open connections; retry later",
                       "kind": "too_many_connections"}).encode()
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class GuardedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a header timeout and a connection cap (set by ``protocol_for``)."""

    header_timeout_s = 10.0
    max_connections = 256
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > 2 * self.max_connections:
            transport.close()
            return
        self._start_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_header_timer()

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        if len(self.connections) <= self.max_connections:
            super().on_headers_complete()
            return
        app, self.app = self.app, too_many_connections
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def _start_header_timer(self) -> None:
        self._stop_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _stop_header_timer(self) -> None:
        timer = self._header_timer
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def protocol_for(settings: Settings) -> type[GuardedProtocol]:
    return type("ConfiguredGuardedProtocol", (GuardedProtocol,), {
        "header_timeout_s": settings.header_timeout_s,
        "max_connections": settings.max_connections})


QUERY_VALUE = re.compile(r"=[^&\s]*")


class RedactQueryValues(logging.Filter):
    """Access-log records: ``/translate?api_key=SECRET`` -> ``/translate?api_key=***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, mark, query = args[2].partition("?")
            if mark:
                record.args = (*args[:2], f"{path}?{QUERY_VALUE.sub('=***', query)}", *args[3:])
        return True


REDACTION = RedactQueryValues()


def redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if REDACTION not in access.filters:
        access.addFilter(REDACTION)


class DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT, also tells the app's registry to drain (see the module docstring)."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, grace_s: float):
        super().__init__(config)
        self.app = app
        self.grace_s = grace_s

    def handle_exit(self, sig: int, frame: Any) -> None:
        registry = self.app.state.service.registry
        loop = registry.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(registry.begin_drain, self.grace_s)
        super().handle_exit(sig, frame)


def make_server(app: FastAPI, settings: Settings) -> DrainingServer:
    """The configured server for ``app`` (not started)."""
    redact_access_log()
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level,
        http=protocol_for(settings), timeout_keep_alive=int(max(1, settings.keep_alive_s)),
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s + SHUTDOWN_MARGIN_S + 0.999))
    return DrainingServer(config, app, settings.shutdown_grace_s)


def serve(app: FastAPI, settings: Settings) -> None:
    """Run the app until SIGTERM/SIGINT, then shut down within the grace period. SystemExit
    (non-zero, with the reason) when the server cannot start."""
    try:
        check_models_dir(settings)
    except StartupError as error:
        raise SystemExit(f"s2s-serve: cannot start: {error}") from None
    server = make_server(app, settings)
    server.run()
    if not server.started:
        raise SystemExit("s2s-serve: the server did not start (see the log above)")
