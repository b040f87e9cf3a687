"""Service errors: each has an HTTP status, a kind (the metrics label) and a clear message.

Every error response is JSON ``{"error": MESSAGE, "kind": KIND}`` (``error`` as LibreTranslate
answers it), plus ``detail`` for validation errors.
"""

from __future__ import annotations


class ServiceError(Exception):
    status = 500
    kind = "internal"

    def __init__(self, message: str, headers: dict[str, str] | None = None,
                 extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}   # more fields of the JSON error body


class InvalidRequest(ServiceError):
    status, kind = 422, "invalid_request"


class InvalidJson(ServiceError):
    status, kind = 400, "invalid_json"


class UnsupportedMediaType(ServiceError):
    status, kind = 415, "unsupported_media_type"


class AdminDisabled(ServiceError):
    status, kind = 403, "admin_disabled"


class SuggestionsDisabled(ServiceError):
    status, kind = 403, "suggestions_disabled"


class FilesDisabled(ServiceError):
    status, kind = 403, "files_disabled"


class InvalidFile(ServiceError):
    status, kind = 400, "invalid_file"


class NotFound(ServiceError):
    status, kind = 404, "not_found"


class Overloaded(ServiceError):
    status, kind = 503, "overloaded"


class UnsupportedFormat(ServiceError):
    status, kind = 400, "unsupported_format"


class TooLarge(ServiceError):
    status, kind = 413, "too_large"


class InputTooLong(ServiceError):
    status, kind = 413, "input_too_long"


class UnknownPair(ServiceError):
    status, kind = 400, "unknown_pair"


class MissingApiKey(ServiceError):
    status, kind = 401, "missing_api_key"


class InvalidApiKey(ServiceError):
    status, kind = 403, "invalid_api_key"


class QueueFull(ServiceError):
    status, kind = 503, "queue_full"


class CallerQueueFull(ServiceError):
    """429: one caller holds its whole share of a model's queue; others are unaffected."""

    status, kind = 429, "caller_queue_full"


class NotReady(ServiceError):
    status, kind = 503, "not_ready"


class DeadlineExceeded(ServiceError):
    status, kind = 504, "deadline"


class ClientDisconnected(ServiceError):
    status, kind = 499, "client_disconnected"


class TranslationFailed(ServiceError):
    status, kind = 500, "translation_failed"


class OutOfMemory(ServiceError):
    status, kind = 503, "out_of_memory"


class ReloadFailed(ServiceError):
    status, kind = 500, "reload_failed"


class StoreUnavailable(ServiceError):
    """A SQLite store (keys, rate limits, suggestions) busy or locked past the bounded wait,
    or failing: 503 with Retry-After, never a 500."""

    status, kind = 503, "store_unavailable"


class StorageFull(ServiceError):
    """The disk of the translated files is full (or over quota): 503 with Retry-After."""

    status, kind = 503, "storage_full"


class CrossSiteRefused(ServiceError):
    """A state-changing request a browser sent on behalf of another site."""

    status, kind = 403, "cross_site"


class TooManySuggestions(ServiceError):
    status, kind = 429, "too_many_suggestions"


class StartupError(RuntimeError):
    """The server cannot start as configured (e.g. the models folder does not exist)."""
