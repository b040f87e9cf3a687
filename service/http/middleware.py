"""ASGI middleware: request body limits (size, time, bytes held across connections),
latency/status metrics per endpoint, security headers on every response, and the client's
address from X-Forwarded-For, believed only from trusted proxies."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import Overloaded, ServiceError, TooLarge
from service.serving.metrics import Metrics


def error_response(error: Exception | str, status: int, kind: str, metrics: Metrics | None,
                   headers: dict[str, str] | None = None, **extra: object) -> JSONResponse:
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
        return TooLarge(f"the request body is larger than the limit of max_body_bytes="
                        f"{self.max_bytes} bytes ({size} bytes or more)")

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


# The page and its scripts come from this server only; no inline script, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    b"content-security-policy": CONTENT_SECURITY_POLICY.encode(),
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
    b"cross-origin-opener-policy": b"same-origin",
}


class SecurityHeadersMiddleware:
    """Adds SECURITY_HEADERS to every response that does not set the header itself (a
    download sets its own, stricter Content-Security-Policy: sandbox)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in SECURITY_HEADERS.items()
                            if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(addresses: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(address.strip(), strict=False) for address in addresses]


def in_networks(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def forwarded_client(peer: str, header_values: list[str], trusted: list[Network]) -> str:
    """The client's address: the peer's unless the peer is a trusted proxy; then, walking
    X-Forwarded-For from the right, the first address that is not a trusted proxy (addresses
    further left were written by the client and may be forged). Garbage stops the walk at the
    last trusted hop."""
    if not in_networks(peer, trusted):
        return peer
    hops = [hop.strip() for value in header_values for hop in value.split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return client
        client = hop
        if not in_networks(hop, trusted):
            return hop
    return client


class ProxyHeadersMiddleware:
    """Sets scope["client"] from X-Forwarded-For when, and only when, the connection comes
    from one of the ``trusted`` proxies (forwarded_allow_ips); from any other peer the header
    is ignored, so a client cannot choose its own rate-limit bucket."""

    def __init__(self, app: ASGIApp, trusted: Iterable[str]):
        self.app = app
        self.trusted = parse_networks(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted and scope.get("client"):
            peer, port = scope["client"]
            values = [value.decode("latin-1") for name, value in scope["headers"]
                      if name.lower() == b"x-forwarded-for"]
            client = forwarded_client(peer, values, self.trusted)
            if client != peer:
                scope = {**scope, "client": (client, 0)}
        await self.app(scope, receive, send)
