"""Formats beyond plain text, through the same pipeline: HTML (formats.markup keeps the
markup and places inline tags by the attention alignment; parsing and rendering run off the
event loop) and uploaded files (formats.documents), which are translated in chunks that each
stay within a request's limits."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from starlette.requests import Request

from s2s.inference.translator import TranslateOptions
from service.formats.markup import AlignedText, HtmlFragment, parse_html
from service.formats.text import sentences_of, split_text
from service.serving.langid import Detection
from service.serving.pipeline import TextResult, auto_groups, translate_groups
from service.settings import Settings

AUTO = "auto"
DETECTION_SAMPLE_CHARS = 2000   # of a file, for source "auto"


def aligned_text(result: TextResult) -> AlignedText:
    """A text's sentences as one aligned segment: pieces concatenated, attention block
    diagonal (len(target pieces) rows x len(source pieces) columns)."""
    source: list[str] = []
    target: list[str] = []
    rows: list[list[float]] = []
    for sentence in result.results:
        attention = sentence.attention or []
        for index in range(len(sentence.tokens)):
            row = attention[index][: len(sentence.source_tokens)] if index < len(attention) else []
            rows.append([0.0] * len(source) + list(row))
        source += sentence.source_tokens
        target += sentence.tokens
    rows = [row + [0.0] * (len(source) - len(row)) for row in rows]
    return AlignedText(source, target, rows, result.text)


def with_attention(options: TranslateOptions) -> TranslateOptions:
    return replace(options, search=replace(options.search, return_attention=True))


def segment_chunks(numbers: Sequence[int], texts: Sequence[str], settings: Settings
                   ) -> list[list[int]]:
    """``numbers`` cut, in order, into chunks within one request's limits: texts, characters
    and sentences (a text alone over a limit is its own chunk and refused there)."""
    chunks: list[list[int]] = []
    current: list[int] = []
    chars = sentences = 0
    for number in numbers:
        text_chars = len(texts[number])
        text_sentences = len(sentences_of(split_text(texts[number])))
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


async def translate_in_chunks(service: Any, request: Request | None, target: str,
                              texts: Sequence[str], groups: dict[str, list[int]],
                              options: TranslateOptions) -> list[TextResult]:
    """``translate_groups`` a chunk at a time (files): each chunk is one request's worth of
    work with its own deadline, so other clients' requests are batched in between."""
    out = [TextResult([], [], []) for _ in texts]
    for language, numbers in groups.items():
        for chunk in segment_chunks(numbers, texts, service.settings):
            part = await translate_groups(service.registry, service.settings, target,
                                          [texts[n] for n in chunk],
                                          {language: list(range(len(chunk)))}, options, request)
            for number, result in zip(chunk, part):
                out[number] = result
    return out


async def translate_html(service: Any, request: Request | None, source: str, target: str,
                         htmls: Sequence[str], options: TranslateOptions, chunked: bool = False
                         ) -> tuple[list[str], list[Detection | None] | None]:
    """Translate HTML fragments keeping their markup; with source "auto" each fragment's
    language is detected from its text. Returns the translated HTML (and the detections)."""
    fragments = await asyncio.to_thread(lambda: [parse_html(html) for html in htmls])
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
        results = await translate_in_chunks(service, request, target, segments, groups, options)
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


async def file_source(service: Any, source: str, texts: Sequence[str]) -> str:
    """The file's source language: as given, or detected from its first characters."""
    if source.lower() != AUTO:
        return source
    sample = " ".join(texts)[:DETECTION_SAMPLE_CHARS]
    groups, _ = await auto_groups(service.registry, service.langid, "", [sample],
                                  check_target=False)
    if not groups:
        return source
    return next(iter(groups))


async def translate_document_texts(service: Any, request: Request | None, source: str,
                                   target: str, texts: list[str], text_format: str,
                                   options: TranslateOptions) -> list[str]:
    """An uploaded file's texts, translated in chunks (HTML keeping its markup)."""
    if not texts:
        return []
    source = await file_source(service, source, texts)
    if text_format == "html":
        translated, _ = await translate_html(service, request, source, target, texts, options,
                                             chunked=True)
        return translated
    results = await translate_in_chunks(service, request, target, texts,
                                        {source: list(range(len(texts)))}, options)
    return [result.text for result in results]

