"""Protected spans: URLs, e-mail addresses, handles, hashtags, emoji, numbers with units,
placeholders, code, translate="no" / class="notranslate" and a request's own strings and
patterns are not seen by the model and come back exactly once, intact, where the attention
alignment places them (service.formats.protect, formats.markup.protected / plain)."""

from __future__ import annotations

import random
import re

import pytest

from s2s.inference.translator import Candidate, Translation
from service.formats.markup import MARK, AlignedText, parse_html
from service.formats.markup.plain import plain_text
from service.formats.markup.protected import protector_of
from service.formats.protect import ProtectedError, Protector, make_protector
from tests.service_fixtures import FakeTranslator, settings_for
from tests.test_service_formats import EchoTranslator, run

PROTECT = protector_of(Protector().spans)
STATUS = ('<p>Hallo <a href="https://example.org/@anna">@anna</a>, wie geht\'s? Zwei Hunde '
          "spielen im Schnee.</p>")
# as Mastodon itself renders mentions, links and hashtags
MASTODON = ('<p>Hallo <span class="h-card"><a href="https://m.example/@anna" class="u-url '
            'mention">@<span>anna</span></a></span>, schau <a href="https://example.org/x/y" '
            'rel="nofollow"><span class="invisible">https://</span><span class="">example.org/'
            'x/y</span><span class="invisible"></span></a> an! <a href="https://m.example/tags/'
            'winter" class="mention hashtag" rel="tag">#<span>winter</span></a> 🐕</p>')


def spans(text: str, protector: Protector | None = None) -> list[tuple[str, str]]:
    return [(text[s.start:s.end], s.kind) for s in (protector or Protector()).spans(text)]


def aligned(text: str, order: list[int] | None = None) -> AlignedText:
    """A translation of text into its own words (in ``order``), aligned one to one."""
    words = text.split()
    order = list(range(len(words))) if order is None else order
    source = [MARK + word for word in words]
    target = [source[index] for index in order]
    attention = [[float(column == row) for column in range(len(source))] for row in order]
    return AlignedText(source, target, attention, " ".join(words[i] for i in order))


# ------------------------------------------------------------------------------- detection


@pytest.mark.parametrize("text, expected", [
    ("Siehe https://example.org/a_(b)?x=1&y=2.", [("https://example.org/a_(b)?x=1&y=2", "url")]),
    ("(www.example.de) und mailto:a@b.de", [("www.example.de", "url"),
                                            ("mailto:a@b.de", "url")]),
    ("Schreib an a.b+c@mail.example.com!", [("a.b+c@mail.example.com", "email")]),
    ("Hallo @anna, @bob@mastodon.social.", [("@anna", "handle"),
                                            ("@bob@mastodon.social", "handle")]),
    ("#Winter #2024 C# &x #schöne_Tage", [("#Winter", "hashtag"), ("#schöne_Tage", "hashtag")]),
    ("Ich 👩🏽‍💻 mit 🇩🇪 und 1️⃣ ❤️ 👍🏿", [("👩🏽\u200d💻", "emoji"), ("🇩🇪", "emoji"),
                                     ("1️⃣", "emoji"), ("❤️", "emoji"), ("👍🏿", "emoji")]),
    ("3,5 km bei 20 °C, 50 % Regen, 1.000 € oder $5, 4GB; 5 m und 50%ige Lösung",
     [("3,5 km", "number"), ("20 °C", "number"), ("50 %", "number"), ("1.000 €", "number"),
      ("$5", "number"), ("4GB", "number")]),
    ("Hallo %s, %1$s %(count)d %.2f {name} {0} {} {{ user }} ${HOME} :blobcat:",
     [("%s", "placeholder"), ("%1$s", "placeholder"), ("%(count)d", "placeholder"),
      ("%.2f", "placeholder"), ("{name}", "placeholder"), ("{0}", "placeholder"),
      ("{}", "placeholder"), ("{{ user }}", "placeholder"), ("${HOME}", "placeholder"),
      (":blobcat:", "placeholder")]),
    ("Tippe `ls -la` ein", [("`ls -la`", "code")]),
    ("Um 15:30 Uhr: Hinweis:wichtig: 5 Hunde, 100 % sicher? 50 % sicher", [
        ("100 %", "number"), ("50 %", "number")]),
    ("Zwei Hunde spielen im Schnee.", []),
])
def test_builtin_kinds(text, expected):
    assert spans(text) == expected


def test_request_strings_and_patterns():
    protector = make_protector(["Schnee", {"regex": r"Hund\w*"}], builtin=False)
    assert spans("Zwei Hunde im Schnee, Schnee!", protector) == [
        ("Hunde", "pattern"), ("Schnee", "literal"), ("Schnee", "literal")]
    assert make_protector([], builtin=False).spans("Hallo @anna") == []


@pytest.mark.parametrize("items, message", [
    ([f"x{n}" for n in range(21)], "max_protected=20"),
    (["x" * 201], "max_protected_chars=200"),
    ([{"regex": "a*"}], "matches the empty string"),
    ([{"regex": "(?:)|x"}], "matches the empty string"),
    ([{"regex": "("}], "not a valid regular expression"),
    ([{"regex": "((((a{20}){20}){20}){20})"}], "multiply to more than"),
    ([""], "is empty"),
])
def test_request_items_are_bounded(items, message):
    with pytest.raises(ProtectedError, match=message.replace("(", r"\(")):
        make_protector(items)


def test_pattern_matching_is_time_bounded():
    protector = make_protector([{"regex": r"(\w*)*\d$"}], budget_s=0.05)
    with pytest.raises(ProtectedError, match="took longer"):
        protector.spans("a" * 3000)


def test_zero_length_matches_are_ignored():
    protector = make_protector([{"regex": r"\b(?=x)"}], builtin=False)
    assert protector.spans("x y x") == []


# ------------------------------------------------------------------------------- markup


def test_mastodon_status_handle_is_not_seen_and_comes_back():
    fragment = parse_html(STATUS, PROTECT)
    assert fragment.segments == ["Hallo, wie geht's? Zwei Hunde spielen im Schnee."]
    assert fragment.render([aligned(text) for text in fragment.segments]) == STATUS


def test_mastodon_markup_mentions_links_hashtags_become_atoms():
    fragment = parse_html(MASTODON, PROTECT)
    assert fragment.segments == ["Hallo, schau an!"]
    assert fragment.render([aligned(text) for text in fragment.segments]) == MASTODON


def test_atoms_follow_the_alignment():
    html = "<p>Ich sehe @anna heute</p>"
    fragment = parse_html(html, PROTECT)
    assert fragment.segments == ["Ich sehe heute"]
    # "heute Ich sehe": the handle sits before the word aligned to what followed it
    assert fragment.render([aligned("Ich sehe heute", [2, 0, 1])]) == (
        "<p>@anna heute Ich sehe</p>")


def test_a_span_that_starts_the_source_starts_the_translation():
    fragment = parse_html("<p>@anna Ich sehe heute #winter</p>", PROTECT)
    assert fragment.segments == ["Ich sehe heute"]
    assert fragment.render([aligned("Ich sehe heute", [2, 0, 1])]) == (
        "<p>@anna heute Ich sehe #winter</p>")
    plan = plain_text("@anna Ich sehe heute", Protector().spans)
    assert plan.render([aligned(plan.model_text, [1, 2, 0])]) == "@anna sehe heute Ich"


def test_a_span_never_goes_into_a_word():
    fragment = parse_html("<p>Drei @anna Leute</p>", PROTECT)
    source = [MARK + "Drei", MARK + "Leute"]
    target = [MARK + "Thre", "e", MARK + "people"]
    attention = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]   # "e" aligned to the word after it
    out = fragment.render([AlignedText(source, target, attention, "Three people")])
    assert out == "<p>@anna Three people</p>"


def test_spacing_around_a_span_on_the_translation():
    # the source had a space after the emoji, the translation ends it with "." glued on
    fragment = parse_html("<p>Ein Hund 🐕 im Gras.</p>", PROTECT)
    source = [MARK + "Ein", MARK + "Hund", MARK + "im", MARK + "Gras", "."]
    target = [MARK + "A", MARK + "dog", "."]
    attention = [[1.0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0], [0, 0, 1.0, 0, 0]]
    out = fragment.render([AlignedText(source, target, attention, "A dog.")])
    assert out == "<p>A dog 🐕.</p>"
    # no space after "@anna" in the source (a comma followed), a word follows it here
    fragment = parse_html("<p>Hallo @anna, wie geht's?</p>", PROTECT)
    source = [MARK + "Hallo", ",", MARK + "wie", MARK + "geht's", "?"]
    target = [MARK + "Hello", MARK + "how", MARK + "are", MARK + "you", "?"]
    attention = [[0, 1.0, 0, 0, 0], [0, 0, 1.0, 0, 0], [0, 0, 0, 1.0, 0], [0, 0, 0, 1.0, 0],
                 [0, 0, 0, 0, 1.0]]
    out = fragment.render([AlignedText(source, target, attention, "Hello how are you?")])
    assert out == "<p>@anna Hello how are you?</p>"


def test_span_crossing_an_element_is_cut_at_its_edge():
    html = "<p><b>Hallo #win</b>ter und so</p>"
    fragment = parse_html(html, PROTECT)
    assert fragment.segments == ["Hallo und so"]
    out = fragment.render([aligned(text) for text in fragment.segments])
    assert out == html


def test_run_of_spans_only_stays_verbatim():
    html = "<p>#tag 🎉 @anna</p><p>Hallo</p>"
    fragment = parse_html(html, PROTECT)
    assert fragment.segments == ["Hallo"]
    assert fragment.render([aligned("Hallo")]) == html


def test_entities_in_a_span_keep_their_spelling():
    html = "<p>Preis &amp; mehr: https://x.org/?a=1&amp;b=2 heute</p>"
    fragment = parse_html(html, PROTECT)
    assert fragment.segments == ["Preis & mehr: heute"]
    assert fragment.render([aligned(text) for text in fragment.segments]) == html


@pytest.mark.parametrize("html, segments", [
    ('<p>Das ist <span translate="no">Eigenname GmbH</span> hier</p>', ["Das ist hier"]),
    ("<p>Das ist <i class='x notranslate'>Eigen<b>name</b></i> hier</p>", ["Das ist hier"]),
    ('<div class="notranslate">Block <b>x</b></div><p>Text</p>', ["Text"]),
    ('<p translate="NO">Nicht <span>das</span></p><p>Text</p>', ["Text"]),
    ('<p>Ein <span translate="yes">Satz</span>.</p>', ["Ein Satz."]),
    ('<p>Ein <span title="translate=no">Satz</span>.</p>', ["Ein Satz."]),
])
def test_untranslated_by_attribute(html, segments):
    fragment = parse_html(html)   # always, with or without span detection
    assert fragment.segments == segments
    assert fragment.render([aligned(text) for text in fragment.segments]) == html


def test_every_span_comes_back_once_whatever_the_alignment():
    rng = random.Random(7)
    words = ["Zwei", "Hunde", "spielen", "heute", "im", "tiefen", "Schnee", "und", "laufen"]
    extras = ["@anna", "@bob@m.example", "#winter", "🐕", "👩🏽\u200d💻", "https://x.org/a?b=1",
              "{name}", "%s", "3,5 km", "a@b.example.com", ":blob:"]
    for _ in range(200):
        chosen = rng.sample(extras, rng.randint(1, 4))
        tokens = words[:rng.randint(2, len(words))]
        for extra in chosen:
            tokens.insert(rng.randint(0, len(tokens)), extra)
        html = "<p>" + " ".join(tokens).replace("&", "&amp;") + "</p>"
        fragment = parse_html(html, PROTECT)
        translations = []
        for text in fragment.segments:
            count = len(text.split())
            translations.append(aligned(text, rng.sample(range(count), count)))
        out = fragment.render(translations)
        for extra in chosen:
            assert out.count(extra.replace("&", "&amp;")) == 1, (html, out)


# ------------------------------------------------------------------------------- plain text


def test_plain_text_lines_and_spans():
    text = "Hallo @anna, wie geht's?\n  Besuche https://x.org.  \n🎉🎉\nNichts hier"
    plan = plain_text(text, Protector().spans)
    assert plan is not None
    assert plan.model_text == "Hallo, wie geht's?\nBesuche.\n\nNichts hier"
    parts = [aligned(line.model) if line.segment else line.model for line in plan.lines]
    assert plan.render(parts) == ("Hallo @anna, wie geht's?\nBesuche https://x.org.\n🎉🎉\n"
                                  "Nichts hier")
    assert plain_text("Nichts hier", Protector().spans) is None


def test_plain_text_is_not_escaped():
    plan = plain_text("A & B <3 {name} x", Protector().spans)
    assert plan.model_text == "A & B <3 x"
    assert plan.render([aligned(plan.model_text)]) == "A & B <3 {name} x"


# ------------------------------------------------------------------------------- service


def fake_setup(tmp_path, translator, **values):
    folder = tmp_path / "models"
    folder.mkdir(exist_ok=True)
    (folder / "de-en.pt").write_text("fake")
    return settings_for(folder, **values), (lambda path: translator)


class UpperTranslator(EchoTranslator):
    """Words upper-cased, aligned one to one (a model that rewrites every word); punctuation
    is a piece of its own, as SentencePiece has it."""

    def result(self, text, options, n_best=None):
        if not text.strip():
            return Translation("", 0.0, [])
        source = [(MARK if match.start() == 0 or text[match.start() - 1] == " " else "")
                  + match.group() for match in re.finditer(r"[\w']+|[^\w\s]", text.strip())]
        tokens = [piece.upper() for piece in source]
        attention = [[float(row == column) for column in range(len(source))]
                     for row in range(len(source) + 1)]
        attention = attention if options.search.return_attention else None
        best = Candidate(text.strip().upper(), -1.0, -0.5, tokens, attention)
        return Translation(best.text, best.score, tokens, source, attention, [best, best])


def post(tmp_path, translator, path, body, **values):
    settings, factory = fake_setup(tmp_path, translator, **values)

    async def scenario(client):
        return await client.post(path, json=body)

    return run(settings, factory, scenario)


def test_service_plain_text_spans_are_kept(tmp_path):
    upper = UpperTranslator()
    texts = ["Hallo @anna, siehe https://example.org/x #winter 🐕",
             "Ohne alles", "Wert: {value} und %s\nZweite Zeile mit :blob:"]
    response = post(tmp_path, upper, "/translate",
                    {"q": texts, "source": "de", "target": "en"})
    assert response.status_code == 200, response.text
    assert response.json()["translatedText"] == [
        "HALLO @anna, SIEHE https://example.org/x #winter 🐕", "OHNE ALLES",
        "WERT: {value} UND %s\nZWEITE ZEILE MIT :blob:"]
    seen = " ".join(upper.translated())
    for span in ("@anna", "https", "#winter", "🐕", "{value}", "%s", ":blob:"):
        assert span not in seen


def test_service_request_protected_and_candidates(tmp_path):
    upper = UpperTranslator()
    body = {"texts": ["Die Firma Acme Corp baut R2D2 Roboter"], "source": "de",
            "target": "en", "n_best": 2, "beam_size": 2,
            "protected": ["Acme Corp", {"regex": r"R\dD\d"}]}
    response = post(tmp_path, upper, "/v1/translate", body)
    assert response.status_code == 200, response.text
    out = response.json()["translations"][0]
    assert out["translation"] == "DIE FIRMA Acme Corp BAUT R2D2 ROBOTER"
    assert [c["translation"] for c in out["candidates"]] == [out["translation"]] * 2
    assert out["sentences"][0]["source"] == "Die Firma baut Roboter"


def test_service_html_status(tmp_path):
    upper = UpperTranslator()
    response = post(tmp_path, upper, "/translate",
                    {"q": STATUS, "source": "de", "target": "en", "format": "html"})
    assert response.status_code == 200, response.text
    assert response.json()["translatedText"] == (
        '<p>HALLO <a href="https://example.org/@anna">@anna</a>, WIE GEHT\'S? ZWEI HUNDE '
        "SPIELEN IM SCHNEE.</p>")


@pytest.mark.parametrize("protected, message", [
    ([{"regex": "x?"}], "matches the empty string"),
    ([f"w{n}" for n in range(3)], "max_protected=2"),
    ([{"regex": r"(\w*)*\d$"}], "took longer"),
])
def test_service_refuses_unusable_patterns(tmp_path, protected, message):
    response = post(tmp_path, FakeTranslator(), "/translate",
                    {"q": "a" * 3000, "source": "de", "target": "en",
                     "protected": protected}, max_protected=2, protected_timeout_s=0.05)
    assert response.status_code == 422, response.text
    assert message in response.text


def test_service_builtin_detection_can_be_turned_off(tmp_path):
    fake = FakeTranslator()
    response = post(tmp_path, fake, "/translate",
                    {"q": "Hallo @anna", "source": "de", "target": "en"},
                    protect_spans=False)
    assert response.status_code == 200, response.text
    assert fake.translated()[-1] == "Hallo @anna"


def test_service_form_field_protected(tmp_path):
    settings, factory = fake_setup(tmp_path, UpperTranslator())

    async def scenario(client):
        return await client.post("/translate", data={
            "q": "Die Acme Corp", "source": "de", "target": "en",
            "protected": '["Acme Corp"]'})

    response = run(settings, factory, scenario)
    assert response.status_code == 200, response.text
    assert response.json()["translatedText"] == "DIE Acme Corp"
