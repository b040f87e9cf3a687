"""Translation routes: LibreTranslate-compatible /translate and /detect, the native
/v1/translate with decoding options and scores, and their response shapes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from s2s.inference.confidence import confidence
from s2s.inference.glossary import Glossary
from s2s.inference.translator import TranslateOptions, Translation
from service.errors import InvalidRequest
from service.formats.protect import ProtectedError, Protector, make_protector
from service.http.access import authorized_body
from service.http.body import validated
from service.http.context import ServiceDep
from service.http.glossaries import request_glossary
from service.http.options import make_options
from service.schemas import (
    CandidateOut,
    DetectedLanguage,
    DetectRequest,
    LibreTranslateRequest,
    LibreTranslateResponse,
    NativeTranslateRequest,
    NativeTranslateResponse,
    SentenceOut,
    TextOut,
)
from service.serving.langid import Detection
from service.serving.markup_translation import AUTO, translate_html, translate_protected
from service.serving.pipeline import (
    TEXTS_ONLY,
    Returned,
    TextResult,
    check_limits,
    finite,
    rank_languages,
    translate_auto,
    translate_texts,
)
from service.state import Service

router = APIRouter()


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A request model's JSON schema for openapi_extra, its nested models inlined (a
    ``#/$defs/...`` reference would not resolve inside the OpenAPI document)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return inline(schema)


LIBRE_BODY = body_schema(LibreTranslateRequest)


@router.post(
    "/translate", response_model=LibreTranslateResponse, response_model_exclude_none=True,
    summary="Translate (LibreTranslate-compatible)",
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": LIBRE_BODY},
        "application/x-www-form-urlencoded": {"schema": LIBRE_BODY}}}})
async def translate_libre(request: Request, service: ServiceDep) -> dict[str, Any]:
    query = validated(LibreTranslateRequest, await authorized_body(request, service, forms=True))
    single = isinstance(query.q, str)
    texts = [query.q] if isinstance(query.q, str) else query.q
    glossary = await request_glossary(service, request, query.glossary, query.glossary_id)
    protector = request_protector(service, query.protected)
    confidences = None
    if query.format == "html":   # the markup kept, inline tags placed by the alignment
        if glossary is not None:
            raise InvalidRequest("a glossary works with format text only")
        check_limits(texts, service.settings)
        translated, detections = await protected_errors(translate_html(
            service, request, query.source, query.target, texts, make_options(service, None, 1),
            protector=protector))
        alternatives: list[list[str]] = [[] for _ in texts]
    else:
        check_alternatives(service, query.alternatives)
        options = make_options(service, None, query.alternatives + 1)
        results, detections = await translate_any(service, request, query.source,
                                                  query.target, texts, options,
                                                  glossary=glossary, protector=protector)
        translated = [result.text for result in results]
        alternatives = [alternatives_of(result, query.alternatives) for result in results]
        confidences = [result.confidence for result in results]
    answer: dict[str, Any] = {"translatedText": translated}
    if confidences is not None:
        answer["confidence"] = confidences
    if query.alternatives:
        answer["alternatives"] = alternatives
    if detections is not None:
        answer["detectedLanguage"] = [detected_language(d) for d in detections]
    return {key: value[0] for key, value in answer.items()} if single else answer


def check_alternatives(service: Service, alternatives: int) -> None:
    """422 in LibreTranslate's own terms (alternatives are the n-best list less the best)."""
    settings = service.settings
    most = min(settings.max_n_best, settings.max_beam_size) - 1
    if alternatives > most:
        raise InvalidRequest(f"alternatives may be at most {most} on this server")


def request_protector(service: Service, protected: list[Any] | None) -> Protector | None:
    """The request's protected spans: the built-in kinds (unless the server's protect_spans
    is off) and its own strings and patterns, within the server's bounds (422 beyond)."""
    settings = service.settings
    if not settings.protect_spans and not protected:
        return None
    try:
        return make_protector([item if isinstance(item, str) else {"regex": item.regex}
                               for item in protected or []],
                              builtin=settings.protect_spans,
                              max_items=settings.max_protected,
                              max_chars=settings.max_protected_chars,
                              budget_s=settings.protected_timeout_s)
    except ProtectedError as error:
        raise InvalidRequest(f"protected: {error}") from None


async def protected_errors(work: Any) -> Any:
    """A protected pattern that runs out of time is the request's fault (422)."""
    try:
        return await work
    except ProtectedError as error:
        raise InvalidRequest(f"protected: {error}") from None


async def translate_any(service: Service, request: Request, source: str, target: str,
                        texts: list[str], options: TranslateOptions,
                        returned: Returned = TEXTS_ONLY, glossary: Glossary | None = None,
                        protector: Protector | None = None
                        ) -> tuple[list[TextResult], list[Detection | None] | None]:
    """Through the given pair, or with source "auto" through each text's detected one;
    protected spans taken out and placed back by the alignment (translate_protected)."""
    check_limits(texts, service.settings)

    async def run(texts: list[str], options: TranslateOptions, returned: Returned
                  ) -> tuple[list[TextResult], list[Detection | None] | None]:
        if source.lower() != AUTO:
            return await translate_texts(service.registry, service.settings, source, target,
                                         texts, options, request, returned, glossary), None
        return await translate_auto(service.registry, service.langid, service.settings,
                                    target, texts, options, request, returned, glossary)

    return await protected_errors(translate_protected(texts, protector, options, returned,
                                                      run))


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
async def detect(request: Request, service: ServiceDep) -> list[Any]:
    """Per text, the served source languages best first with confidences 0-100; a string
    ``q`` gets one such list, a list ``q`` one per item."""
    query = validated(DetectRequest, await authorized_body(request, service, forms=True))
    single = isinstance(query.q, str)
    texts = [query.q] if isinstance(query.q, str) else query.q
    check_limits(texts, service.settings)
    ranked = await rank_languages(service.registry, service.langid, texts)
    answers = [[{"language": d.language, "confidence": d.confidence} for d in options]
               for options in ranked]
    return answers[0] if single else answers


def alternatives_of(result: TextResult, wanted: int) -> list[str]:
    """Up to ``wanted`` other candidate texts, without repeating the translation or each
    other (different pieces can spell the same text)."""
    seen = {result.text}
    alternatives: list[str] = []
    for rank in range(1, result.candidate_count()):
        text = result.candidate(rank)[0]
        if text not in seen and len(alternatives) < wanted:
            seen.add(text)
            alternatives.append(text)
    return alternatives


NATIVE_BODY = body_schema(NativeTranslateRequest)


@router.post("/v1/translate", response_model=NativeTranslateResponse,
             response_model_exclude_none=True, summary="Translate with decoding options",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": NATIVE_BODY}}}})
async def translate_native(request: Request, service: ServiceDep) -> NativeTranslateResponse:
    query = validated(NativeTranslateRequest, await authorized_body(request, service))
    glossary = await request_glossary(service, request, query.glossary, query.glossary_id)
    options = make_options(service, query.beam_size, query.n_best, query.replace_unk,
                           length_penalty=query.length_penalty, max_len_a=query.max_len_a,
                           max_len_b=query.max_len_b,
                           return_attention=query.return_attention
                           or query.return_candidate_attention)
    returned = Returned(tokens=query.return_tokens,
                        candidate_attention=query.return_candidate_attention)
    protector = request_protector(service, query.protected)
    results, detections = await translate_any(service, request, query.source, query.target,
                                              query.texts, options, returned, glossary,
                                              protector)
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
        translation=result.text, confidence=result.confidence,
        score=finite(result.score) if query.return_scores else None,
        candidates=candidates,
        sentences=[sentence_out(source, translation, query, sure, result.verbatim is not None)
                   for source, translation, sure in zip(result.sentences, result.results,
                                                        result.sentence_confidences())])


def sentence_out(source: str, result: Translation, query: NativeTranslateRequest,
                 sure: float, verbatim: bool = False) -> SentenceOut:
    scores = query.return_scores
    attention = query.return_attention or query.return_candidate_attention
    tokens = query.return_tokens or attention
    best = result.alternatives[0] if result.alternatives else None
    candidates = None
    if query.n_best > 1:
        candidates = [CandidateOut(
            translation=c.text, confidence=100.0 if verbatim else confidence(c.score,
                                                                            len(c.tokens)),
            score=finite(c.score) if scores else None,
            normalized_score=finite(c.normalized_score) if scores else None,
            tokens=c.tokens if tokens else None,
            attention=c.attention if query.return_candidate_attention else None)
            for c in result.alternatives]
    return SentenceOut(
        source=source, translation=result.text, confidence=sure,
        glossary_met=result.constraints_met,
        score=finite(result.score) if scores else None,
        normalized_score=finite(best.normalized_score) if scores and best else None,
        source_tokens=result.source_tokens if tokens else None,
        tokens=result.tokens if tokens else None,
        attention=result.attention if attention else None,
        candidates=candidates)


