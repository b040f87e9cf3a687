"""API keys: required only when the settings list some; 401 when missing, 403 when wrong."""

from __future__ import annotations

import secrets

from starlette.requests import Request

from service.errors import InvalidApiKey, MissingApiKey
from service.settings import Settings


def key_from_request(request: Request) -> str | None:
    """X-API-Key header, ``Authorization: Bearer KEY`` or the ``api_key`` query parameter."""
    header = request.headers.get("x-api-key")
    if header:
        return header
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.query_params.get("api_key")


def check_api_key(settings: Settings, request: Request, body_key: str | None = None) -> None:
    if not settings.api_keys:
        return
    key = body_key or key_from_request(request)
    if not key:
        raise MissingApiKey("an API key is required (api_key field, X-API-Key header or "
                            "Authorization: Bearer)")
    if not any(secrets.compare_digest(key.encode(), known.encode())
               for known in settings.api_keys):
        raise InvalidApiKey("the API key is not valid")
