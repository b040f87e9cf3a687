"""HTTP routes: LibreTranslate-compatible /translate, native /v1/translate, languages, health,
readiness, metrics, reload and the web page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import ValidationError

from s2s.inference.search import SearchOptions
from s2s.inference.translator import TranslateOptions, Translation
from service.errors import InvalidRequest, ReloadFailed, UnsupportedFormat
from service.pipeline import TextResult, finite, translate_texts
from service.schemas import (
    CandidateOut,
    Language,
    LibreTranslateRequest,
    LibreTranslateResponse,
    NativeTranslateRequest,
    NativeTranslateResponse,
    SentenceOut,
    TextOut,
)
from service.security import check_api_key

STATIC = Path(__file__).resolve().parent / "static"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

router = APIRouter()


def service_of(request: Request) -> Any:
    return request.app.state.service


def make_options(service: Any, beam_size: int | None, n_best: int, replace_unk: bool = False,
                 **search: Any) -> TranslateOptions:
    settings = service.settings
    beam = beam_size or max(settings.default_beam_size, n_best)
    if beam > settings.max_beam_size:
        raise InvalidRequest(f"beam size {beam} is above the server's limit of "
                             f"{settings.max_beam_size}")
    if n_best > beam:
        raise InvalidRequest(f"n_best ({n_best}) must not exceed beam_size ({beam})")
    try:
        options = SearchOptions(beam_size=beam, n_best=n_best, **search)
    except ValueError as error:
        raise InvalidRequest(str(error)) from None
    return TranslateOptions(search=options, batch_tokens=settings.max_batch_tokens,
                            replace_unk=replace_unk)


async def read_libre_body(request: Request) -> Any:
    """JSON, or form fields as LibreTranslate accepts them (a repeated ``q`` is a list)."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(FORM_TYPES):
        form = await request.form()
        body: dict[str, Any] = {}
        for key in form:
            values = form.getlist(key)
            body[key] = values if key == "q" and len(values) > 1 else values[0]
        return body
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body",),
                                       "msg": f"JSON decode error: {error}", "input": None}]
                                     ) from None


LIBRE_BODY = LibreTranslateRequest.model_json_schema()


@router.post(
    "/translate", response_model=LibreTranslateResponse, response_model_exclude_none=True,
    summary="Translate (LibreTranslate-compatible)",
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": LIBRE_BODY},
        "application/x-www-form-urlencoded": {"schema": LIBRE_BODY}}}})
async def translate_libre(request: Request) -> dict[str, Any]:
    service = service_of(request)
    body = await read_libre_body(request)
    try:
        query = LibreTranslateRequest.model_validate(body)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        ) from None
    check_api_key(service.settings, request, query.api_key)
    if query.format != "text":
        raise UnsupportedFormat(f"format {query.format!r} is not supported; send plain text "
                                "with format 'text'")
    texts = [query.q] if isinstance(query.q, str) else query.q
    options = make_options(service, None, query.alternatives + 1)
    results = await translate_texts(service.registry, service.settings, query.source,
                                    query.target, texts, options, request)
    translated = [result.text for result in results]
    answer: dict[str, Any] = {
        "translatedText": translated[0] if isinstance(query.q, str) else translated}
    if query.alternatives:
        alternatives = [alternatives_of(result, query.alternatives) for result in results]
        answer["alternatives"] = alternatives[0] if isinstance(query.q, str) else alternatives
    return answer


def alternatives_of(result: TextResult, wanted: int) -> list[str]:
    count = min(result.candidate_count(), wanted + 1)
    return [result.candidate(rank)[0] for rank in range(1, count)]


@router.post("/v1/translate", response_model=NativeTranslateResponse,
             response_model_exclude_none=True, summary="Translate with decoding options")
async def translate_native(query: NativeTranslateRequest, request: Request
                           ) -> NativeTranslateResponse:
    service = service_of(request)
    check_api_key(service.settings, request, query.api_key)
    options = make_options(service, query.beam_size, query.n_best, query.replace_unk,
                           length_penalty=query.length_penalty, max_len_a=query.max_len_a,
                           max_len_b=query.max_len_b, return_attention=query.return_attention)
    results = await translate_texts(service.registry, service.settings, query.source,
                                    query.target, query.texts, options, request)
    return NativeTranslateResponse(source=query.source, target=query.target,
                                   translations=[text_out(r, query) for r in results])


def text_out(result: TextResult, query: NativeTranslateRequest) -> TextOut:
    candidates = None
    if query.n_best > 1:
        candidates = []
        for rank in range(result.candidate_count()):
            text, score, normalized = result.candidate(rank)
            candidates.append(CandidateOut(
                translation=text, score=finite(score) if query.return_scores else None,
                normalized_score=finite(normalized) if query.return_scores else None))
    return TextOut(
        translation=result.text, score=finite(result.score) if query.return_scores else None,
        candidates=candidates,
        sentences=[sentence_out(source, translation, query)
                   for source, translation in zip(result.sentences, result.results)])


def sentence_out(source: str, result: Translation, query: NativeTranslateRequest) -> SentenceOut:
    scores = query.return_scores
    tokens = query.return_tokens or query.return_attention
    best = result.alternatives[0] if result.alternatives else None
    candidates = None
    if query.n_best > 1:
        candidates = [CandidateOut(
            translation=c.text, score=finite(c.score) if scores else None,
            normalized_score=finite(c.normalized_score) if scores else None,
            tokens=c.tokens if tokens else None,
            attention=c.attention if query.return_attention else None)
            for c in result.alternatives]
    return SentenceOut(
        source=source, translation=result.text, score=finite(result.score) if scores else None,
        normalized_score=finite(best.normalized_score) if scores and best else None,
        source_tokens=result.source_tokens if tokens else None,
        tokens=result.tokens if tokens else None,
        attention=result.attention if query.return_attention else None,
        candidates=candidates)


@router.get("/languages", response_model=list[Language], summary="Language pairs served")
async def languages(request: Request) -> list[dict[str, Any]]:
    return service_of(request).registry.languages()


@router.get("/v1/models", summary="Model files, load times and errors")
async def models(request: Request) -> list[dict[str, Any]]:
    return [{"pair": slot.pair, "file": slot.path.name, "serving": slot.serving,
             "loaded_at": slot.loaded_at, "error": slot.error,
             "meta": getattr(slot.translator, "meta", None) if slot.serving else None}
            for slot in service_of(request).registry.slots.values()]


@router.get("/health", summary="Liveness: 200 while the process runs")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="Readiness: 200 when every model is loaded and warmed up")
async def ready(request: Request) -> JSONResponse:
    service = service_of(request)
    state = service.registry.readiness()
    if state["ready"]:
        return JSONResponse({"status": "ready", **state})
    return JSONResponse({"status": "not ready", **state}, status_code=503,
                        headers={"Retry-After": str(service.settings.retry_after_s)})


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    service = service_of(request)
    return Response(service.metrics.render(), media_type=service.metrics.content_type)


@router.post("/admin/reload", summary="Reload new or changed model files (SIGHUP does the same)")
async def reload(request: Request, force: bool = False) -> dict[str, Any]:
    service = service_of(request)
    check_api_key(service.settings, request)
    report = await service.registry.reload(force=force)
    answer = {"loaded": report.loaded, "unchanged": report.unchanged,
              "removed": report.removed, "failed": report.failed}
    if report.failed:
        reasons = "; ".join(f"{pair}: {reason}" for pair, reason in report.failed.items())
        raise ReloadFailed(f"reload failed for {reasons} (the previous models keep serving)",
                           extra={"report": answer})
    return answer


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html")
