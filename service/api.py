"""HTTP routes: LibreTranslate-compatible /translate, native /v1/translate, languages, health,
readiness, metrics, reload and the web page."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from s2s.inference.search import SearchOptions
from s2s.inference.translator import TranslateOptions, Translation
from service.errors import (
    FilesDisabled,
    InvalidFile,
    InvalidJson,
    InvalidRequest,
    NotFound,
    ReloadFailed,
    SuggestionsDisabled,
    TooLarge,
    UnsupportedMediaType,
)
from service.files import SUPPORTED_FORMATS, Document, FileError, FileTooLarge, parse_upload
from service.formats import AUTO, translate_document_texts, translate_html
from service.keys import Caller, admit, identify
from service.langid import Detection
from service.models import LANGUAGE_NAMES
from service.pipeline import (
    TextResult,
    check_limits,
    finite,
    rank_languages,
    translate_auto,
    translate_texts,
)
from service.schemas import (
    CandidateOut,
    DetectedLanguage,
    DetectRequest,
    Language,
    LibreTranslateRequest,
    LibreTranslateResponse,
    NativeTranslateRequest,
    NativeTranslateResponse,
    SentenceOut,
    SuggestRequest,
    TextOut,
)
from service.security import check_admin_key, check_metrics_key, header_key

STATIC = Path(__file__).resolve().parent / "static"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

router = APIRouter()


def service_of(request: Request) -> Any:
    return request.app.state.service


def check_within(name: str, value: float, limit: float) -> None:
    if value > limit:
        raise InvalidRequest(f"{name} {value} is above the server's limit of {limit}")


def make_options(service: Any, beam_size: int | None, n_best: int, replace_unk: bool = False,
                 **search: Any) -> TranslateOptions:
    """Decoding options within the server's limits (422 naming the limit otherwise); every
    sentence's output is capped at max_output_tokens."""
    settings = service.settings
    check_within("n_best", n_best, settings.max_n_best)
    beam = beam_size or max(settings.default_beam_size, n_best)
    check_within("beam size", beam, settings.max_beam_size)
    check_within("max_len_a", search.get("max_len_a", 0), settings.max_output_ratio)
    check_within("max_len_b", search.get("max_len_b", 1), settings.max_output_tokens)
    check_within("length_penalty", search.get("length_penalty", 0), settings.max_length_penalty)
    if n_best > beam:
        raise InvalidRequest(f"n_best ({n_best}) must not exceed beam_size ({beam})")
    try:
        options = SearchOptions(beam_size=beam, n_best=n_best,
                                max_len=settings.max_output_tokens, **search)
    except ValueError as error:
        raise InvalidRequest(str(error)) from None
    return TranslateOptions(search=options, batch_tokens=settings.max_batch_tokens,
                            replace_unk=replace_unk)


def reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


async def read_body(request: Request, forms: bool = False) -> dict[str, Any]:
    """The body as a dict: JSON (content type application/json or +json), or with ``forms``
    form fields as LibreTranslate accepts them (a repeated ``q`` is a list), or, with no body
    at all, the query parameters. 415 for another content type, 400 for a body that is not a
    JSON object (nesting too deep, NaN, ...)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if forms and content_type in FORM_TYPES:
        return await read_form(request)
    if forms and not content_type and not await request.body():
        return query_fields(request)
    if content_type != "application/json" and not content_type.endswith("+json"):
        accepted = "application/json" + (" or a form" if forms else "")
        raise UnsupportedMediaType(f"the body must be {accepted} (got "
                                   f"{content_type or 'no content type'!r})")
    raw = await request.body()
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


def identify_caller(service: Any, request: Request, key: object) -> Caller:
    settings = service.settings
    return identify(key if isinstance(key, str) or key is None else str(key),
                    settings_keys=settings.api_keys, store=service.keys,
                    keys_required=settings.keys_required(),
                    default_per_minute=settings.default_requests_per_minute,
                    client_ip=request.client.host if request.client else None)


async def admit_caller(service: Any, caller: Caller, chars: int) -> None:
    """413 over the key's characters per request, 429 (Retry-After) over its rate."""
    if caller.limits.chars_per_request is None and (
            service.limiter is None or caller.limits.requests_per_minute is None):
        return
    await asyncio.to_thread(admit, caller, chars, service.limiter)


async def authorized_body(request: Request, service: Any, forms: bool = False,
                          count_chars: bool = True) -> dict[str, Any]:
    """The body, read only after a key sent in a header passed; a key sent in the body (or the
    query) is checked before the body is validated. Then the key's limits: characters of
    ``q`` (``count_chars``) and requests per minute. The caller is kept in request.state."""
    key = header_key(request)
    caller = identify_caller(service, request, key) if key else None
    body = await read_body(request, forms)
    if caller is None:
        caller = identify_caller(service, request,
                                 body.get("api_key") or request.query_params.get("api_key"))
    request.state.caller = caller
    if count_chars:
        await admit_caller(service, caller, chars_in_q(body))
    return body


def validated(model: type, body: dict[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
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
    query = validated(LibreTranslateRequest, await authorized_body(request, service, forms=True))
    single = isinstance(query.q, str)
    texts = [query.q] if single else query.q
    if query.format == "html":   # the markup kept, inline tags placed by the alignment
        check_limits(texts, service.settings)
        translated, detections = await translate_html(
            service, request, query.source, query.target, texts, make_options(service, None, 1))
        alternatives = [[] for _ in texts]
    else:
        options = make_options(service, None, query.alternatives + 1)
        results, detections = await translate_any(service, request, query.source,
                                                  query.target, texts, options)
        translated = [result.text for result in results]
        alternatives = [alternatives_of(result, query.alternatives) for result in results]
    answer: dict[str, Any] = {"translatedText": translated}
    if query.alternatives:
        answer["alternatives"] = alternatives
    if detections is not None:
        answer["detectedLanguage"] = [detected_language(d) for d in detections]
    return {key: value[0] for key, value in answer.items()} if single else answer


async def translate_any(service: Any, request: Request, source: str, target: str,
                        texts: list[str], options: TranslateOptions
                        ) -> tuple[list[TextResult], list[Detection | None] | None]:
    """Through the given pair, or with source "auto" through each text's detected one."""
    if source.lower() != AUTO:
        return await translate_texts(service.registry, service.settings, source, target, texts,
                                     options, request), None
    return await translate_auto(service.registry, service.langid, service.settings, target,
                                texts, options, request)


def detected_language(detection: Detection | None) -> dict[str, Any]:
    """LibreTranslate's detectedLanguage (a blank text: no language, confidence 0)."""
    if detection is None:
        return {"language": "", "confidence": 0.0}
    return {"language": detection.language, "confidence": detection.confidence}


DETECT_BODY = DetectRequest.model_json_schema()


@router.post("/detect", summary="Detect languages (LibreTranslate-compatible)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": DETECT_BODY},
                 "application/x-www-form-urlencoded": {"schema": DETECT_BODY}}}})
async def detect(request: Request) -> list[Any]:
    """Per text, the served source languages best first with confidences 0-100; a string
    ``q`` gets one such list, a list ``q`` one per item."""
    service = service_of(request)
    query = validated(DetectRequest, await authorized_body(request, service, forms=True))
    single = isinstance(query.q, str)
    texts = [query.q] if single else query.q
    check_limits(texts, service.settings)
    ranked = await rank_languages(service.registry, service.langid, texts)
    answers = [[{"language": d.language, "confidence": d.confidence} for d in options]
               for options in ranked]
    return answers[0] if single else answers


def alternatives_of(result: TextResult, wanted: int) -> list[str]:
    """Up to ``wanted`` other candidate texts, without repeating the translation or each
    other (different pieces can spell the same text)."""
    seen = {result.text}
    alternatives = []
    for rank in range(1, result.candidate_count()):
        text = result.candidate(rank)[0]
        if text not in seen and len(alternatives) < wanted:
            seen.add(text)
            alternatives.append(text)
    return alternatives


NATIVE_BODY = NativeTranslateRequest.model_json_schema()


@router.post("/v1/translate", response_model=NativeTranslateResponse,
             response_model_exclude_none=True, summary="Translate with decoding options",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": NATIVE_BODY}}}})
async def translate_native(request: Request) -> NativeTranslateResponse:
    service = service_of(request)
    query = validated(NativeTranslateRequest, await authorized_body(request, service))
    options = make_options(service, query.beam_size, query.n_best, query.replace_unk,
                           length_penalty=query.length_penalty, max_len_a=query.max_len_a,
                           max_len_b=query.max_len_b, return_attention=query.return_attention)
    results, detections = await translate_any(service, request, query.source, query.target,
                                              query.texts, options)
    outputs = [text_out(r, query) for r in results]
    for output, detection in zip(outputs, detections or []):
        output.detected_language = DetectedLanguage(**detected_language(detection))
    return NativeTranslateResponse(source=query.source, target=query.target,
                                   translations=outputs)


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


@router.get("/frontend/settings", summary="What LibreTranslate's web UI reads")
async def frontend_settings(request: Request) -> dict[str, Any]:
    settings = service_of(request).settings
    languages = service_of(request).registry.languages()
    target = languages[0]["targets"][0] if languages else "en"
    files = service_of(request).files is not None
    return {"apiKeys": False, "charLimit": settings.max_item_chars, "frontendTimeout": 500,
            "keyRequired": settings.keys_required(),
            "suggestions": settings.suggestions_db is not None,
            "filesTranslation": files, "supportedFilesFormat": list(SUPPORTED_FORMATS) if files
            else [],
            "language": {"source": {"code": "auto", "name": "Auto Detect"},
                         "target": {"code": target, "name": LANGUAGE_NAMES.get(target, target)}}}


SUGGEST_BODY = SuggestRequest.model_json_schema()


@router.post("/suggest", summary="Suggest a better translation (when enabled: stored durably)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": SUGGEST_BODY},
                 "application/x-www-form-urlencoded": {"schema": SUGGEST_BODY}}}})
async def suggest(request: Request) -> dict[str, bool]:
    service = service_of(request)
    if service.suggestions is None:
        raise SuggestionsDisabled("suggestions are disabled on this server (set "
                                  "S2S_SUGGESTIONS_DB to enable them)")
    query = validated(SuggestRequest, await authorized_body(request, service, forms=True))
    limit = service.settings.max_item_chars
    if max(len(query.q), len(query.s)) > limit:
        raise TooLarge(f"a suggestion's texts may have at most {limit} characters each")
    await asyncio.to_thread(service.suggestions.add, query.q, query.s, query.source.lower(),
                            query.target.lower())
    return {"success": True}


@router.post("/translate_file", summary="Translate a .txt, .html or .srt file "
             "(LibreTranslate-compatible): answers the URL to download it from",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {"type": "object", "required": [
                     "file", "source", "target"], "properties": {
                         "file": {"type": "string", "format": "binary"},
                         "source": {"type": "string"}, "target": {"type": "string"},
                         "api_key": {"type": "string"}}}}}}})
async def translate_file(request: Request) -> dict[str, str]:
    service = service_of(request)
    if service.files is None:
        raise FilesDisabled("file translation is disabled on this server (set S2S_FILES_DIR)")
    body = await authorized_body(request, service, forms=True, count_chars=False)
    upload, source, target = body.get("file"), body.get("source"), body.get("target")
    if not isinstance(upload, UploadFile):
        raise InvalidRequest("send the file as the multipart form field 'file'")
    if not (isinstance(source, str) and isinstance(target, str) and source and target):
        raise InvalidRequest("the form fields 'source' and 'target' are required")
    document = await read_upload(service.settings, upload)
    await admit_caller(service, request.state.caller, sum(map(len, document.texts)))
    options = make_options(service, None, 1)
    translations = await translate_document_texts(service, request, source, target,
                                                  document.texts, document.text_format, options)
    name = await asyncio.to_thread(service.files.save, document.rebuild(translations),
                                   upload.filename or "file", target.lower())
    return {"translatedFileUrl": str(request.url_for("download_file", name=name))}


async def read_upload(settings: Any, upload: UploadFile) -> Document:
    """The uploaded file parsed (413 over max_file_bytes or max_file_chars, 400 otherwise)."""
    data = await upload.read(settings.max_file_bytes + 1)
    if len(data) > settings.max_file_bytes:
        raise TooLarge(f"the file is larger than {settings.max_file_bytes} bytes")
    try:
        return parse_upload(upload.filename or "", data, settings.max_file_chars)
    except FileTooLarge as error:
        raise TooLarge(str(error)) from None
    except FileError as error:
        raise InvalidFile(str(error)) from None


@router.get("/download_file/{name}", summary="A translated file, for a limited time")
async def download_file(request: Request, name: str) -> Response:
    service = service_of(request)
    if service.files is None:
        raise FilesDisabled("file translation is disabled on this server")
    try:
        path, filename = await asyncio.to_thread(service.files.open, name)
        content = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise NotFound("no such file (unknown or expired)") from None
    media = MEDIA_TYPES.get(Path(filename).suffix.lower(), "application/octet-stream")
    return Response(content, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


MEDIA_TYPES = {".txt": "text/plain; charset=utf-8", ".html": "text/html; charset=utf-8",
               ".htm": "text/html; charset=utf-8", ".srt": "application/x-subrip"}


@router.get("/languages", response_model=list[Language], summary="Language pairs served")
async def languages(request: Request) -> list[dict[str, Any]]:
    return service_of(request).registry.languages()


PUBLIC_META = ("src_lang", "tgt_lang", "step", "steps", "parameters", "config_name",
               "best_score")


@router.get("/v1/models", summary="Language pairs: state, load time, model facts")
async def models(request: Request) -> list[dict[str, Any]]:
    answer = []
    for slot in service_of(request).registry.slots.values():
        meta = getattr(slot.translator, "meta", None) or {}
        answer.append({"pair": slot.pair, "file": slot.path.name, **slot.state(),
                       "loaded_at": slot.loaded_at,
                       "meta": {key: meta[key] for key in PUBLIC_META if key in meta}})
    return answer


@router.head("/health", include_in_schema=False)
@router.get("/health", summary="Liveness: 200 while the process runs")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.head("/ready", include_in_schema=False)
@router.get("/ready", summary="Readiness: 200 while at least one pair serves; per-pair states")
async def ready(request: Request) -> JSONResponse:
    service = service_of(request)
    state = service.registry.readiness()
    if state["ready"]:
        return JSONResponse({"status": "ready", **state})
    return JSONResponse({"status": "not ready", **state}, status_code=503,
                        headers={"Retry-After": str(service.settings.retry_after_s)})


@router.get("/metrics", summary="Prometheus metrics (with a key when metrics_api_key is set)")
async def metrics(request: Request) -> Response:
    service = service_of(request)
    check_metrics_key(service.settings, request)
    return Response(service.metrics.render(), media_type=service.metrics.content_type)


@router.post("/admin/reload", summary="Reload new or changed model files (SIGHUP does the "
             "same); needs the admin key")
async def reload(request: Request, force: bool = False) -> dict[str, Any]:
    service = service_of(request)
    check_admin_key(service.settings, request)
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
