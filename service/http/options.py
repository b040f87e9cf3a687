"""Decoding options of a request, within the server's limits."""

from __future__ import annotations

from typing import Any

from s2s.inference.search import SearchLimitError, SearchOptions
from s2s.inference.translator import TranslateOptions
from service.errors import (
    InvalidRequest,
)
from service.state import Service

# the setting behind each limited option, named in the 422
LIMIT_SETTINGS = {"beam_size": "max_beam_size", "n_best": "max_n_best",
                  "max_len_a": "max_output_ratio", "max_len_b": "max_output_tokens",
                  "length_penalty": "max_length_penalty"}


def make_options(service: Service, beam_size: int | None, n_best: int, replace_unk: bool = False,
                 **search: Any) -> TranslateOptions:
    """Decoding options: valid (SearchOptions) and within the server's limits (its
    SearchLimits), 422 naming the option and the setting otherwise; every sentence's output is
    capped at max_output_tokens. The batch budget is the batcher's, not the request's."""
    settings = service.settings
    beam = beam_size if beam_size is not None else max(settings.default_beam_size, n_best)
    try:
        options = SearchOptions(beam_size=beam, n_best=n_best,
                                max_len=settings.max_output_tokens, **search)
        settings.search_limits().check(options)
    except SearchLimitError as error:
        raise InvalidRequest(f"{error.option} {error.value:g} is above the server's limit of "
                             f"{error.limit:g} ({LIMIT_SETTINGS[error.option]})") from None
    except ValueError as error:
        raise InvalidRequest(str(error)) from None
    return TranslateOptions(search=options, replace_unk=replace_unk)
