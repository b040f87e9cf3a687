"""ASGI middleware: request body size limit, and latency/status metrics per endpoint."""

from __future__ import annotations

import time

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import TooLarge
from service.metrics import Metrics


def error_response(error: Exception, status: int, kind: str, metrics: Metrics | None,
                   headers: dict[str, str] | None = None, **extra) -> JSONResponse:
    if metrics is not None:
        metrics.errors.labels(kind).inc()
    return JSONResponse({"error": str(error), "kind": kind, **extra}, status_code=status,
                        headers=headers)


class BodyLimitMiddleware:
    """Reads the whole body first (at most ``max_bytes``; more -> 413 without calling the app),
    then replays it; later receive() calls (disconnect) go to the server."""

    def __init__(self, app: ASGIApp, max_bytes: int, metrics: Metrics):
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(int(declared), scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":   # client gone before sending the body
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(size, scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, size: int, scope: Scope, receive: Receive, send: Send) -> None:
        error = TooLarge(f"the request body is larger than the limit of {self.max_bytes} bytes "
                         f"({size} bytes or more)")
        response = error_response(error, error.status, error.kind, self.metrics)
        await response(scope, receive, send)


class MetricsMiddleware:
    """Latency histogram and request counter labelled by the matched route's path."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.request_latency.labels(endpoint).observe(time.perf_counter() - started)
            self.metrics.requests.labels(endpoint, str(status)).inc()
