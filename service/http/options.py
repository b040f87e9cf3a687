"""Decoding options of a request, within the server's limits."""

from __future__ import annotations

from typing import Any

from s2s.inference.search import SearchOptions
from s2s.inference.translator import TranslateOptions
from service.errors import (
    InvalidRequest,
)
from service.state import Service


def check_within(name: str, value: float, limit: float) -> None:
    if value > limit:
        raise InvalidRequest(f"{name} {value} is above the server's limit of {limit}")


def make_options(service: Service, beam_size: int | None, n_best: int, replace_unk: bool = False,
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

