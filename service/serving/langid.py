"""Language identification for ``source: "auto"`` and /detect, through lingua (its models ship
in its wheel; chosen on test2016 de/en/fr and their 1-3 word prefixes, bench/langid_compare.json:
82.7% on single words where py3langid got 46.5% and pycld2 62.4%).

Detection is restricted to the source languages the server has models for, per text. A text
without letters (or a candidate set lingua does not know) has no detection: None.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder


@dataclass(frozen=True)
class Detection:
    language: str          # ISO 639-1 code
    confidence: float      # 0-100, as LibreTranslate reports it


def lingua_language(code: str) -> Language | None:
    try:
        return Language.from_iso_code_639_1(IsoCode639_1.from_str(code.lower()))
    except ValueError:
        return None


class LanguageIdentifier:
    """Detectors per candidate set, built on first use (about 1 s and 120 MiB for de/en/fr)."""

    def __init__(self) -> None:
        self._detectors: dict[frozenset[str], LanguageDetector] = {}
        self._lock = threading.Lock()

    def detect(self, texts: list[str], candidates: Iterable[str]) -> list[list[Detection]]:
        """Per text, the candidate languages best first with confidences (empty when nothing
        could be detected)."""
        known = frozenset(c for c in candidates if lingua_language(c) is not None)
        if len(known) == 1:      # nothing to choose from: every text with letters is that one
            (code,) = known
            return [[Detection(code, 100.0)] if any(ch.isalpha() for ch in text) else []
                    for text in texts]
        if not known:
            return [[] for _ in texts]
        detector = self._detector(known)
        return [self._ranked(detector, text) for text in texts]

    def _detector(self, codes: frozenset[str]) -> LanguageDetector:
        with self._lock:
            if codes not in self._detectors:
                languages = [language for code in sorted(codes)    # all known (see detect)
                             if (language := lingua_language(code)) is not None]
                self._detectors[codes] = (LanguageDetectorBuilder.from_languages(*languages)
                                          .with_preloaded_language_models().build())
            return self._detectors[codes]

    @staticmethod
    def _ranked(detector: LanguageDetector, text: str) -> list[Detection]:
        values = detector.compute_language_confidence_values(text)
        return [Detection(value.language.iso_code_639_1.name.lower(),
                          round(100 * value.value, 2)) for value in values if value.value > 0]
