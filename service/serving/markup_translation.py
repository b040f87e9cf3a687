"""Formats beyond plain text, through the same pipeline: HTML (formats.markup keeps the
markup and places inline tags by the attention alignment; parsing and rendering run off the
event loop) and uploaded files (formats.documents), which are translated in chunks that each
stay within a request's limits: a text (a line, a cue, an HTML paragraph) over them is cut at
sentence boundaries into pieces that are, and put back together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from starlette.requests import Request

from s2s.inference.translator import TranslateOptions
from service.errors import NotReady, TooLarge, UnknownPair
from service.formats.markup import AlignedText, HtmlFragment, parse_html
from service.formats.markup.plain import PlainText, plain_text
from service.formats.markup.protected import protector_of
from service.formats.protect import Protector
from service.formats.text import Piece, sentences_of, split_long
from service.serving.batcher import FILE_PART, Admission, FileReservation
from service.serving.langid import Detection
from service.serving.pipeline import (
    Engine,
    Returned,
    TextResult,
    admit_file,
    auto_groups,
    available_pairs,
    caller_of,
    find_slot,
    translate_groups,
)
from service.serving.registry import ModelRegistry
from service.settings import Settings

AUTO = "auto"
INLINE_CHARS = 2000   # protected-span work on texts up to this long stays on the event loop
T = TypeVar("T")
DETECTION_SAMPLE_CHARS = 2000   # of a file, for source "auto"


def aligned_text(result: TextResult) -> AlignedText:
    """A text's sentences as one aligned segment: pieces concatenated, attention block
    diagonal, each row kept as the sentence's own weights with the column it starts at
    (``offsets``; the zeros around would take quadratic room in a long segment)."""
    return replace(aligned_sentences(result.results), text=result.text)


def aligned_sentences(sentences: Sequence[Any], rank: int = 0) -> AlignedText:
    """Sentences' (Translation) rank-th candidates as one aligned segment (see
    aligned_text), their texts joined by a space."""
    source: list[str] = []
    target: list[str] = []
    rows: list[list[float]] = []
    offsets: list[int] = []
    texts: list[str] = []
    for sentence in sentences:
        chosen = sentence.alternatives[rank] if rank and rank < len(
            sentence.alternatives) else sentence
        attention = chosen.attention or []
        for index in range(len(chosen.tokens)):
            row = attention[index][: len(sentence.source_tokens)] if index < len(attention) else []
            rows.append(list(row))
            offsets.append(len(source))
        source += sentence.source_tokens
        target += chosen.tokens
        texts.append(chosen.text)
    return AlignedText(source, target, rows, " ".join(texts), offsets)


def with_attention(options: TranslateOptions) -> TranslateOptions:
    return replace(options, search=replace(options.search, return_attention=True))


def check_pair(registry: ModelRegistry, source: str, target: str) -> None:
    """The pair is served (UnknownPair, or NotReady while loading); with source "auto", some
    pair to target is. For files, before their upload is parsed."""
    if source.lower() != AUTO:
        find_slot(registry, source, target)
        return
    if any(slot.target == target.lower() for slot in registry.serving_slots()):
        return
    if not registry.startup_done or any(slot.target == target.lower()
                                        for slot in registry.slots.values()):
        raise NotReady(f"no model to {target!r} is loaded yet; retry later")
    raise UnknownPair(f"no model translates to {target!r}; available pairs: "
                      f"{available_pairs(registry)}")


def segment_chunks(numbers: Sequence[int], sizes: Mapping[int, tuple[int, int]],
                   settings: Settings
                   ) -> list[list[int]]:
    """``numbers`` cut, in order, into chunks within one request's limits: texts, characters
    and sentences (``sizes[n]``: text n's characters and sentences; a text alone over a limit
    is its own chunk and refused there)."""
    chunks: list[list[int]] = []
    current: list[int] = []
    chars = sentences = 0
    for number in numbers:
        text_chars, text_sentences = sizes[number]
        if current and (len(current) + 1 > settings.max_items
                        or chars + text_chars > settings.max_total_chars
                        or sentences + text_sentences > settings.max_request_sentences):
            chunks.append(current)
            current, chars, sentences = [], 0, 0
        current.append(number)
        chars += text_chars
        sentences += text_sentences
    if current:
        chunks.append(current)
    return chunks


def plan_pieces(texts: Sequence[str], groups: dict[str, list[int]], settings: Settings
                ) -> tuple[list[Piece], dict[str, list[list[int]]]]:
    """Every text of the groups cut into pieces within a request's limits (split_long), and
    each language's pieces cut into chunks (lists of piece numbers). CPU work for a file:
    run it off the event loop."""
    pieces: list[Piece] = []
    chunks: dict[str, list[list[int]]] = {}
    for language, numbers in groups.items():
        mine: list[int] = []
        for number in numbers:
            for piece in split_long(texts[number], settings.max_item_chars,
                                    settings.max_request_sentences):
                mine.append(len(pieces))
                pieces.append(replace(piece, owner=number))
        sizes = {n: (len(pieces[n].text), pieces[n].sentences) for n in mine}
        chunks[language] = segment_chunks(mine, sizes, settings)
    return pieces, chunks


def merge_pieces(pieces: Sequence[Piece], results: Sequence[TextResult], count: int
                 ) -> list[TextResult]:
    """Each text's result from those of its pieces (in order): a piece that continues its
    text's line joins its first line's sentences to that line."""
    lines: list[list[list[str]]] = [[] for _ in range(count)]
    found: list[list] = [[] for _ in range(count)]
    for piece, result in zip(pieces, results):
        mine = [list(line) for line in result.lines]
        if piece.continues and lines[piece.owner] and mine:
            lines[piece.owner][-1] += mine.pop(0)
        lines[piece.owner] += mine
        found[piece.owner] += result.results
    return [TextResult(lines[n], sentences_of(lines[n]), found[n]) for n in range(count)]


def file_part(reservation: FileReservation | None) -> Admission:
    """How a chunk of an admitted file is queued: unchecked, never express, in the file's
    turn."""
    return FILE_PART if reservation is None else replace(FILE_PART, place=reservation.place)


async def translate_chunks(service: Engine, request: Request | None, target: str,
                           options: TranslateOptions, pieces: Sequence[Piece], language: str,
                           chunks: list[list[int]], reservation: FileReservation | None,
                           results: list[TextResult]) -> None:
    """Translate one language's chunks of a file in turn into ``results`` (by piece number),
    each queued as the rest of the admitted file; a chunk over the decoding budget is halved
    until it fits (a single piece over it is refused)."""
    pending = list(reversed(chunks))
    while pending:
        chunk = pending.pop()
        sentences = sum(pieces[n].sentences for n in chunk)
        if reservation is not None:
            reservation.queued(sentences)
        try:
            part = await translate_groups(
                service.registry, service.settings, target,
                [pieces[n].text for n in chunk], {language: list(range(len(chunk)))},
                options, request, admission=file_part(reservation))
        except TooLarge:
            if len(chunk) == 1:
                raise
            if reservation is not None:
                reservation.queued(-sentences)
            half = len(chunk) // 2
            pending += [chunk[half:], chunk[:half]]
            continue
        for number, result in zip(chunk, part):
            results[number] = result


async def translate_in_chunks(service: Engine, request: Request | None, target: str,
                              texts: Sequence[str], groups: dict[str, list[int]],
                              options: TranslateOptions, upload_bytes: int = 0
                              ) -> list[TextResult]:
    """``translate_groups`` a chunk at a time (files): each chunk is one request's worth of
    work with its own deadline, so other clients' requests are batched in between. Texts over
    a request's limits are translated in pieces cut at sentence boundaries; a chunk over the
    decoding budget is halved until it fits (a single piece over it is refused). The file
    passes admission by expected wait once, whole, before any chunk is prepared: an admitted
    file is finished. Its chunks never take the express lane. ``upload_bytes``: the size of
    the upload the texts came from (teaches the queue the sentences to expect per byte)."""
    pieces, chunks = await asyncio.to_thread(plan_pieces, texts, groups, service.settings)
    with contextlib.ExitStack() as stack:
        reservations: dict[str, FileReservation] = {}
        sized = upload_bytes if len(chunks) == 1 else 0   # a file's size is one language's
        for language, language_chunks in chunks.items():
            count = sum(pieces[n].sentences for chunk in language_chunks for n in chunk)
            reservation = admit_file(service.registry, language, target, caller_of(request),
                                     count, sized)
            if reservation is not None:
                reservations[language] = stack.enter_context(contextlib.closing(reservation))
        results = [TextResult([], [], []) for _ in pieces]
        for language, language_chunks in chunks.items():
            await translate_chunks(service, request, target, options, pieces, language,
                                   language_chunks, reservations.get(language), results)
    return merge_pieces(pieces, results, len(texts))


async def translate_html(service: Engine, request: Request | None, source: str, target: str,
                         htmls: Sequence[str], options: TranslateOptions, chunked: bool = False,
                         protector: Protector | None = None
                         ) -> tuple[list[str], list[Detection | None] | None]:
    """Translate HTML fragments keeping their markup; with source "auto" each fragment's
    language is detected from its text. Returns the translated HTML (and the detections).
    ``protector``: its spans (and what is marked translate="no" / class="notranslate", always)
    are not translated but copied to where the alignment places them."""
    fragments = await asyncio.to_thread(parse_all, htmls, protector)
    return await translate_fragments(service, request, source, target, fragments, options,
                                     chunked)


def parse_all(htmls: Sequence[str], protector: Protector | None = None
              ) -> list[HtmlFragment]:
    protect = protector_of(protector.spans) if protector is not None and protector.active \
        else None
    return [parse_html(html, protect) for html in htmls]


Run = Callable[[list[str], TranslateOptions, Returned],
               Awaitable[tuple[list[TextResult], list[Detection | None] | None]]]


def plain_texts(texts: Sequence[str], protector: Protector) -> list[PlainText | None]:
    """Each text's lines and protected spans (None for a text without any)."""
    return [plain_text(text, protector.spans) for text in texts]


async def translate_protected(texts: Sequence[str], protector: Protector | None,
                              options: TranslateOptions, returned: Returned, run: Run
                              ) -> tuple[list[TextResult], list[Detection | None] | None]:
    """Plain texts with protected spans: ``run`` (the pipeline, as the request would have
    gone) translates them with the spans taken out, with attention; each text (and each
    candidate) is then rendered with its spans placed by the alignment (TextResult.placed).
    Texts without spans, or no protector: ``run`` as it was."""
    if protector is None or not protector.active:
        return await run(list(texts), options, returned)
    plans = await off_loop_if_long(texts, plain_texts, texts, protector)
    if not any(plans):
        return await run(list(texts), options, returned)
    model_texts = [plan.model_text if plan else text for plan, text in zip(plans, texts)]
    if not options.search.return_attention:
        options = with_attention(options)
        returned = replace(returned, placement_only=True)
    results, detections = await run(model_texts, options, returned)
    await off_loop_if_long(texts, place_all, plans, texts, results)
    return results, detections


async def off_loop_if_long(texts: Sequence[str], function: Callable[..., T], *args: Any) -> T:
    """function(*args) in a thread when the texts are long; for short ones (the usual single
    sentence) on the event loop: a thread hop per request costs more than the work and spreads
    the answered clients' next requests, which splits their batches (64 clients: mean batch
    32 instead of 60, 13% fewer sentences/s)."""
    if sum(len(text) for text in texts) <= INLINE_CHARS:
        return function(*args)
    return await asyncio.to_thread(function, *args)


def place_all(plans: Sequence[PlainText | None], texts: Sequence[str],
              results: Sequence[TextResult]) -> None:
    for plan, text, result in zip(plans, texts, results):
        if plan is None:
            continue
        if result.verbatim is not None:   # already in the target language: as it came
            result.verbatim = text
            continue
        ranks = max(1, result.candidate_count())
        result.placed = [render_plain(plan, result, rank) for rank in range(ranks)]


def render_plain(plan: PlainText, result: TextResult, rank: int = 0) -> str:
    """A plain text's rank-th candidate with its protected spans placed line by line."""
    parts: list[Any] = []
    start = 0
    for number, line in enumerate(plan.lines):
        count = len(result.lines[number]) if number < len(result.lines) else 0
        mine = result.results[start:start + count]
        start += count
        if line.segment is not None:
            parts.append(aligned_sentences(mine, rank))
        else:
            parts.append(" ".join(
                (s.alternatives[rank].text if rank and rank < len(s.alternatives) else s.text)
                for s in mine))
    return plan.render(parts)


async def translate_fragments(service: Engine, request: Request | None, source: str, target: str,
                              fragments: list[HtmlFragment], options: TranslateOptions,
                              chunked: bool = False, upload_bytes: int = 0
                              ) -> tuple[list[str], list[Detection | None] | None]:
    """translate_html once the fragments are parsed (rendering off the event loop too);
    ``chunked`` (a file of ``upload_bytes``): translate_in_chunks."""
    segments: list[str] = []
    owners: list[int] = []
    for number, fragment in enumerate(fragments):
        segments += fragment.segments
        owners += [number] * len(fragment.segments)
    detections = None
    if source.lower() == AUTO:
        plain = [" ".join(fragment.segments) for fragment in fragments]
        item_groups, detections = await auto_groups(service.registry, service.langid, target,
                                                    plain)
        language_of = {n: lang for lang, numbers in item_groups.items() for n in numbers}
        groups: dict[str, list[int]] = {}
        for index, owner in enumerate(owners):
            groups.setdefault(language_of[owner], []).append(index)
    else:
        groups = {source: list(range(len(segments)))}
    options = with_attention(options)
    if chunked:
        results = await translate_in_chunks(service, request, target, segments, groups, options,
                                            upload_bytes)
    else:
        results = await translate_groups(service.registry, service.settings, target, segments,
                                         groups, options, request, check=False)
    rendered = await asyncio.to_thread(render, fragments, owners, results)
    return rendered, detections


def render(fragments: list[HtmlFragment], owners: list[int], results: list[TextResult]
           ) -> list[str]:
    aligned: list[list[AlignedText]] = [[] for _ in fragments]
    for owner, result in zip(owners, results):
        aligned[owner].append(aligned_text(result))
    return [fragment.render(parts) for fragment, parts in zip(fragments, aligned)]


async def file_source(service: Engine, source: str, texts: Sequence[str]) -> str:
    """The file's source language: as given, or detected from its first characters."""
    if source.lower() != AUTO:
        return source
    sample = " ".join(texts)[:DETECTION_SAMPLE_CHARS]
    groups, _ = await auto_groups(service.registry, service.langid, "", [sample],
                                  check_target=False)
    if not groups:
        return source
    return next(iter(groups))


async def translate_document_texts(service: Engine, request: Request | None, source: str,
                                   target: str, texts: list[str], text_format: str,
                                   options: TranslateOptions, upload_bytes: int = 0
                                   ) -> list[str]:
    """An uploaded file's texts (of an upload of ``upload_bytes``), translated in chunks (HTML
    keeping its markup); texts with nothing to translate come back as they are. The pair is
    the caller's to check first (check_pair): a file with nothing to translate is then
    answered without a model."""
    if not texts:
        return []
    if text_format == "html":
        fragments = await asyncio.to_thread(parse_all, texts)
        segments = [segment for fragment in fragments for segment in fragment.segments]
        if not segments:
            return list(texts)
        source = await file_source(service, source, segments)
        translated, _ = await translate_fragments(service, request, source, target, fragments,
                                                  options, True, upload_bytes)
        return translated
    source = await file_source(service, source, texts)
    results = await translate_in_chunks(service, request, target, texts,
                                        {source: list(range(len(texts)))}, options, upload_bytes)
    return [result.text for result in results]
