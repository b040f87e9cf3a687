"""Glossaries: a request's own (``glossary`` in /translate and /v1/translate) or one its API key
stored (``glossary_id``), and the /glossaries routes that store them per API key: POST creates,
GET lists the caller's own, GET /glossaries/{id} reads one, DELETE removes it. A glossary id
of another key is 404, as one that does not exist; callers without a key cannot store (401)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from s2s.inference.glossary import Glossary, GlossaryError
from service.errors import InvalidRequest, MissingApiKey, NotFound, ServiceError
from service.http.access import admit_caller, authorized_body, identify_off_loop
from service.http.body import validated
from service.http.context import ServiceDep
from service.http.security import check_same_site, header_key
from service.schemas import (
    GlossaryBody,
    GlossaryCreate,
    GlossaryList,
    GlossaryOut,
    GlossaryTerm,
)
from service.serving.admission import Caller
from service.settings import Settings
from service.state import Service
from service.stores.glossaries import GlossaryLimitReached, GlossaryStore

router = APIRouter()


class GlossariesDisabled(ServiceError):
    status, kind = 403, "glossaries_disabled"


class TooManyGlossaries(ServiceError):
    status, kind = 429, "too_many_glossaries"


def check_bounds(terms: list[GlossaryTerm], avoid: list[str], settings: Settings) -> None:
    """422 naming the setting: more terms or avoid phrases than the server allows, or a
    longer one."""
    if len(terms) > settings.max_glossary_terms:
        raise InvalidRequest(f"the glossary has {len(terms)} terms; the limit is "
                             f"max_glossary_terms={settings.max_glossary_terms}")
    if len(avoid) > settings.max_glossary_avoid:
        raise InvalidRequest(f"the glossary has {len(avoid)} avoid phrases; the limit is "
                             f"max_glossary_avoid={settings.max_glossary_avoid}")
    most = settings.max_glossary_term_chars
    for text in [t.source for t in terms] + [t.target for t in terms] + list(avoid):
        if len(text) > most:
            raise InvalidRequest(f"the glossary term {text[:20]!r}... has {len(text)} "
                                 f"characters; the limit is max_glossary_term_chars={most}")


def make_glossary(terms: list[GlossaryTerm], avoid: list[str], settings: Settings) -> Glossary:
    """The library's Glossary, within the server's bounds; 422 for one it refuses (a source
    term listed twice, one without a letter or digit)."""
    check_bounds(terms, avoid, settings)
    try:
        return Glossary.from_json({"terms": [t.model_dump() for t in terms],
                                   "avoid": list(avoid)})
    except GlossaryError as error:
        raise InvalidRequest(f"glossary: {error}") from None


def store_of(service: Service) -> GlossaryStore:
    if service.glossaries is None:
        raise GlossariesDisabled("stored glossaries are disabled on this server (set "
                                 "S2S_GLOSSARIES_DB to enable them); send the terms in the "
                                 "request's glossary field instead")
    return service.glossaries


async def request_glossary(service: Service, request: Request,
                           glossary: GlossaryBody | None,
                           glossary_id: str | None) -> Glossary | None:
    """A translation request's glossary: its own terms, or the caller's stored glossary
    ``glossary_id`` (404 when the caller has none of that id); None without either."""
    if glossary is not None and glossary_id is not None:
        raise InvalidRequest("send either glossary or glossary_id, not both")
    if glossary is not None:
        return make_glossary(glossary.terms, glossary.avoid, service.settings)
    if glossary_id is None:
        return None
    store = store_of(service)
    stored = await asyncio.to_thread(store.get, request.state.caller.identity, glossary_id)
    if stored is None:
        raise NotFound(f"no glossary {glossary_id!r} belongs to this API key")
    return make_glossary([GlossaryTerm(**t) for t in stored.terms], stored.avoid,
                         service.settings)


def owner_of(caller: Caller) -> str:
    """The caller's identity, which owns its glossaries; 401 for a caller without a key."""
    if caller.source == "ip":
        raise MissingApiKey("stored glossaries belong to an API key; send one (api_key, "
                            "X-API-Key header or Authorization: Bearer)")
    return caller.identity


async def caller_without_body(request: Request, service: Service) -> Caller:
    """The caller of a GET or DELETE (key in a header or the query), admitted by its rate."""
    caller = await identify_off_loop(service, request, header_key(request)
                                     or request.query_params.get("api_key"))
    request.state.caller = caller
    await admit_caller(service, caller, 0)
    return caller


@router.post("/glossaries", response_model=GlossaryOut, status_code=201,
             summary="Store a glossary for the caller's API key")
async def create_glossary(request: Request, service: ServiceDep) -> GlossaryOut:
    store = store_of(service)
    check_same_site(service.settings, request)
    query = validated(GlossaryCreate, await authorized_body(request, service, count_chars=False))
    owner = owner_of(request.state.caller)
    glossary = make_glossary(query.terms, query.avoid, service.settings)
    terms = [{"source": t.source, "target": t.target} for t in glossary.terms]
    try:
        record = await asyncio.to_thread(store.create, owner, query.name, terms,
                                         list(glossary.avoid),
                                         service.settings.max_glossaries_per_caller)
    except GlossaryLimitReached as error:
        raise TooManyGlossaries(str(error)) from None
    return GlossaryOut(**record.full())


@router.get("/glossaries", response_model=GlossaryList,
            summary="The glossaries of the caller's API key")
async def list_glossaries(request: Request, service: ServiceDep) -> GlossaryList:
    store = store_of(service)
    owner = owner_of(await caller_without_body(request, service))
    records = await asyncio.to_thread(store.list, owner)
    return GlossaryList(glossaries=[r.summary() for r in records])


@router.get("/glossaries/{glossary_id}", response_model=GlossaryOut,
            summary="One glossary of the caller's API key")
async def get_glossary(glossary_id: str, request: Request, service: ServiceDep) -> GlossaryOut:
    store = store_of(service)
    owner = owner_of(await caller_without_body(request, service))
    record = await asyncio.to_thread(store.get, owner, glossary_id)
    if record is None:
        raise NotFound(f"no glossary {glossary_id!r} belongs to this API key")
    return GlossaryOut(**record.full())


@router.delete("/glossaries/{glossary_id}", summary="Delete a glossary of the caller's API key")
async def delete_glossary(glossary_id: str, request: Request,
                          service: ServiceDep) -> dict[str, bool]:
    store = store_of(service)
    check_same_site(service.settings, request)
    owner = owner_of(await caller_without_body(request, service))
    if not await asyncio.to_thread(store.delete, owner, glossary_id):
        raise NotFound(f"no glossary {glossary_id!r} belongs to this API key")
    return {"deleted": True}
