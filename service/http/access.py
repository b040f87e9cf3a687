"""Who is calling: the key (header first, then body or query), the caller's limits, and the
body read only after a key sent in a header passed. Key and rate-limit lookups touch SQLite, so
they run in a thread (never on the event loop); a busy store answers 503 (service.http.handlers)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request

from service.http.body import chars_in_q, read_body
from service.http.security import header_key
from service.serving.admission import Caller, admit, identify
from service.state import Service


def client_address(request: Request) -> str | None:
    """The client's address: the peer's, or the one ProxyHeadersMiddleware (service.http.
    middleware) took from a trusted proxy's X-Forwarded-For."""
    return request.client.host if request.client else None


def identify_caller(service: Service, request: Request, key: object) -> Caller:
    settings = service.settings
    return identify(key if isinstance(key, str) or key is None else str(key),
                    settings_keys=settings.api_keys, store=service.keys,
                    keys_required=settings.keys_required(),
                    default_per_minute=settings.default_requests_per_minute,
                    keyless_per_minute=settings.keyless_per_minute(),
                    client_ip=client_address(request))


async def identify_off_loop(service: Service, request: Request, key: object) -> Caller:
    """identify_caller, in a thread when it may read the keys database."""
    if service.keys is None:
        return identify_caller(service, request, key)
    return await asyncio.to_thread(identify_caller, service, request, key)


async def admit_caller(service: Service, caller: Caller, chars: int) -> None:
    """413 over the key's characters per request, 429 (Retry-After) over its rate."""
    if caller.limits.chars_per_request is None and (
            service.limiter is None or caller.limits.requests_per_minute is None):
        return
    await asyncio.to_thread(admit, caller, chars, service.limiter)


async def authorized_body(request: Request, service: Service, forms: bool = False,
                          count_chars: bool = True) -> dict[str, Any]:
    """The body, read only after a key sent in a header passed; a key sent in the body (or the
    query) is checked before the body is validated. Then the key's limits: characters of
    ``q`` (``count_chars``) and requests per minute. The caller is kept in request.state."""
    key = header_key(request)
    caller = await identify_off_loop(service, request, key) if key else None
    body = await read_body(request, forms)
    if caller is None:
        caller = await identify_off_loop(
            service, request, body.get("api_key") or request.query_params.get("api_key"))
    request.state.caller = caller
    if count_chars:
        await admit_caller(service, caller, chars_in_q(body))
    return body
