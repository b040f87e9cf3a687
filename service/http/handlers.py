"""Error answers: every failure is JSON ``{"error": message, "kind": kind}`` with its status;
503s carry Retry-After; validation errors are said in plain words, naming each field as the
client sent it (never a validator's or a type's internal name); a busy or failing SQLite store
is 503, not 500; an unexpected exception is logged and answered 500 without details."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from service.errors import ServiceError, StoreUnavailable
from service.http.middleware import error_response
from service.state import Service
from service.stores.sqlite import KeyStoreError, StoreBusy

log = logging.getLogger("service")

# What each request field must be, in the client's words (all request schemas' fields).
FIELD_KINDS = {
    "q": "a string or a list of strings", "texts": "a list of strings", "s": "a string",
    "source": "a language code (a string)", "target": "a language code (a string)",
    "format": '"text" or "html"', "alternatives": "a whole number", "api_key": "a string",
    "beam_size": "a whole number", "n_best": "a whole number", "max_len_b": "a whole number",
    "length_penalty": "a number", "max_len_a": "a number",
    "replace_unk": "true or false", "return_scores": "true or false",
    "return_tokens": "true or false", "return_attention": "true or false",
    "return_candidate_attention": "true or false",
}
TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "none", "null"}


def field_path(loc: Sequence[Any]) -> str:
    """``("body", "q", "list[function-after[valid_unicode(), str]]", 1, "str")`` -> ``q[1]``:
    the field as the client sent it, without the schema's union and validator tags."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query"):
        parts = parts[1:]
    path = ""
    for number, part in enumerate(parts):
        if isinstance(part, int):
            path += f"[{part}]"
        elif number == 0:
            path = str(part)
        elif not ("[" in part or "(" in part or part.lower() in TYPE_TAGS):
            path += f".{part}"
    return path or "the body"


def plain_message(error: dict[str, Any]) -> str:
    """One validation error in plain words."""
    path = field_path(error.get("loc", ()))
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return f"{path} is required"
    if kind == "extra_forbidden":
        return f"{path} is not a field of this request"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return f"{path} must be {'at least' if kind.endswith('equal') else 'above'} {bound}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return f"{path} must be {'at most' if kind.endswith('equal') else 'below'} {bound}"
    if kind == "string_too_long":
        return f"{path} may have at most {ctx.get('max_length')} characters"
    if kind == "finite_number":
        return f"{path} must be a finite number"
    if kind == "value_error":
        reason = str(error.get("msg", "")).removeprefix("Value error, ")
        return f"{path}: {reason}"
    if kind.endswith(("_type", "_parsing")) or kind in ("literal_error", "union_tag_invalid"):
        if path in FIELD_KINDS:
            return f"{path} must be {FIELD_KINDS[path]}"
        if "[" in path:   # an item of a list field: q[1], texts[0]
            return f"{path} must be a string"
        return f"{path} has the wrong type"
    return f"{path}: {error.get('msg', 'invalid')}"


def plain_errors(problems: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Each distinct problem once: its field and message (a union's alternatives that all
    failed for one field say so once)."""
    seen: dict[str, dict[str, str]] = {}
    for error in problems:
        message = plain_message(error)
        seen.setdefault(message, {"field": field_path(error.get("loc", ())),
                                  "type": str(error.get("type", "")), "msg": message})
    return list(seen.values())


def add_error_handlers(app: FastAPI, service: Service) -> None:
    metrics = service.metrics
    retry_after = str(service.settings.retry_after_s)

    @app.exception_handler(ServiceError)
    async def service_error(_request: Request, error: ServiceError) -> JSONResponse:
        headers = dict(error.headers)
        if error.status == 503:
            headers.setdefault("Retry-After", retry_after)
        return error_response(error, error.status, error.kind, metrics, headers, **error.extra)

    @app.exception_handler(KeyStoreError)
    async def store_error(_request: Request, error: KeyStoreError) -> JSONResponse:
        """A keys, rate-limit or suggestions file busy past the bounded wait or failing."""
        if isinstance(error, StoreBusy):
            message = ("the server's key, rate-limit or suggestions database is busy; retry "
                       "shortly")
        else:
            log.error("store failure: %s", error)
            message = "the server's key, rate-limit or suggestions database failed; retry later"
        return await service_error(_request, StoreUnavailable(message))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = plain_errors(error.errors())
        summary = "; ".join(problem["msg"] for problem in problems[:5])
        return error_response(f"invalid request: {summary}", 422, "invalid_request", metrics,
                              detail=problems)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        return error_response(error.detail, error.status_code, f"http_{error.status_code}",
                              metrics, getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(f"internal error: {type(error).__name__}", 500, "internal",
                              metrics)
