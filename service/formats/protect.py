"""Protected spans: stretches of a text the model must not see or rewrite (URLs, e-mail
addresses, @handles, #hashtags, emoji, numbers with units, placeholders, inline code, and the
strings or patterns a request names). ``Protector.spans`` finds them; formats.markup takes
them out of the segment the model translates and puts them back verbatim where the attention
alignment places them (opaque atoms, like ``<code>``).

Detection (built in, ``Protector(builtin=True)``), in order of preference when matches
overlap (the earliest start wins, then the longest):

    url        ``scheme://...`` (http, https, ftp, mailto:) and ``www.``: up to whitespace or
               ``<>"``; trailing ``.,;:!?'"`` and unbalanced ``)]}`` are not part of it
    email      ``local@domain.tld``
    handle     ``@user`` and ``@user@host.tld`` (not after a letter, digit, ``@`` or ``/``)
    hashtag    ``#`` + word characters with at least one letter (not after a word character
               or ``&``; ``#1`` and ``C#`` are left alone)
    emoji      Unicode Extended_Pictographic with variation selectors, skin tones, ZWJ
               sequences and tag sequences; flags (regional-indicator pairs); keycaps
    number     (conservative) a number with a symbol or multi-letter unit the model might
               mangle: ``3,5 km``, ``20 °C``, ``50 %``, ``1.000 €``, ``€ 30``, ``$5``, ``4 GB``;
               bare numbers and one-letter units (``5 m``) are left to the model
    placeholder ``%s``, ``%d``, ``%1$s``, ``%(name)s``, ``%.2f``, ``{name}``, ``{0}``, ``{}``,
               ``{{name}}``, ``${name}``, ``:shortcode:``
    code       ``\\`inline code\\``` (Markdown backticks, one line)

A request's own (``protected``): literal strings (exact, case-sensitive) and regular
expressions, at most ``max_protected`` of them, each at most ``max_protected_chars``
characters. Patterns are compiled with the ``regex`` package (a dependency of sacrebleu):
one that matches the empty string is refused, and so is one whose counted repetitions
(``{m,n}``) multiply to more than ``MAX_REPEAT_PRODUCT`` (nested counted repeats make
compiling slow: ``((((a{20}){20}){20}){20})`` takes 0.4 s); matching runs with regex's
``timeout``, all of a request's matching within one budget (``protected_timeout_s``), past
which the request is refused. Zero-length matches (lookarounds) are ignored.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import regex

MAX_REPEAT_PRODUCT = 10_000

_TRAIL = ".,;:!?'\""
_PAIRS = {")": "(", "]": "[", "}": "{"}

URL = regex.compile(r"(?:\b(?:https?|ftp)://|\bmailto:|\bwww\.)[^\s<>\"]+", regex.IGNORECASE)
EMAIL = regex.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}\b")
HANDLE = regex.compile(r"(?<![\w@/])@\w+(?:[.-]\w+)*(?:@[\w-]+(?:\.[\w-]+)+)?")
HASHTAG = regex.compile(r"(?<![\w&#])#(?=\w*[^\W\d_])\w+(?:·\w+)*")
_MOD = r"[\uFE0E\uFE0F]?[\U0001F3FB-\U0001F3FF]?"
EMOJI = regex.compile(
    r"\p{Regional_Indicator}{2}"
    r"|[#*0-9]\uFE0F?\u20E3"
    r"|\p{Extended_Pictographic}" + _MOD + r"[\U000E0020-\U000E007F]*"
    r"(?:\u200D\p{Extended_Pictographic}" + _MOD + r")*")
_UNITS = (r"km/h|km²|km2|m²|m³|cm²|km|cm|mm|µm|nm|kg|mg|µg|ml|cl|dl|kWh|MWh|kW|MW|mAh|GHz|MHz|"
          r"kHz|Hz|TB|GB|MB|KB|kB|Gbit|Mbit|kbit|ms|µs|°C|°F|°|%|‰|€|\$|£|¥|CHF|EUR|USD")
NUMBER = regex.compile(
    r"(?<![\w.,])(?:[€$£¥]\s?\d+(?:[.,]\d+)*"
    r"|\d+(?:[.,]\d+)*\s?(?:" + _UNITS + r")(?![\w°]))")
PLACEHOLDER = regex.compile(
    r"\{\{\s*[\w.]+\s*\}\}"
    r"|\$\{[\w.]+\}"
    r"|\{\w*(?:[:!][^{}\s]*)?\}"
    r"|(?<!\d)%(?:\(\w+\)[-+#0]*\d*(?:\.\d+)?[sdifuxXoeEgGcr]"
    r"|(?:\d+\$)?[-+#0]*\d*(?:\.\d+)?[sdifuxXoeEgGc@](?![^\W\d_]))"
    r"|(?<![\w:]):[A-Za-z0-9_+-]*[A-Za-z][A-Za-z0-9_+-]*:(?![\w:])")
CODE = regex.compile(r"`[^`\n]+`")

BUILTIN: tuple[tuple[str, regex.Pattern], ...] = (
    ("url", URL), ("email", EMAIL), ("handle", HANDLE), ("hashtag", HASHTAG),
    ("emoji", EMOJI), ("number", NUMBER), ("placeholder", PLACEHOLDER), ("code", CODE))
_RANK = {kind: rank for rank, (kind, _) in enumerate(BUILTIN)}


class ProtectedError(ValueError):
    """A request's protected strings or patterns that cannot be used (422)."""


@dataclass(frozen=True, slots=True)
class Span:
    """Characters start..end of a text, of a kind (url, ..., literal, pattern)."""

    start: int
    end: int
    kind: str


def _url_end(text: str, start: int, end: int) -> int:
    """A URL's end without trailing punctuation or unbalanced closing brackets."""
    while end > start:
        last = text[end - 1]
        if last in _TRAIL or (last in _PAIRS and text.count(_PAIRS[last], start, end)
                              < text.count(last, start, end)):
            end -= 1
        else:
            break
    return end


_REPEAT = re.compile(r"(?<!\\)\{(\d*)(?:,(\d*))?\}")


def _repeat_product(pattern: str) -> int:
    product = 1
    for low, high in _REPEAT.findall(pattern):
        product *= max(1, int(high or low or 1))
        if product > MAX_REPEAT_PRODUCT:
            break
    return product


@dataclass
class Protector:
    """Finds the protected spans of texts: the built-in kinds (unless ``builtin`` is off),
    literal strings and compiled patterns, all pattern matching within ``budget_s`` seconds
    (from the first text looked at)."""

    builtin: bool = True
    literals: list[str] = field(default_factory=list)
    patterns: list[regex.Pattern] = field(default_factory=list)
    budget_s: float = 0.2
    _deadline: float | None = None

    @property
    def active(self) -> bool:
        return self.builtin or bool(self.literals) or bool(self.patterns)

    def _remaining(self) -> float:
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + self.budget_s
        remaining = self._deadline - now
        if remaining <= 0:
            raise ProtectedError(f"the protected patterns took longer than {self.budget_s:g} s "
                                 "to match (protected_timeout_s); simplify them")
        return remaining

    def spans(self, text: str) -> list[Span]:
        """The protected spans of text: sorted, not overlapping, none empty."""
        if not self.active or not text:
            return []
        found: list[tuple[int, int, int, str]] = []   # start, -length, rank, kind
        for literal in self.literals:
            at = text.find(literal)
            while at >= 0:
                found.append((at, -len(literal), -2, "literal"))
                at = text.find(literal, at + len(literal))
        for pattern in self.patterns:
            try:
                for match in pattern.finditer(text, timeout=self._remaining()):
                    if match.end() > match.start():
                        found.append((match.start(), match.start() - match.end(), -1,
                                      "pattern"))
            except TimeoutError:
                raise ProtectedError(f"the protected pattern {pattern.pattern!r} took longer "
                                     f"than {self.budget_s:g} s to match "
                                     "(protected_timeout_s); simplify it") from None
        if self.builtin:
            for kind, pattern in BUILTIN:
                for match in pattern.finditer(text):
                    start, end = match.span()
                    if kind == "url":
                        end = _url_end(text, start, end)
                    if end > start:
                        found.append((start, start - end, _RANK[kind], kind))
        found.sort()
        spans: list[Span] = []
        cursor = 0
        for start, negative, _, kind in found:
            if start >= cursor:
                spans.append(Span(start, start - negative, kind))
                cursor = start - negative
        return spans


def make_protector(items: Iterable[str | dict] | None, builtin: bool = True,
                   max_items: int = 20, max_chars: int = 200, budget_s: float = 0.2
                   ) -> Protector:
    """A Protector from a request's ``protected`` list: strings are literals, ``{"regex":
    "..."}`` objects are patterns. ProtectedError names what is refused."""
    literals: list[str] = []
    patterns: list[regex.Pattern] = []
    items = list(items or [])
    if len(items) > max_items:
        raise ProtectedError(f"{len(items)} protected strings or patterns; the limit is "
                             f"max_protected={max_items}")
    for number, item in enumerate(items):
        is_pattern = not isinstance(item, str)
        value = _item_text(item)
        if not value:
            raise ProtectedError(f"protected item {number} is empty")
        if len(value) > max_chars:
            raise ProtectedError(f"protected item {number} has {len(value)} characters; the "
                                 f"limit is max_protected_chars={max_chars}")
        if not is_pattern:
            literals.append(value)
            continue
        patterns.append(_compile(number, value))
    return Protector(builtin, literals, patterns, budget_s)


def _item_text(item: str | dict | object) -> str:
    if isinstance(item, str):
        return item
    value = item.get("regex") if isinstance(item, dict) else getattr(item, "regex", None)
    if not isinstance(value, str):
        raise ProtectedError('a protected item is a string or {"regex": "..."}')
    return value


def _compile(number: int, value: str) -> regex.Pattern:
    if _repeat_product(value) > MAX_REPEAT_PRODUCT:
        raise ProtectedError(f"protected pattern {number}: its counted repetitions ({{m,n}}) "
                             f"multiply to more than {MAX_REPEAT_PRODUCT}")
    try:
        pattern = regex.compile(value, regex.VERSION0)
    except (regex.error, ValueError, OverflowError, RecursionError) as error:
        raise ProtectedError(f"protected pattern {number} is not a valid regular expression: "
                             f"{error}") from None
    try:
        empty = pattern.fullmatch("", timeout=0.05) is not None
    except TimeoutError:
        empty = True
    if empty:
        raise ProtectedError(f"protected pattern {number} matches the empty string")
    return pattern


def default_protector(builtin: bool = True) -> Protector | None:
    """The built-in kinds only (None when they are off)."""
    return Protector() if builtin else None


def spans_of(texts: Sequence[str], protector: Protector | None) -> list[list[Span]]:
    return [protector.spans(text) if protector else [] for text in texts]
