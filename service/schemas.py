"""Request and response bodies of the HTTP API."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from s2s.constants import LENGTH_PENALTY, MAX_LEN_A, MAX_LEN_B
from s2s.inference.glossary import MAX_AVOID, MAX_TERM_CHARS, MAX_TERMS

# Hard bounds of the schema (numbers a JSON body may carry at all). Whether decoding options are
# valid and within the server's limits is decided once, by the library: SearchOptions and
# SearchLimits (service.http.options).
NUMBER_BOUND = 1_000_000


def valid_unicode(text: str) -> str:
    """Refuse strings that are not valid Unicode (lone surrogates, as JSON's \\ud800 gives)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode (lone surrogate)") from None
    return text


Text = Annotated[str, AfterValidator(valid_unicode)]


def glossary_object(value: Any) -> Any:
    """A glossary as its object form: a list of terms is {"terms": list}; a glossary sent as
    a form field (LibreTranslate clients send forms) is its JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("a glossary sent as text must be JSON") from None
    return {"terms": value} if isinstance(value, list) else value


TermText = Annotated[str, Field(min_length=1, max_length=MAX_TERM_CHARS),
                     AfterValidator(valid_unicode)]


class GlossaryTerm(BaseModel):
    """Translate ``source`` (whole words, same case) with ``target``."""

    model_config = ConfigDict(extra="forbid")

    source: TermText = Field(description="source term, matched as whole words, case-sensitive")
    target: TermText = Field(description="what the translation must use for it")


class GlossaryBody(BaseModel):
    """A glossary with phrases to avoid: terms the translation must use (each when its source
    term is in the sentence), target phrases it must not contain."""

    model_config = ConfigDict(extra="forbid")

    terms: list[GlossaryTerm] = Field(default_factory=list, max_length=MAX_TERMS)
    avoid: list[TermText] = Field(default_factory=list, max_length=MAX_AVOID,
                                  description="target phrases no translation may contain")


GlossaryField = Annotated[
    GlossaryBody | None, BeforeValidator(glossary_object),
    Field(None, description='terms the translation must use, [{"source": "Mann", "target": '
          '"guy"}], or {"terms": [...], "avoid": ["phrase", ...]}; bounded by the server\'s '
          "max_glossary_terms, max_glossary_avoid and max_glossary_term_chars")]
GlossaryId = Annotated[Text | None, Field(None, max_length=64, description="id of a glossary "
                                          "the caller's API key stored (/glossaries)")]


class ProtectedPattern(BaseModel):
    """A regular expression (Python ``regex`` syntax) whose matches are not translated."""

    model_config = ConfigDict(extra="forbid")

    regex: Text = Field(min_length=1, max_length=1000)


def protected_list(value: Any) -> Any:
    """A protected list sent as a form field (LibreTranslate clients send forms) is its JSON
    text; a single string is a list of one."""
    if isinstance(value, str):
        try:
            loaded = json.loads(value)
        except ValueError:
            return [value]
        return loaded if isinstance(loaded, list) else [value]
    return value


ProtectedField = Annotated[
    list[Annotated[Text, Field(min_length=1, max_length=1000)] | ProtectedPattern] | None,
    BeforeValidator(protected_list),
    Field(None, max_length=100, description='more to leave untranslated, besides URLs, '
          'handles, hashtags, emoji, placeholders...: strings (exact) and {"regex": "..."} '
          "patterns; bounded by the server's max_protected and max_protected_chars, patterns "
          "matching the empty string are refused, matching is time-bounded "
          "(protected_timeout_s)")]


class LibreTranslateRequest(BaseModel):
    """LibreTranslate's /translate body (JSON or form fields)."""

    model_config = ConfigDict(extra="ignore")

    q: Text | list[Text] = Field(description="a text or a list of texts")
    source: Text = Field(max_length=32, description="source language code, e.g. 'de'")
    target: Text = Field(max_length=32, description="target language code, e.g. 'en'")
    format: Literal["text", "html"] = "text"
    alternatives: int = Field(0, ge=0, le=NUMBER_BOUND,
                              description="extra n-best translations per text")
    api_key: Text | None = Field(None, max_length=256)
    glossary: GlossaryField
    glossary_id: GlossaryId
    protected: ProtectedField


class DetectedLanguage(BaseModel):
    language: str = Field(description="ISO 639-1 code")
    confidence: float = Field(description="0-100")


CONFIDENCE = ("0-100: how sure the model is that the translation is usable (a calibrated "
              "mean token log-probability); a text of several sentences gets the mean of its "
              "sentences weighted by their characters")


class LibreTranslateResponse(BaseModel):
    translatedText: str | list[str]  # noqa: N815 (LibreTranslate's name)
    confidence: float | list[float] | None = Field(
        None, description=CONFIDENCE + "; one per text for a list q (absent with format html)")
    alternatives: list[str] | list[list[str]] | None = None
    detectedLanguage: DetectedLanguage | list[DetectedLanguage] | None = None  # noqa: N815


class SuggestRequest(BaseModel):
    """LibreTranslate's /suggest body: a text and a better translation of it."""

    model_config = ConfigDict(extra="ignore")

    q: Text = Field(description="the original text")
    s: Text = Field(description="the suggested translation")
    source: Text = Field(max_length=32)
    target: Text = Field(max_length=32)
    api_key: Text | None = Field(None, max_length=256)


class DetectRequest(BaseModel):
    """LibreTranslate's /detect body (JSON or form fields)."""

    model_config = ConfigDict(extra="ignore")

    q: Text | list[Text] = Field(description="a text or a list of texts")
    api_key: Text | None = Field(None, max_length=256)


class NativeTranslateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[Text] = Field(description="texts; several sentences or lines per text are fine")
    source: Text = Field(max_length=32)
    target: Text = Field(max_length=32)
    beam_size: int | None = Field(None, ge=-NUMBER_BOUND, le=NUMBER_BOUND,
                                  description="default: the server's")
    n_best: int = Field(1, ge=-NUMBER_BOUND, le=NUMBER_BOUND,
                        description="candidates per text (<= beam_size)")
    length_penalty: float = Field(LENGTH_PENALTY, ge=-NUMBER_BOUND, le=NUMBER_BOUND,
                                  allow_inf_nan=False, description="GNMT alpha")
    max_len_a: float = Field(MAX_LEN_A, ge=-NUMBER_BOUND, le=NUMBER_BOUND, allow_inf_nan=False)
    max_len_b: int = Field(MAX_LEN_B, ge=-NUMBER_BOUND, le=NUMBER_BOUND,
                           description="max output tokens = a * source tokens + b")
    replace_unk: bool = False
    return_scores: bool = True
    return_tokens: bool = False
    return_attention: bool = Field(False, description="attention (target+EOS x source pieces) "
                                   "of the best candidate")
    return_candidate_attention: bool = Field(
        False, description="with n_best > 1: each candidate's attention too (large: the "
        "response's size counts against the server's max_response_bytes)")
    api_key: Text | None = Field(None, max_length=256)
    glossary: GlossaryField
    glossary_id: GlossaryId
    protected: ProtectedField


class CandidateOut(BaseModel):
    translation: str
    confidence: float | None = Field(None, description="0-100 (sentence candidates)")
    score: float | None = None
    normalized_score: float | None = None
    tokens: list[str] | None = None
    attention: list[list[float]] | None = None


class SentenceOut(BaseModel):
    source: str
    translation: str
    confidence: float = Field(description="0-100: how sure the model is that the translation "
                              "is usable (calibrated mean token log-probability)")
    glossary_met: bool | None = Field(None, description="with a glossary that applies to the "
                                      "sentence: whether the translation meets it")
    score: float | None = None
    normalized_score: float | None = None
    source_tokens: list[str] | None = None
    tokens: list[str] | None = None
    attention: list[list[float]] | None = Field(
        None, description="rows: target tokens then EOS; columns: source tokens")
    candidates: list[CandidateOut] | None = None


class TextOut(BaseModel):
    translation: str
    confidence: float = Field(description=CONFIDENCE)
    detected_language: DetectedLanguage | None = Field(
        None, description="with source 'auto': the language the text was detected as")
    score: float | None = Field(None, description="sum of the sentences' log-probabilities")
    candidates: list[CandidateOut] | None = None
    sentences: list[SentenceOut]


class NativeTranslateResponse(BaseModel):
    source: str
    target: str
    translations: list[TextOut]


class Language(BaseModel):
    code: str
    name: str
    targets: list[str]


class GlossaryCreate(BaseModel):
    """POST /glossaries: a named glossary, stored for the caller's API key."""

    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200)
    terms: list[GlossaryTerm] = Field(default_factory=list, max_length=MAX_TERMS)
    avoid: list[TermText] = Field(default_factory=list, max_length=MAX_AVOID)
    api_key: Text | None = Field(None, max_length=256)


class GlossaryOut(BaseModel):
    id: str
    name: str
    terms: list[GlossaryTerm]
    avoid: list[str]
    created: float = Field(description="seconds since the epoch")


class GlossarySummary(BaseModel):
    id: str
    name: str
    terms: int = Field(description="number of terms")
    avoid: int = Field(description="number of avoid phrases")
    created: float


class GlossaryList(BaseModel):
    glossaries: list[GlossarySummary]
