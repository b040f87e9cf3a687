"""ASGI middleware: request body limits (size, time, bytes held across connections), and
latency/status metrics per endpoint."""

from __future__ import annotations

import asyncio
import time

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import Overloaded, ServiceError, TooLarge
from service.serving.metrics import Metrics


def error_response(error: Exception, status: int, kind: str, metrics: Metrics | None,
                   headers: dict[str, str] | None = None, **extra) -> JSONResponse:
    if metrics is not None:
        metrics.errors.labels(kind).inc()
    return JSONResponse({"error": str(error), "kind": kind, **extra}, status_code=status,
                        headers=headers)


class BodyTimeout(ServiceError):
    status, kind = 408, "body_timeout"


class BodyLimitMiddleware:
    """Reads the whole body first, then replays it; later receive() calls (disconnect) go to the
    server. Refused without calling the app: more than ``max_bytes`` (413), not all of it
    within ``timeout_s`` (408), or more than ``max_buffered`` bytes held by all requests'
    bodies at once (503)."""

    def __init__(self, app: ASGIApp, max_bytes: int, metrics: Metrics, timeout_s: float = 10.0,
                 max_buffered: int = 64_000_000):
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics
        self.timeout_s = timeout_s
        self.max_buffered = max_buffered
        self.buffered = 0       # body bytes held by all requests now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(self._too_large(int(declared)), scope, receive, send)
            return
        body, error = await self._read(receive)
        if error is not None:
            await self._refuse(error, scope, receive, send)
            return
        if body is None:
            return
        self.buffered += len(body)      # held until the app is done with the request
        try:
            await self.app(scope, self._replay(body, receive), send)
        finally:
            self.buffered -= len(body)

    async def _read(self, receive: Receive) -> tuple[bytes | None, ServiceError | None]:
        """The body, or the reason to refuse it; (None, None) when the client went away."""
        chunks, size = [], 0
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        try:
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                message = await asyncio.wait_for(receive(), max(remaining, 0.001))
                if message["type"] != "http.request":   # client gone before sending the body
                    return None, None
                chunk = message.get("body", b"")
                if self.buffered + len(chunk) > self.max_buffered:
                    return None, Overloaded("the server holds too many request bodies; retry "
                                            "later")
                chunks.append(chunk)
                size += len(chunk)
                self.buffered += len(chunk)
                if size > self.max_bytes:
                    return None, self._too_large(size)
                if not message.get("more_body", False):
                    return b"".join(chunks), None
        except TimeoutError:
            return None, BodyTimeout(f"the request body did not arrive within "
                                     f"{self.timeout_s:g} s")
        finally:
            self.buffered -= size

    @staticmethod
    def _replay(body: bytes, receive: Receive) -> Receive:
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    def _too_large(self, size: int) -> TooLarge:
        return TooLarge(f"the request body is larger than the limit of {self.max_bytes} bytes "
                        f"({size} bytes or more)")

    async def _refuse(self, error: ServiceError, scope: Scope, receive: Receive,
                      send: Send) -> None:
        headers = {"Retry-After": "1"} if error.status == 503 else None
        response = error_response(error, error.status, error.kind, self.metrics, headers)
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
