"""Glossaries: target terms a translation must use when their source term is in the input, and
target phrases it must avoid, turned into each sentence's lexical constraints
(s2s.inference.constraints) for beam search.

Matching rule: a source term matches a text when it occurs there as whole words, with the
same case: no letter, digit or underscore right before or after it, and any run of whitespace
in the term matching any run of whitespace in the text. "Mann" matches "Der Mann lacht." and
"(Mann)", not "Mannschaft", "Männer" or "mann". Each matching term asks for its target once,
however often the source term occurs; terms with the same target ask once.

Target terms and avoid phrases are encoded alone with the target SentencePiece model, so they
stand for the word-initial pieces of the term as written ("guy" -> "▁guy"), with the same case:
"Guy" at the start of a sentence does not meet "guy". The Translator also keeps a term a whole
word (no piece that continues a word may follow it): "guy" is met by "the guy", "guy." or
"guy's", and search never makes it "guys". Avoiding "bloke" also blocks "blokes".

Bounds: ``MAX_TERMS`` terms, ``MAX_AVOID`` avoid phrases, ``MAX_TERM_CHARS`` characters a term,
``MAX_TERM_PIECES`` target pieces a term, ``MAX_SENTENCE_TERMS`` matching terms a sentence
(beam search needs room for the terms and the rest of the sentence). Going over one raises
GlossaryError; nothing is silently dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s2s.constants import UNK_ID
from s2s.inference.constraints import Constraints
from s2s.tokenizer import Vocab

MAX_TERMS = 1000
MAX_AVOID = 100
MAX_TERM_CHARS = 100
MAX_TERM_PIECES = 16
MAX_SENTENCE_TERMS = 8

_WORD = re.compile(r"\w+")


class GlossaryError(ValueError):
    """A glossary that cannot be used: malformed, over a bound, a target term the target
    vocabulary cannot spell, or a sentence matching too many terms (``index``: its position
    in the input, else None)."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message if index is None else f"input {index}: {message}")
        self.index = index


@dataclass(frozen=True)
class Term:
    """Translate ``source`` (whole words, case-sensitive) with ``target``."""

    source: str
    target: str


def _term_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise GlossaryError(f"{what} must be a non-empty string, got {value!r}")
    text = " ".join(value.split())
    if len(text) > MAX_TERM_CHARS:
        raise GlossaryError(f"{what} {text[:20]!r}... has {len(text)} characters; at most "
                            f"{MAX_TERM_CHARS}")
    return text


def _source_pattern(source: str) -> re.Pattern[str]:
    words = (re.escape(word) for word in source.split(" "))
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)")


@dataclass(frozen=True)
class Glossary:
    """``terms``: (source, target) pairs, sources distinct; ``avoid``: target phrases no
    translation may contain. Texts are stripped and their whitespace runs made single spaces;
    bounds are checked here (GlossaryError)."""

    terms: tuple[Term, ...] = ()
    avoid: tuple[str, ...] = ()
    # derived in __post_init__: each source's pattern, and the terms by their first word
    _patterns: dict[str, re.Pattern[str]] = field(init=False, repr=False, compare=False)
    _by_first_word: dict[str, list[Term]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.terms) > MAX_TERMS or len(self.avoid) > MAX_AVOID:
            raise GlossaryError(f"a glossary holds at most {MAX_TERMS} terms and {MAX_AVOID} "
                                f"avoid phrases, got {len(self.terms)} and {len(self.avoid)}")
        terms = tuple(Term(_term_text(t.source, "a source term"),
                           _term_text(t.target, "a target term")) for t in self.terms)
        sources = [t.source for t in terms]
        if len(set(sources)) < len(sources):
            twice = next(s for s in sources if sources.count(s) > 1)
            raise GlossaryError(f"source term {twice!r} is listed twice")
        for source in sources:
            if not _WORD.search(source):
                raise GlossaryError(f"source term {source!r} has no letter or digit")
        object.__setattr__(self, "terms", terms)
        object.__setattr__(self, "avoid", tuple(_term_text(a, "an avoid phrase")
                                                for a in self.avoid))
        object.__setattr__(self, "_patterns", {t.source: _source_pattern(t.source)
                                               for t in terms})
        first_words: dict[str, list[Term]] = {}
        for term in terms:
            first_word = _WORD.search(term.source)
            assert first_word is not None   # checked above: every source has a word
            first_words.setdefault(first_word.group(), []).append(term)
        object.__setattr__(self, "_by_first_word", first_words)

    def __bool__(self) -> bool:
        return bool(self.terms or self.avoid)

    @classmethod
    def from_json(cls, data: Any) -> Glossary:
        """From parsed JSON: a list of {"source": ..., "target": ...} objects, or an object
        {"terms": [that list], "avoid": [target phrases]} (both keys optional)."""
        if isinstance(data, list):
            data = {"terms": data}
        if not isinstance(data, dict) or set(data) - {"terms", "avoid"}:
            raise GlossaryError('a glossary is a list of {"source", "target"} objects or an '
                                'object with "terms" and "avoid"')
        terms, avoid = data.get("terms", []), data.get("avoid", [])
        if not isinstance(terms, list) or not isinstance(avoid, list):
            raise GlossaryError('"terms" and "avoid" must be lists')
        for term in terms:
            if not isinstance(term, dict) or set(term) != {"source", "target"}:
                raise GlossaryError(f'a term is {{"source": ..., "target": ...}}, got {term!r}')
        return cls(tuple(Term(t["source"], t["target"]) for t in terms), tuple(avoid))

    @classmethod
    def load(cls, path: str | Path) -> Glossary:
        """A glossary from a UTF-8 JSON file (see ``from_json``)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise GlossaryError(f"{path}: not JSON ({error})") from None
        return cls.from_json(data)

    def matches(self, text: str) -> list[Term]:
        """The terms whose source occurs in ``text`` (see the module's rule), in glossary
        order."""
        found = {id(term) for word in set(_WORD.findall(text))
                 for term in self._by_first_word.get(word, ())
                 if self._patterns[term.source].search(text)}
        return [term for term in self.terms if id(term) in found]


def encode_phrases(texts: Sequence[str], vocab: Vocab) -> dict[str, tuple[int, ...]]:
    """Target texts -> their pieces, checked: none unknown to the vocabulary, at most
    ``MAX_TERM_PIECES`` each (GlossaryError otherwise)."""
    unique = list(dict.fromkeys(texts))
    encoded = dict(zip(unique, (tuple(ids) for ids in vocab.encode(unique))))
    for text, ids in encoded.items():
        if not ids or UNK_ID in ids:
            raise GlossaryError(f"target term {text!r} has characters the target vocabulary "
                                "lacks")
        if len(ids) > MAX_TERM_PIECES:
            raise GlossaryError(f"target term {text!r} has {len(ids)} pieces; at most "
                                f"{MAX_TERM_PIECES}")
    return encoded


def check_glossary(glossary: Glossary, vocab: Vocab) -> None:
    """Raise GlossaryError unless every target term and avoid phrase encodes within bounds
    (``sentence_constraints`` checks only the terms its texts match)."""
    encode_phrases([t.target for t in glossary.terms] + list(glossary.avoid), vocab)


def sentence_constraints(glossary: Glossary, texts: Sequence[str], vocab: Vocab
                         ) -> list[Constraints | None]:
    """Each text's constraints under the glossary (None: none): the targets of the terms it
    matches, and every avoid phrase. Raises GlossaryError (with ``index``) for a text matching
    over ``MAX_SENTENCE_TERMS`` terms, or a matched target the vocabulary cannot spell."""
    matched = [glossary.matches(text) for text in texts]
    for index, terms in enumerate(matched):
        targets = {t.target for t in terms}
        if len(targets) > MAX_SENTENCE_TERMS:
            raise GlossaryError(f"the text matches {len(targets)} glossary terms; at most "
                                f"{MAX_SENTENCE_TERMS} (split it)", index)
    encoded = encode_phrases([t.target for terms in matched for t in terms]
                             + list(glossary.avoid), vocab)
    avoid = tuple(dict.fromkeys(encoded[a] for a in glossary.avoid))
    result: list[Constraints | None] = []
    for terms in matched:
        include = tuple(dict.fromkeys(encoded[t.target] for t in terms))
        result.append(Constraints(include, avoid) if include or avoid else None)
    return result
