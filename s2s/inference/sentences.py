"""Sentence splitting for texts longer than a model takes in one piece.

The splitting itself is sentencex's (Wikimedia's rule-based segmenter, abbreviation lists for
~300 languages shipped in the wheel, linear time). It was chosen on a de/en/fr test set of 344
cases against pysbd, choppa-srx, SoMaJo, sentence-splitter, syntok, blingfire, nupunkt and segtok
(bench/sentence_split/results.md). On top of it, three things the project needs:

* line breaks always end a sentence (the text's own structure);
* a few merges where sentencex cuts and a translation would suffer: a list marker alone
  (``1.``, ``a)``), an enumeration (``Schritte: 1. Installieren, 2. …``), German ordinals
  (``den 3. Platz``, ``im 19. Jahrhundert``), and abbreviations missing from its lists
  (French ``M.``, ``Mme.``; ``inkl.``, ``approx.``, …);
* it never raises: lone surrogates are masked for the library and put back afterwards, and
  should the library fail anyway the line stays one piece.
"""

from __future__ import annotations

import re

import sentencex

# Without a language: the German rules and merges. On the test set they do best on all three
# languages (333 of 344 against 308 for English's), and they lean to cutting less, the safer
# mistake for translation (a long sentence still translates; "am 1." + "Mai 2020 …" does not).
DEFAULT_LANGUAGE = "de"

LINE_BREAK = re.compile(r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")

# A piece that is a list marker only: "1.", "12.", "a)", "iv." at the start of a line or item.
_MARKER_ONLY = re.compile(r"(?:\d{1,3}|[ivxIVX]{1,5}|[a-zA-Z])[.)]")
# A piece that ends in an enumeration's number: "Schritte: 1." / "Installieren, 2."
_ENUMERATION_END = re.compile(r"[:,;]\s*\d{1,3}\.\Z")
# German writes ordinals as number + period ("am 3. Mai", "den 3. Platz", "im 19. Jahrhundert").
_GERMAN_ORDINAL_END = re.compile(r"(?:^|[\s(])\d{1,3}\.\Z")

# Abbreviations sentencex 1.0.x cuts after (lower case, with their period); "m." is French
# "Monsieur" only: in English and German a single letter + period is an initial or list item.
_EXTRA_ABBREVIATIONS = {
    "de": {"inkl.", "exkl.", "str.", "abs.", "mio.", "mrd.", "bzw.", "ggf.",
           "evtl.", "vgl.", "ca.", "jh.", "hr.", "fr.", "prof.", "dr."},
    "en": {"approx.", "dept.", "fig.", "vol.", "prof.", "dr."},
    "fr": {"m.", "mme.", "mlle.", "mm.", "art.", "prof.", "env.", "av.", "apr.", "p.", "pp.",
           "cf.", "chap.", "dr.", "st.", "ste."},
}
_LAST_WORD = re.compile(r"(?:^|\s)(\S+)$")


def _library_pieces(line: str, language: str) -> list[str]:
    """sentencex on one line; its pieces are consecutive stretches of the line."""
    masked = _SURROGATE.sub("\ufffd", line)  # same length, so offsets stay valid
    try:
        found = list(sentencex.segment(language, masked))
    except Exception:  # noqa: BLE001 - a library failure must not fail a translation
        return [line]
    pieces, start = [], 0
    for piece in found:
        at = masked.find(piece, start)
        if at < 0:  # not a stretch of the line after all: keep the rest whole
            break
        pieces.append(line[start:at + len(piece)])
        start = at + len(piece)
    if start < len(line):
        if pieces:
            pieces[-1] += line[start:]
        else:
            pieces.append(line[start:])
    return pieces


def _joins_next(piece: str, language: str) -> bool:
    """Whether the cut after this (stripped) piece is one sentencex should not have made."""
    if _MARKER_ONLY.fullmatch(piece) or _ENUMERATION_END.search(piece[-8:]):
        return True
    if language == "de" and _GERMAN_ORDINAL_END.search(piece[-6:]):
        return True
    last = _LAST_WORD.search(piece[-30:])
    if not last:
        return False
    word = re.split(r"['’]", last.group(1).lower().lstrip("(«„\"'"))[-1]  # l'art. -> art.
    return word in _EXTRA_ABBREVIATIONS.get(language, ()) or (
        language == "de" and word.endswith("str.") and len(word) > 4)  # "Hauptstr. 5"


def split_sentences(text: str, language: str | None = None) -> list[str]:
    """Split text into sentences: at line breaks, and where sentencex finds a sentence end.

    ``language`` is the text's language code ("de", "en", "fr", …; a region such as "de-AT" is
    cut off); without one the German rules apply (DEFAULT_LANGUAGE). The pieces keep their
    order, are stripped and never blank; joining them with spaces gives the text back (modulo
    spacing). Never raises.
    """
    if not isinstance(text, str):
        text = str(text)
    language = (language or DEFAULT_LANGUAGE).replace("_", "-").split("-")[0].lower() \
        or DEFAULT_LANGUAGE
    sentences: list[str] = []
    for line in LINE_BREAK.split(text):
        if not line.strip():
            continue
        pending = ""  # the line's text since the last sentence end, as written
        for piece in _library_pieces(line, language):
            pending += piece
            if pending.strip() and not _joins_next(pending.strip(), language):
                sentences.append(pending.strip())
                pending = ""
        if pending.strip():
            sentences.append(pending.strip())
    return sentences
