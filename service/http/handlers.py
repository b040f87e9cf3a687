"""Error answers: every failure is JSON ``{"error": message, "kind": kind}`` with its status;
503s carry Retry-After; an unexpected exception is logged and answered 500 without details."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from service.errors import ServiceError
from service.http.middleware import error_response
from service.state import Service

log = logging.getLogger("service")


def add_error_handlers(app: FastAPI, service: Service) -> None:
    metrics = service.metrics

    @app.exception_handler(ServiceError)
    async def service_error(_request: Request, error: ServiceError) -> JSONResponse:
        headers = dict(error.headers)
        if error.status == 503:
            headers.setdefault("Retry-After", str(service.settings.retry_after_s))
        return error_response(error, error.status, error.kind, metrics, headers, **error.extra)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        summary = "; ".join(f"{'.'.join(str(part) for part in e.get('loc', ()))}: {e.get('msg')}"
                            for e in problems[:5])
        return error_response(f"invalid request: {summary}", 422, "invalid_request", metrics,
                              detail=jsonable_encoder(
                                  [{key: e[key] for key in ("type", "loc", "msg") if key in e}
                                   for e in problems]))

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        return error_response(error.detail, error.status_code, f"http_{error.status_code}",
                              metrics, getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(f"internal error: {type(error).__name__}", 500, "internal",
                              metrics)
