"""Request bodies: JSON, LibreTranslate's form fields or query parameters, read defensively
(415 for another content type, 400 for a body that is not a JSON object), and validated
against the API's schemas (422)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from service.errors import (
    InvalidJson,
    UnsupportedMediaType,
)

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
SEND_JSON = "send Content-Type: application/json"


def reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


async def read_body(request: Request, forms: bool = False) -> dict[str, Any]:
    """The body as a dict: JSON (content type application/json or +json), or with ``forms``
    form fields as LibreTranslate accepts them (a repeated ``q`` is a list), or, with no body
    at all, the query parameters. 415 for another content type, 400 for a body that is not a
    JSON object (nesting too deep, NaN, ...)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    looks_like_json = raw.lstrip()[:1] in (b"{", b"[")
    if content_type in FORM_TYPES and content_type != "multipart/form-data" and looks_like_json:
        raise UnsupportedMediaType(f"the body is JSON but was sent as a form ({content_type}); "
                                   f"{SEND_JSON}")
    if forms and content_type in FORM_TYPES:
        return await read_form(request)
    if forms and not content_type and not raw:
        return query_fields(request)
    if content_type != "application/json" and not content_type.endswith("+json"):
        if looks_like_json:
            got = f"as {content_type!r}" if content_type else "without a content type"
            raise UnsupportedMediaType(f"the body is JSON but was sent {got}; {SEND_JSON}")
        accepted = "JSON (" + SEND_JSON + ")" + (" or a form" if forms else "")
        raise UnsupportedMediaType(f"the body must be {accepted}; got "
                                   f"{content_type or 'no content type'!r}")
    try:
        body = json.loads(raw, parse_constant=reject_constant)
    except RecursionError:
        raise InvalidJson("the JSON body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidJson(f"the body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise InvalidJson("the JSON body must be an object")
    return body


def query_fields(request: Request) -> dict[str, Any]:
    """A LibreTranslate request sent as query parameters with no body (as deep-translator's
    client does; LibreTranslate reads query and form fields alike)."""
    params = request.query_params
    return {key: (params.getlist(key) if key == "q" and len(params.getlist(key)) > 1
                  else params[key]) for key in params}


async def read_form(request: Request) -> dict[str, Any]:
    try:
        form = await request.form()
    except Exception as error:   # multipart parser errors have many types
        raise InvalidJson(f"the form body cannot be read: {type(error).__name__}") from None
    body: dict[str, Any] = {}
    for key in form:
        values = form.getlist(key)
        body[key] = values if key == "q" and len(values) > 1 else values[0]
    return body


def chars_in_q(body: dict[str, Any]) -> int:
    """Characters of a body's ``q`` (a string or a list of strings), for per-key limits."""
    q = body.get("q")
    if isinstance(q, str):
        return len(q)
    if isinstance(q, list):
        return sum(len(item) for item in q if isinstance(item, str))
    return 0


ModelT = TypeVar("ModelT", bound=BaseModel)


def validated(model: type[ModelT], body: dict[str, Any]) -> ModelT:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        ) from None


