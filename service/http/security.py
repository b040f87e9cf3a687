"""Keys in requests: where a key is read from, constant-time comparison, the admin key (the
admin endpoints are disabled without one) and the optional /metrics key; 401 when missing,
403 when wrong. Translation keys and their limits: service.stores.keys."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request

from service.errors import AdminDisabled, CrossSiteRefused, InvalidApiKey, MissingApiKey
from service.settings import Settings
from service.stores.keys import key_matches


def header_key(request: Request, header: str = "x-api-key") -> str | None:
    """The ``header`` header or ``Authorization: Bearer KEY``."""
    value = request.headers.get(header)
    if value:
        return value
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def check_admin_key(settings: Settings, request: Request) -> None:
    """X-Admin-Key header or Authorization: Bearer; never a query parameter or body field."""
    if not settings.admin_api_key:
        raise AdminDisabled("the admin endpoints are disabled: the server has no admin key "
                            "(set S2S_ADMIN_API_KEY)")
    key = header_key(request, "x-admin-key")
    if not key:
        raise MissingApiKey("the admin key is required (X-Admin-Key header or "
                            "Authorization: Bearer)")
    if not key_matches(key, [settings.admin_api_key]):
        raise InvalidApiKey("the admin key is not valid")


def check_metrics_key(settings: Settings, request: Request) -> None:
    if settings.metrics_api_key is None:
        return
    key = header_key(request)
    if not key:
        raise MissingApiKey("/metrics needs a key (X-API-Key header or Authorization: Bearer)")
    if not key_matches(key, [settings.metrics_api_key]):
        raise InvalidApiKey("the metrics key is not valid")


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower case."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_same_site(settings: Settings, request: Request) -> None:
    """403 for a state-changing request a browser sends on behalf of another site (a form
    posted from elsewhere): ``Sec-Fetch-Site: cross-site``, or an ``Origin`` that is neither
    this server (as the browser addressed it, or ``public_url``) nor one of ``cors_origins``.
    Clients that are not browsers send neither header and pass."""
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        raise CrossSiteRefused("cross-site requests may not post here (Sec-Fetch-Site: "
                               "cross-site)")
    origin = request.headers.get("origin")
    if origin is None:
        return
    allowed = {origin_of(url) for url in settings.cors_origins if url != "*"}
    if settings.public_url:
        allowed.add(origin_of(settings.public_url))
    host = request.headers.get("host", "").lower()
    own = origin.lower() != "null" and urlsplit(origin.lower()).netloc == host and host
    if not (own or origin.lower() in allowed):
        raise CrossSiteRefused(f"requests from the origin {origin[:100]!r} may not post here")
