"""split_sentences: abbreviations, ordinals and dates stay whole, sentences and lines split, the
text comes back, no blank pieces, never raises (hypothesis for the last three)."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s2s.inference.sentences import split_sentences

ABBREVIATIONS = [
    ("de", "Das kostet z. B. 3,50 Euro."), ("de", "Wir brauchen z.B. Mehl und Zucker."),
    ("de", "Es kamen u. a. Vertreter aus Polen."), ("de", "Prof. Dr. Weber hält die Vorlesung."),
    ("de", "Er kauft Brot, Butter usw. im Laden."), ("de", "Der Preis gilt inkl. Versand."),
    ("de", "Die Firma sitzt in der Hauptstr. 5 in Köln."),
    ("en", "We need fruit, e.g. apples and pears."), ("en", "Mr. Smith and Mrs. Brown came."),
    ("en", "Dr. Jones will see you now."), ("en", "He works approx. forty hours a week."),
    ("en", "We packed tents, maps, etc. for the trip."),
    ("fr", "Il a rencontré M. Dupont hier."), ("fr", "Il a rencontré Mme. Durand hier soir."),
    ("fr", "Prenez des fruits, p. ex. des pommes."),
    ("fr", "Le contrat a été signé par M. Bernard."),
]
ORDINALS_AND_DATES = [
    "Er kam am 1. Mai 2020 nach Berlin.", "Sie belegte den 3. Platz im Wettbewerb.",
    "Im 19. Jahrhundert wuchs die Stadt stark.", "Das Treffen findet am 15. März statt.",
    "Er feiert heute seinen 50. Geburtstag.", "Die Konferenz dauert vom 3. bis 5. Juni.",
    "Der 2. Weltkrieg endete 1945 in Europa.", "Sie wohnt im 4. Stock links.",
]
SENTENCES = {
    "de": ["Das Wetter ist heute schön.", "Wir gehen in den Park.", "Kommst du mit?", "Gern!"],
    "en": ["The weather is nice today.", "We are going to the park.", "Are you coming?", "Yes!"],
    "fr": ["Il fait beau aujourd'hui.", "Nous allons au parc.", "Tu viens ?", "Oui !"],
}


@pytest.mark.parametrize("language, sentence", ABBREVIATIONS)
def test_abbreviations_do_not_split(language, sentence):
    assert split_sentences(sentence, language) == [sentence]
    assert split_sentences(f"{sentence} {sentence}", language) == [sentence, sentence]


@pytest.mark.parametrize("sentence", ORDINALS_AND_DATES)
def test_german_ordinals_and_dates_do_not_split(sentence):
    assert split_sentences(sentence, "de") == [sentence]
    assert split_sentences(sentence) == [sentence]  # the default (no language) keeps them too


def test_the_issues_examples():
    assert split_sentences("Er kam am 1. Mai 2020 nach Berlin.", "de") == [
        "Er kam am 1. Mai 2020 nach Berlin."]
    assert split_sentences("Das kostet z. B. 3,50 Euro. Dr. Müller kommt.", "de") == [
        "Das kostet z. B. 3,50 Euro.", "Dr. Müller kommt."]


@pytest.mark.parametrize("language", sorted(SENTENCES))
def test_ordinary_sentences_do_split(language):
    sentences = SENTENCES[language]
    assert split_sentences(" ".join(sentences), language) == sentences
    assert split_sentences(" ".join(sentences)) == sentences


@pytest.mark.parametrize("language", [None, "de", "en", "fr"])
@pytest.mark.parametrize("line_break", ["\n", "\r\n", "\r", "\u2028"])
def test_line_breaks_split(language, line_break):
    text = line_break.join(["Sehr geehrte Damen und Herren,", "vielen Dank", "", "Max"])
    assert split_sentences(text, language) == [
        "Sehr geehrte Damen und Herren,", "vielen Dank", "Max"]
    assert split_sentences("1. Öffnen Sie die Datei.\n2. Speichern Sie.", language) == [
        "1. Öffnen Sie die Datei.", "2. Speichern Sie."]


def test_the_former_contract_still_holds():
    assert split_sentences("One. Two!  Three?\nFour") == ["One.", "Two!", "Three?", "Four"]


def test_a_region_or_unknown_language_is_fine():
    assert split_sentences("Er kam am 1. Mai. Dann ging er.", "de-AT") == [
        "Er kam am 1. Mai.", "Dann ging er."]
    assert split_sentences("Hello there. How are you?", "xx") == ["Hello there.", "How are you?"]


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


texts = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(list("ab Z.!?…\"„“«» 1\n\r\t,:;)-")), max_size=200),
    st.lists(st.sampled_from(["Dr.", "z. B.", "am 1.", "Mai", "M.", "etc.", "Er kam.", "\n",
                              "e.g.", "v2.1.3", "https://a.de/x.y", "...", "„Ja.“", "1.", " "]),
             max_size=30).map(" ".join),
)
languages = st.sampled_from([None, "de", "en", "fr", "xx", "", "de-AT"])


@settings(max_examples=300, deadline=None)
@given(texts, languages)
def test_joining_gives_the_text_back_and_no_piece_is_blank(text, language):
    pieces = split_sentences(text, language)
    assert all(piece.strip() and piece == piece.strip() for piece in pieces)
    assert squash(" ".join(pieces)) == squash(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF,
                                      exclude_categories=())), languages)
def test_never_raises_on_any_string(text, language):
    """Any code point, surrogates and control characters included."""
    pieces = split_sentences(text, language)
    assert squash(" ".join(pieces)) == squash(text)


@pytest.mark.parametrize("text", [
    "", " ", "\x00", "\ud800", "Er kam\udfff. Dann ging er.", "." * 10_000, "a. " * 2_000,
    "1. " * 2_000, "wort " * 40_000, "\n" * 10_000, "…" * 1000,
])
def test_never_raises_and_stays_fast_on_hostile_strings(text):
    started = time.perf_counter()
    pieces = split_sentences(text)
    assert time.perf_counter() - started < 2.0
    assert squash(" ".join(pieces)) == squash(text)


def test_a_5000_character_text_splits_in_milliseconds():
    text = " ".join(["Das kostet z. B. 3,50 Euro. Dr. Müller kam am 1. Mai nach Berlin."] * 80)
    assert len(text) > 5000
    split_sentences(text, "de")
    started = time.perf_counter()
    for _ in range(10):
        assert len(split_sentences(text, "de")) == 160
    assert (time.perf_counter() - started) / 10 < 0.05  # generous: about 1 ms here
