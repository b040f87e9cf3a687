"""Admission of a request: ``identify`` (the key: 401 missing / 403 unknown) then ``admit``
(413 over the key's characters per request, 429 over the rate, with Retry-After)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from service.errors import InvalidApiKey, MissingApiKey, ServiceError, TooLarge
from service.stores.keys import KeyLimits, KeyStore, key_matches
from service.stores.rate_limits import RateLimiter


class RateLimited(ServiceError):
    """429 over a request-rate limit; ``retry_after`` in seconds, sent as Retry-After."""

    status, kind = 429, "rate_limited"

    def __init__(self, message: str, retry_after: float):
        super().__init__(message, headers={"Retry-After": str(max(1, math.ceil(retry_after)))})
        self.retry_after = retry_after


class KeyCharLimit(TooLarge):
    """413: more characters in one request than the API key allows."""

    kind = "key_char_limit"

@dataclass(frozen=True)
class Caller:
    """Who an admitted key check found: the limiter identity, the limits that apply and where
    they came from ("db", "settings" or "ip")."""

    identity: str
    limits: KeyLimits
    source: str


def key_identity(key: str) -> str:
    """The limiter identity of a key: a digest, so the rate file holds no key."""
    return "key:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def identify(key: str | None, *, settings_keys: list[str], store: KeyStore | None,
             keys_required: bool, default_per_minute: int | None,
             client_ip: str | None, keyless_per_minute: int | None | object = ...) -> Caller:
    """The caller of a request, by its key (or its address when it sent none).

    Keys in ``store`` have their own limits; ``settings_keys`` get ``default_per_minute``
    (None or 0: unlimited), keyless callers ``keyless_per_minute`` (by default the same;
    the service passes Settings.keyless_per_minute(), finite where a keys database exists).
    Without any key source a key is ignored (as LibreTranslate without ``--api-keys``).
    MissingApiKey (401) when keys are required and none came, InvalidApiKey (403) for a key
    that is not known."""
    default = KeyLimits(requests_per_minute=default_per_minute or None)
    keyless = default if keyless_per_minute is ... else KeyLimits(
        requests_per_minute=keyless_per_minute or None)   # type: ignore[arg-type]
    if not key:
        if keys_required:
            raise MissingApiKey("an API key is required (api_key field, X-API-Key header or "
                                "Authorization: Bearer)")
        return Caller(f"ip:{client_ip or 'unknown'}", keyless, "ip")
    if store is None and not settings_keys and not keys_required:
        return Caller(f"ip:{client_ip or 'unknown'}", keyless, "ip")
    in_settings = key_matches(key, settings_keys)
    limits = store.get(key) if store is not None and isinstance(key, str) else None
    if limits is not None:
        return Caller(key_identity(key), limits, "db")
    if in_settings:
        return Caller(key_identity(key), default, "settings")
    raise InvalidApiKey("Invalid API key")


def admit(caller: Caller, chars: int, limiter: RateLimiter | None,
          now: float | None = None) -> None:
    """KeyCharLimit (413) over the key's characters per request, else RateLimited (429) over
    its requests per minute; a refused request does not count against the rate."""
    limit = caller.limits.chars_per_request
    if limit is not None and chars > limit:
        raise KeyCharLimit(f"Invalid request: request ({chars} characters) exceeds the text "
                           f"limit of this API key (chars_per_request={limit})")
    per_minute = caller.limits.requests_per_minute
    if limiter is None or per_minute is None:
        return
    wait = limiter.hit(caller.identity, per_minute, now)
    if wait is not None:
        raise RateLimited(f"Slowdown: {per_minute} per 1 minute", wait)


def check_request(key: str | None, chars: int, *, settings_keys: list[str],
                  store: KeyStore | None, limiter: RateLimiter | None, keys_required: bool,
                  default_per_minute: int | None, client_ip: str | None,
                  now: float | None = None) -> Caller:
    """``identify`` then ``admit``: the caller when the request may go on, else the
    ServiceError to answer with (401, 403, 413 or 429 with Retry-After)."""
    caller = identify(key, settings_keys=settings_keys, store=store, keys_required=keys_required,
                      default_per_minute=default_per_minute, client_ip=client_ip)
    admit(caller, chars, limiter, now)
    return caller
