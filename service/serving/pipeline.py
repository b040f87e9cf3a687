"""One request's way through the service: limits, pair, sentence splitting, preparation (each
sentence tokenized and length-checked once, by the model's translator), the cost check (work
per sentence, and the response's size at worst), the model's batcher in waves the server cuts
(at most max_request_sentences sentences and max_request_cost work each, so a request within
the character limits is never refused for its sentence count), deadline and client disconnect,
results put back into the texts."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import torch
from starlette.requests import Request

from s2s.inference.confidence import confidence
from s2s.inference.glossary import Glossary, GlossaryError
from s2s.inference.interrupt import DecodingInterrupted
from s2s.inference.search import max_output_tokens
from s2s.inference.translator import (
    Candidate,
    InputTooLongError,
    Source,
    TranslateOptions,
    Translation,
)
from service.errors import (
    ClientDisconnected,
    DeadlineExceeded,
    InputTooLong,
    InvalidRequest,
    NotReady,
    OutOfMemory,
    Overloaded,
    ServiceError,
    TooLarge,
    TranslationFailed,
    UnknownPair,
)
from service.formats.text import join_text, sentences_of, split_text
from service.serving.batcher import NEW, Admission, FileReservation
from service.serving.langid import Detection, LanguageIdentifier
from service.serving.registry import ModelRegistry, ModelSlot
from service.settings import Settings


class Engine(Protocol):
    """What translating a request needs of the service (state.Service has it): the models,
    language identification and the settings."""

    registry: ModelRegistry
    langid: LanguageIdentifier
    settings: Settings


@dataclass
class TextResult:
    """A text's line structure, its sentences and their translations (in order)."""

    lines: list[list[str]]
    sentences: list[str]
    results: list[Translation]
    verbatim: str | None = None   # a text returned as it came (already in the target language)
    placed: list[str] | None = None   # per candidate rank: the text with its protected spans
    #                                   put back (markup_translation.translate_protected)

    @property
    def text(self) -> str:
        if self.verbatim is not None:
            return self.verbatim
        if self.placed:
            return self.placed[0]
        return join_text(self.lines, (r.text for r in self.results))

    @classmethod
    def unchanged(cls, text: str) -> TextResult:
        """A text that needs no translation: itself, as its only candidate, score 0."""
        lines = split_text(text)
        sentences = sentences_of(lines)
        return cls(lines, sentences, [Translation(sentence, 0.0, [], alternatives=[
            Candidate(sentence, 0.0, 0.0, [])]) for sentence in sentences], verbatim=text)

    @property
    def score(self) -> float:
        return sum(r.score for r in self.results)

    def sentence_confidences(self) -> list[float]:
        """Each sentence's confidence, 0-100 (s2s.inference.confidence); a text returned
        verbatim (already in the target language) is 100 throughout."""
        if self.verbatim is not None:
            return [100.0] * len(self.results)
        return [confidence(r.score, len(r.tokens)) for r in self.results]

    @property
    def confidence(self) -> float:
        """The text's confidence: its sentences' mean weighted by their characters (0 for a
        text without sentences)."""
        weights = [max(1, len(sentence)) for sentence in self.sentences]
        if not weights or len(weights) != len(self.results):
            return 100.0 if self.verbatim is not None else 0.0
        scores = self.sentence_confidences()
        return round(sum(w * c for w, c in zip(weights, scores)) / sum(weights), 1)

    def candidate_count(self) -> int:
        """Candidates every sentence has (0 for an empty text)."""
        return min((len(r.alternatives) for r in self.results), default=0)

    def candidate(self, rank: int) -> tuple[str, float, float]:
        """The text made of each sentence's rank-th candidate: text, score, normalized score."""
        chosen = [r.alternatives[rank] for r in self.results]
        if self.verbatim is not None and rank == 0:
            return self.verbatim, 0.0, 0.0
        text = (self.placed[rank] if self.placed and rank < len(self.placed)
                else join_text(self.lines, (c.text for c in chosen)))
        return (text, sum(c.score for c in chosen),
                sum(c.normalized_score for c in chosen))


def finite(value: float) -> float | None:
    """JSON has no infinity: a score of -inf (no hypothesis) is reported as null."""
    return value if math.isfinite(value) else None


def check_limits(texts: Sequence[str], settings: Settings) -> None:
    """413 naming the setting and its value: texts per request, characters per text and in
    all. (A request within these is never refused for its number of sentences.)"""
    if len(texts) > settings.max_items:
        raise TooLarge(f"{len(texts)} texts in one request; the limit is "
                       f"max_items={settings.max_items}")
    for number, text in enumerate(texts):
        if len(text) > settings.max_item_chars:
            raise TooLarge(f"text {number} has {len(text)} characters; the limit is "
                           f"max_item_chars={settings.max_item_chars} per text")
    total = sum(len(text) for text in texts)
    if total > settings.max_total_chars:
        raise TooLarge(f"the texts have {total} characters in all; the limit is "
                       f"max_total_chars={settings.max_total_chars}")


def find_slot(registry: ModelRegistry, source: str, target: str) -> ModelSlot:
    pair = f"{source.lower()}-{target.lower()}"
    slot = registry.slots.get(pair)
    if slot is not None and slot.serving:
        return slot
    if slot is not None and slot.error is not None:
        raise NotReady(f"the model for {pair} failed to load ({slot.error}); it is served again "
                       "after a successful reload")
    if slot is not None or not registry.startup_done:
        raise NotReady(f"the model for {pair} is not loaded yet; retry later")
    raise UnknownPair(f"no model translates {source!r} to {target!r}; "
                      f"available pairs: {available_pairs(registry)}")


@dataclass(frozen=True)
class GlossarySource(Source):
    """A source prepared under a glossary, which it keeps: a reload that replaces the
    translator prepares it again with the same glossary (batcher.current_sources)."""

    glossary: Glossary | None = None


def prepare_sentences(slot: ModelSlot, texts: list[list[list[str]]],
                      glossary: Glossary | None = None) -> list[Source]:
    """The sentences of all texts (flattened), prepared by the pair's current translator (with
    the glossary's constraints); 413 for one the model cannot take, 422 for one the glossary
    cannot serve (a target term the model cannot spell, too many terms in one sentence)."""
    flat = [(number, sentence) for number, lines in enumerate(texts)
            for sentence in sentences_of(lines)]
    if not flat:
        return []
    sentences = [sentence for _, sentence in flat]
    translator = slot.translator
    if translator is None:   # find_slot gives serving slots only; a reload never unsets it
        raise NotReady(f"the model for {slot.pair} is not loaded; retry later")
    try:
        if not glossary:
            return translator.prepare(sentences)
        return [GlossarySource(s.text, s.ids, s.constraints, glossary)
                for s in translator.prepare(sentences, glossary)]
    except GlossaryError as error:
        where = "" if error.index is None else f"text {flat[error.index][0]}: "
        reason = str(error).split(": ", 1)[1] if error.index is not None else str(error)
        raise InvalidRequest(f"glossary: {where}{reason}") from None
    except InputTooLongError as error:
        raise InputTooLong(
            f"text {flat[error.index][0]} has a sentence of {error.pieces} subword pieces; the "
            f"model accepts at most {error.limit} (the model's max_src_len={error.limit}; split "
            "the text into shorter sentences)"
        ) from None


# The response's size at worst, per output piece or attention weight, as JSON.
BYTES_PER_PIECE = 8       # a piece of a translation's text (escaped non-ASCII counted)
BYTES_PER_TOKEN = 12      # a piece in a tokens list: quotes, comma, the piece
BYTES_PER_CELL = 22       # an attention weight: a float's repr and a comma


@dataclass(frozen=True)
class Returned:
    """What a response carries beyond the texts: token lists, and the attention of every
    candidate (not only of the best one) when attention is asked."""

    tokens: bool = False
    candidate_attention: bool = False
    placement_only: bool = False   # attention computed to place protected spans, not returned


TEXTS_ONLY = Returned()


def sentence_cost(source: Source, options: TranslateOptions) -> int:
    """Decoding work of one sentence: beam x its output-token limit."""
    search = options.search
    return search.beam_size * max_output_tokens(len(source), search)


def response_bytes(sources: Sequence[Source], options: TranslateOptions,
                   returned: Returned = TEXTS_ONLY) -> int:
    """The response's size at worst: per sentence, candidates x output-token limit x bytes per
    piece, plus with attention (output limit + EOS) x source pieces x bytes per weight for the
    best candidate (and every other one when ``returned.candidate_attention``)."""
    search = options.search
    texts = search.n_best + (1 if search.n_best > 1 else 0)   # the best is repeated
    per_piece = BYTES_PER_PIECE + (BYTES_PER_TOKEN if returned.tokens or search.return_attention
                                   else 0)
    maps = 1 + (search.n_best if returned.candidate_attention and search.n_best > 1 else 0)
    total = 0
    for source in sources:
        out = max_output_tokens(len(source), search)
        total += texts * out * per_piece
        if search.return_attention and not returned.placement_only:
            total += maps * (out + 1) * len(source) * BYTES_PER_CELL
    return total


def check_cost(sources: list[Source], options: TranslateOptions, settings: Settings,
               returned: Returned = TEXTS_ONLY) -> None:
    """Refuse (413, naming the setting and its value) before any work starts: a request whose
    decoding work, the sum over its sentences of beam x output-token limit, is above
    max_request_cost, or whose response could be larger than max_response_bytes. The number
    of sentences alone is not refused: translate_groups runs them in waves (cut_waves)."""
    costs = [sentence_cost(source, options) for source in sources]
    if costs and max(costs) > settings.max_request_cost:
        raise TooLarge(f"one sentence asks for up to {max(costs)} decoding steps x beams; the "
                       f"limit is max_request_cost={settings.max_request_cost} (ask for a "
                       "smaller beam or a shorter output limit)")
    if sum(costs) > settings.max_request_cost:
        raise TooLarge(f"the request asks for up to {sum(costs)} decoding steps x beams in all "
                       f"({len(costs)} sentences); the limit is max_request_cost="
                       f"{settings.max_request_cost} (send fewer or shorter texts, a smaller "
                       "beam or a shorter output limit)")
    size = response_bytes(sources, options, returned)
    if size > settings.max_response_bytes:
        search = options.search
        parts = [f"{len(sources)} sentences", f"{search.n_best} candidates each",
                 f"up to {search.max_len or 'no'} output tokens"]
        if search.return_attention:
            parts.append("attention" + (" of every candidate" if returned.candidate_attention
                                        else ""))
        raise TooLarge(f"the response could reach {size} bytes ({', '.join(parts)}); the limit "
                       f"is max_response_bytes={settings.max_response_bytes} (send fewer texts, "
                       "ask for fewer candidates, or leave out attention)")


def cut_waves(count: int, settings: Settings) -> list[tuple[int, int]]:
    """[start, end) ranges of a request's ``count`` sentences queued one after another, each
    at most max_request_sentences sentences and what one caller may hold of the queue (the
    work of all of them together is already within max_request_cost: check_cost)."""
    # as the batcher's queue counts it
    caller_limit = max(1, int(settings.queue_capacity * settings.caller_queue_share))
    most = min(settings.max_request_sentences, caller_limit)
    return [(start, min(start + most, count)) for start in range(0, count, most)]


async def translate_texts(registry: ModelRegistry, settings: Settings, source: str, target: str,
                          texts: Sequence[str], options: TranslateOptions,
                          request: Request | None = None, returned: Returned = TEXTS_ONLY,
                          glossary: Glossary | None = None) -> list[TextResult]:
    """Translate texts through the pair's batcher within the request deadline."""
    return await translate_groups(registry, settings, target, texts,
                                  {source: list(range(len(texts)))}, options, request,
                                  returned=returned, glossary=glossary)


async def translate_groups(registry: ModelRegistry, settings: Settings, target: str,
                           texts: Sequence[str], groups: dict[str, list[int]],
                           options: TranslateOptions, request: Request | None = None,
                           check: bool = True, returned: Returned = TEXTS_ONLY,
                           glossary: Glossary | None = None, admission: Admission = NEW
                           ) -> list[TextResult]:
    """Translate ``texts[i]`` for each i of ``groups[source]`` through pair source-target, as
    one request: limits (unless the caller checked its own, ``check`` False) and the cost check
    count all its sentences; every sentence is prepared before the first is queued (so each by
    the translator that serves it), then queued in waves (cut_waves), each wave's wait covering
    the deadline of the whole request, disconnect and shutdown. Texts in no group come back
    blank. A glossary constrains every sentence (Translator.prepare). Only the first wave
    passes the batcher's admission by expected wait (if ``admission`` asks for it): an
    admitted request is finished, not refused halfway."""
    deadline = asyncio.get_running_loop().time() + settings.request_timeout_s
    if check:
        check_limits(texts, settings)
    if registry.draining:
        raise NotReady("the server is shutting down; retry on another replica")
    plans = []
    for source, numbers in groups.items():
        slot = find_slot(registry, source, target)
        segmented = [split_text(texts[number], source) for number in numbers]
        plans.append((slot, numbers, segmented, prepare_sentences(slot, segmented, glossary)))
    flat = [(slot, source) for slot, _, _, sources in plans for source in sources]
    check_cost([source for _, source in flat], options, settings, returned)
    results: list[Translation] = []
    for start, end in cut_waves(len(flat), settings):
        futures = submit_all(runs_by_slot(flat[start:end]), options, caller_of(request),
                             admission if start == 0 else replace(admission, check=False))
        results += await wait_results(futures, deadline, request, registry.drain_expired)
    out = [TextResult([], [], []) for _ in texts]
    start = 0
    for _, numbers, segmented, _ in plans:
        for number, lines in zip(numbers, segmented):
            mine = sentences_of(lines)
            out[number] = TextResult(lines, mine, results[start:start + len(mine)])
            start += len(mine)
    return out


def check_upload_wait(registry: ModelRegistry, source: str, target: str, caller: str,
                      upload_bytes: int) -> None:
    """Before an upload is parsed: 503 (Retry-After) when a file of the sentences expected
    from its size would not be done within max_queue_wait_s through pair source-target
    under overload (Batcher.check_upload)."""
    batcher = find_slot(registry, source, target).batcher
    if batcher is not None:
        batcher.check_upload(caller, upload_bytes)


def admit_file(registry: ModelRegistry, source: str, target: str, caller: str, count: int,
               upload_bytes: int = 0) -> FileReservation | None:
    """Admission of a parsed file of ``count`` sentences (from ``upload_bytes``) before its
    first chunk is prepared (Batcher.admit_file); the reservation holds its sentences until
    they are queued (None: no model loaded now)."""
    batcher = find_slot(registry, source, target).batcher
    return None if batcher is None else batcher.admit_file(caller, count, upload_bytes)


def runs_by_slot(items: Sequence[tuple[ModelSlot, Source]]
                 ) -> list[tuple[ModelSlot, list[Source]]]:
    """Consecutive sentences of one pair as one batch for submit_all (order kept)."""
    runs: list[tuple[ModelSlot, list[Source]]] = []
    for slot, source in items:
        if runs and runs[-1][0] is slot:
            runs[-1][1].append(source)
        else:
            runs.append((slot, [source]))
    return runs


def caller_of(request: Request | None) -> str:
    """The queue's name for who sent the request: its API key's identity, else its address."""
    if request is None:
        return ""
    caller = getattr(request.state, "caller", None)
    if caller is not None:
        return str(caller.identity)
    return f"ip:{request.client.host}" if request.client else ""


def submit_all(batches: list[tuple[ModelSlot, list[Source]]], options: TranslateOptions,
               caller: str = "", admission: Admission = NEW) -> list[asyncio.Future]:
    """Queue each pair's sentences (``admission``: checked, or the rest of a request already
    admitted; whether it may run in the express lane); one future per sentence, in order. A
    queue that refuses its part cancels what the others already took."""
    futures: list[asyncio.Future] = []
    try:
        for slot, sources in batches:
            if sources and slot.batcher is None:   # removed by a reload meanwhile
                raise NotReady(f"the model for {slot.pair} is not loaded; retry later")
            if sources and slot.batcher is not None:
                futures += slot.batcher.submit(sources, options, caller, admission)
    except ServiceError:
        for future in futures:
            future.cancel()
        raise
    return futures


async def rank_languages(registry: ModelRegistry, identifier: LanguageIdentifier,
                         texts: Sequence[str], also: Sequence[str] = ()
                         ) -> list[list[Detection]]:
    """Per text, the source languages the server has models for (and the languages ``also``),
    best first (empty for a text without letters)."""
    candidates = sorted({slot.source for slot in registry.serving_slots()} | set(also))
    return await asyncio.to_thread(identifier.detect, list(texts), candidates)


async def detect_languages(registry: ModelRegistry, identifier: LanguageIdentifier,
                           texts: Sequence[str], also: Sequence[str] = ()
                           ) -> list[Detection | None]:
    """Each text's most likely source language among those the server has models for (and
    ``also``; None for a text without letters)."""
    ranked = await rank_languages(registry, identifier, texts, also)
    return [options[0] if options else None for options in ranked]


def available_pairs(registry: ModelRegistry) -> str:
    return ", ".join(slot.pair for slot in registry.serving_slots()) or "none"


async def auto_groups(registry: ModelRegistry, identifier: LanguageIdentifier, target: str,
                      texts: Sequence[str], check_target: bool = True,
                      same_language_ok: bool = False
                      ) -> tuple[dict[str, list[int]], list[Detection | None]]:
    """Each text's detected source language: {language: text numbers} (blank texts in none)
    and the detections. UnknownPair (naming the detected language and the pairs served) when a
    text's language is unknown or, with ``check_target``, has no model to ``target`` (texts
    already in ``target`` excepted with ``same_language_ok``: their group stays in)."""
    detections = await detect_languages(registry, identifier, texts,
                                        [target.lower()] if same_language_ok else [])
    groups: dict[str, list[int]] = {}
    for number, (text, detection) in enumerate(zip(texts, detections)):
        if detection is None and text.strip():
            raise UnknownPair(f"the language of text {number} could not be detected; send "
                              f"its source language (available pairs: {available_pairs(registry)})")
        if detection is not None:
            groups.setdefault(detection.language, []).append(number)
    for language, numbers in groups.items():
        if same_language_ok and language == target.lower():
            continue
        if check_target and f"{language}-{target.lower()}" not in registry.slots:
            found = detections[numbers[0]]
            assert found is not None   # groups hold detected texts only
            raise UnknownPair(f"text {numbers[0]} was detected as {language!r} (confidence "
                              f"{found.confidence:g}), and no model translates {language!r} to "
                              f"{target!r}; available pairs: {available_pairs(registry)}")
    return groups, detections


async def translate_auto(registry: ModelRegistry, identifier: LanguageIdentifier,
                         settings: Settings, target: str, texts: Sequence[str],
                         options: TranslateOptions, request: Request | None = None,
                         returned: Returned = TEXTS_ONLY, glossary: Glossary | None = None
                         ) -> tuple[list[TextResult], list[Detection | None]]:
    """Translate texts whose source language is detected per text: each language's texts go
    through that pair's batcher, all as one request (translate_groups). Blank texts translate
    to blank; texts detected as already in ``target`` (with no model of that language to
    itself) come back unchanged, with their detection."""
    check_limits(texts, settings)
    groups, detections = await auto_groups(registry, identifier, target, texts,
                                           same_language_ok=True)
    same = target.lower()
    unchanged = [] if f"{same}-{same}" in registry.slots else groups.pop(same, [])
    results = await translate_groups(registry, settings, target, texts, groups, options,
                                     request, check=False, returned=returned,
                                     glossary=glossary)
    for number in unchanged:
        results[number] = TextResult.unchanged(texts[number])
    return results, detections


async def wait_results(futures: list[asyncio.Future], deadline: float,
                       request: Request | None, shutdown: asyncio.Event) -> list[Translation]:
    """The futures' results; on deadline, client disconnect, the end of the shutdown grace
    period or a failure the unfinished futures are cancelled, so the batcher drops their
    sentences."""
    gathered = asyncio.gather(*futures)
    gathered.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved
    stopping = asyncio.ensure_future(shutdown.wait())
    disconnect = None if request is None else asyncio.ensure_future(
        wait_for_disconnect(request))
    waiting: set[asyncio.Future[Any]] = {gathered, stopping}
    if disconnect is not None:
        waiting.add(disconnect)
    remaining = max(0.0, deadline - asyncio.get_running_loop().time())
    try:
        done, _ = await asyncio.wait(waiting, timeout=remaining,
                                     return_when=asyncio.FIRST_COMPLETED)
        cancelled = any(future.cancelled() for future in futures)   # by the server
        if gathered in done and not cancelled:
            return gathered.result()
        raise unfinished_error(disconnect in done, shutdown.is_set(), cancelled)
    except (ServiceError, asyncio.CancelledError):
        raise
    except Exception as error:
        raise failure_error(error) from None
    finally:
        for future in (*futures, gathered, stopping, disconnect):
            if future is not None:
                future.cancel()


def unfinished_error(disconnected: bool, shutting_down: bool, cancelled: bool) -> ServiceError:
    """Why a request's translations did not all arrive."""
    if disconnected:
        return ClientDisconnected("the client disconnected; its work was dropped")
    if shutting_down:
        return NotReady("the server shut down before the request finished; retry on another "
                        "replica")
    if cancelled:
        return NotReady("the request's work was cancelled by the server; retry later")
    return DeadlineExceeded("the request did not finish before its deadline; its remaining "
                            "sentences were dropped")


def failure_error(error: Exception) -> ServiceError:
    """The service error for a translation that raised."""
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return OutOfMemory("out of GPU memory even for a single sentence; retry later")
    if isinstance(error, InputTooLongError):
        return InputTooLong(str(error))
    if isinstance(error, DecodingInterrupted):
        return Overloaded("the batch ran past the server's time limit (max_batch_seconds) and "
                          "was stopped; retry with less work")
    return TranslationFailed(f"translation failed: {type(error).__name__}")


async def wait_for_disconnect(request: Request) -> None:
    """Returns when the client goes away (the body has been read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
