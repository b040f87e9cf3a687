"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from s2s.constants import LENGTH_PENALTY, MAX_LEN_A, MAX_LEN_B


class LibreTranslateRequest(BaseModel):
    """LibreTranslate's /translate body (JSON or form fields)."""

    model_config = ConfigDict(extra="ignore")

    q: str | list[str] = Field(description="a text or a list of texts")
    source: str = Field(description="source language code, e.g. 'de'")
    target: str = Field(description="target language code, e.g. 'en'")
    format: Literal["text", "html"] = "text"
    alternatives: int = Field(0, ge=0, description="extra n-best translations per text")
    api_key: str | None = None


class LibreTranslateResponse(BaseModel):
    translatedText: str | list[str]  # noqa: N815 (LibreTranslate's name)
    alternatives: list[str] | list[list[str]] | None = None


class NativeTranslateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(description="texts; several sentences or lines per text are fine")
    source: str
    target: str
    beam_size: int | None = Field(None, ge=1, description="default: the server's")
    n_best: int = Field(1, ge=1, description="candidates per text (<= beam_size)")
    length_penalty: float = Field(LENGTH_PENALTY, ge=0, description="GNMT alpha")
    max_len_a: float = Field(MAX_LEN_A, ge=0)
    max_len_b: int = Field(MAX_LEN_B, ge=1, description="max output tokens = a * source tokens + b")
    replace_unk: bool = False
    return_scores: bool = True
    return_tokens: bool = False
    return_attention: bool = Field(False, description="attention (target+EOS x source pieces)")
    api_key: str | None = None


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
