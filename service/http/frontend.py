"""The web page and what it (and LibreTranslate's web UI) reads: /frontend/settings,
/languages, /v1/models, /suggest."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from service.errors import (
    SuggestionsDisabled,
    TooLarge,
    TooManySuggestions,
)
from service.formats.documents import SUPPORTED_FORMATS
from service.http.access import authorized_body
from service.http.body import validated
from service.http.context import ServiceDep
from service.http.security import check_same_site
from service.schemas import (
    Language,
    SuggestRequest,
)
from service.serving.registry import LANGUAGE_NAMES
from service.stores.suggestions import SuggestionLimitReached

router = APIRouter()


STATIC = Path(__file__).resolve().parent / "static"


@router.get("/frontend/settings", summary="What LibreTranslate's web UI reads")
async def frontend_settings(service: ServiceDep) -> dict[str, Any]:
    settings = service.settings
    languages = service.registry.languages()
    target = languages[0]["targets"][0] if languages else "en"
    files = service.files is not None
    return {"apiKeys": settings.uses_api_keys(), "charLimit": settings.max_item_chars,
            "frontendTimeout": 500,
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
async def suggest(request: Request, service: ServiceDep) -> dict[str, bool]:
    if service.suggestions is None:
        raise SuggestionsDisabled("suggestions are disabled on this server (set "
                                  "S2S_SUGGESTIONS_DB to enable them)")
    check_same_site(service.settings, request)
    query = validated(SuggestRequest, await authorized_body(request, service, forms=True))
    settings = service.settings
    limit = settings.max_item_chars
    if max(len(query.q), len(query.s)) > limit:
        raise TooLarge(f"a suggestion's texts may have at most max_item_chars={limit} "
                       "characters each")
    try:
        await asyncio.to_thread(service.suggestions.add, query.q, query.s, query.source.lower(),
                                query.target.lower(), request.state.caller.identity,
                                settings.max_suggestions_per_caller)
    except SuggestionLimitReached as error:
        raise TooManySuggestions(str(error)) from None
    return {"success": True}


@router.get("/languages", response_model=list[Language], summary="Language pairs served")
async def languages(service: ServiceDep) -> list[dict[str, Any]]:
    return service.registry.languages()


PUBLIC_META = ("src_lang", "tgt_lang", "step", "steps", "parameters", "config_name",
               "best_score")


@router.get("/v1/models", summary="Language pairs: state, load time, model facts")
async def models(service: ServiceDep) -> list[dict[str, Any]]:
    answer = []
    for slot in service.registry.slots.values():
        meta = getattr(slot.translator, "meta", None) or {}
        answer.append({"pair": slot.pair, "file": slot.path.name, **slot.state(),
                       "loaded_at": slot.loaded_at,
                       "meta": {key: meta[key] for key in PUBLIC_META if key in meta}})
    return answer


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html")
