"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from s2s.constants import LENGTH_PENALTY, MAX_LEN_A, MAX_LEN_B

# Hard bounds of the schema; each server's own (smaller) limits are checked in service.http.options.
NUMBER_BOUND = 1_000_000


def valid_unicode(text: str) -> str:
    """Refuse strings that are not valid Unicode (lone surrogates, as JSON's \\ud800 gives)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode (lone surrogate)") from None
    return text


Text = Annotated[str, AfterValidator(valid_unicode)]


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


class DetectedLanguage(BaseModel):
    language: str = Field(description="ISO 639-1 code")
    confidence: float = Field(description="0-100")


class LibreTranslateResponse(BaseModel):
    translatedText: str | list[str]  # noqa: N815 (LibreTranslate's name)
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
    beam_size: int | None = Field(None, ge=1, le=NUMBER_BOUND,
                                  description="default: the server's")
    n_best: int = Field(1, ge=1, le=NUMBER_BOUND, description="candidates per text (<= beam_size)")
    length_penalty: float = Field(LENGTH_PENALTY, ge=0, le=NUMBER_BOUND, allow_inf_nan=False,
                                  description="GNMT alpha")
    max_len_a: float = Field(MAX_LEN_A, ge=0, le=NUMBER_BOUND, allow_inf_nan=False)
    max_len_b: int = Field(MAX_LEN_B, ge=1, le=NUMBER_BOUND,
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


class CandidateOut(BaseModel):
    translation: str
    score: float | None = None
    normalized_score: float | None = None
    tokens: list[str] | None = None
    attention: list[list[float]] | None = None


class SentenceOut(BaseModel):
    source: str
    translation: str
    score: float | None = None
    normalized_score: float | None = None
    source_tokens: list[str] | None = None
    tokens: list[str] | None = None
    attention: list[list[float]] | None = Field(
        None, description="rows: target tokens then EOS; columns: source tokens")
    candidates: list[CandidateOut] | None = None


class TextOut(BaseModel):
    translation: str
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
