"""Glossaries in the HTTP service: a request's own terms and a stored glossary reach the
translator (a recording fake) and appear in a real model's output; the server's bounds (422);
stored glossaries per API key: create, list, read, delete, and no caller ever sees or uses
another's (404)."""

from __future__ import annotations

import asyncio

from service.settings import Settings
from tests.service_fixtures import (  # noqa: F401 (fixtures)
    FakeTranslator,
    models_dir,
    serve,
    settings_for,
    tiny_model_file,
)

ALICE, BOB = "alice-key-123", "bob-key-4567"
TERMS = [{"source": "Mann", "target": "guy"}]


class GlossaryFake(FakeTranslator):
    """Records the glossary every prepare() of a request gets (not the warm-up's)."""

    def __init__(self):
        super().__init__()
        self.glossaries = []

    def prepare(self, texts, glossary=None):
        if list(texts) != ["Hello world."]:
            self.glossaries.append(glossary)
        return super().prepare(texts)


def fake_setup(tmp_path, **values) -> tuple[Settings, GlossaryFake]:
    folder = tmp_path / "models"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "de-en.pt").write_text("fake")
    fake = GlossaryFake()
    return settings_for(folder, **values), fake


def libre(q, **extra):
    return {"q": q, "source": "de", "target": "en", **extra}


def run(settings, fake, requests):
    """Send (method, url, kwargs) in order; the responses."""
    async def main():
        factory = None if fake is None else (lambda path: fake)
        async with serve(settings, factory) as client:
            return [await client.request(method, url, **kwargs)
                    for method, url, kwargs in requests]

    return asyncio.run(main())


def test_a_requests_glossary_reaches_the_translator(tmp_path):
    settings, fake = fake_setup(tmp_path)
    form = "[{\"source\": \"Haus\", \"target\": \"home\"}]"
    plain, libre_json, form_answer, native = run(settings, fake, [
        ("POST", "/translate", {"json": libre("Der Mann.")}),
        ("POST", "/translate", {"json": libre("Der Mann.", glossary=TERMS)}),
        ("POST", "/translate", {"data": libre("Das Haus.", glossary=form)}),
        ("POST", "/v1/translate", {"json": {"texts": ["Der Mann."], "source": "de",
                                            "target": "en", "glossary": {
                                                "terms": TERMS, "avoid": ["bloke"]}}}),
    ])
    assert [r.status_code for r in (plain, libre_json, form_answer, native)] == [200] * 4
    first, own, formed, both = fake.glossaries
    assert first is None
    assert [(t.source, t.target) for t in own.terms] == [("Mann", "guy")]
    assert [(t.source, t.target) for t in formed.terms] == [("Haus", "home")]
    assert both.avoid == ("bloke",) and len(both.terms) == 1


def test_a_glossary_term_appears_in_a_real_translation(models_dir):  # noqa: F811
    settings = settings_for(models_dir)
    text = "the third of june two thousand seven"
    body = {"q": text, "source": "en", "target": "date",
            "glossary": [{"source": "june", "target": "77"}]}
    native_body = {"texts": [text], "source": "en", "target": "date", "beam_size": 3,
                   "glossary": [{"source": "june", "target": "77"}]}
    libre_answer, native = run(settings, None, [
        ("POST", "/translate", {"json": body}),
        ("POST", "/v1/translate", {"json": native_body})])
    assert libre_answer.status_code == 200, libre_answer.text
    assert "77" in libre_answer.json()["translatedText"]
    sentence = native.json()["translations"][0]["sentences"][0]
    assert "77" in sentence["translation"] and sentence["glossary_met"] is True


def test_glossaries_over_the_servers_bounds_are_422_in_plain_words(tmp_path):
    settings, fake = fake_setup(tmp_path, max_glossary_terms=2, max_glossary_term_chars=10,
                                max_glossary_avoid=1)
    many = [{"source": f"w{i}", "target": "x"} for i in range(3)]
    answers = run(settings, fake, [
        ("POST", "/translate", {"json": libre("a", glossary=many)}),
        ("POST", "/translate", {"json": libre("a", glossary=[{"source": "a" * 11,
                                                              "target": "b"}])}),
        ("POST", "/translate", {"json": libre("a", glossary={"terms": [],
                                                             "avoid": ["x", "y"]})}),
        ("POST", "/translate", {"json": libre("a", glossary=[{"source": "a" * 101,
                                                              "target": "b"}])}),
        ("POST", "/translate", {"json": libre("a", glossary=[{"source": "a"}])}),
        ("POST", "/translate", {"json": libre("a", glossary=TERMS + TERMS)}),
        ("POST", "/translate", {"json": libre("a", glossary=TERMS, glossary_id="g_x")}),
        ("POST", "/translate", {"json": libre("<p>a</p>", glossary=TERMS, format="html")}),
    ])
    assert [a.status_code for a in answers] == [422] * len(answers)
    messages = [a.json()["error"] for a in answers]
    assert "max_glossary_terms=2" in messages[0]
    assert "max_glossary_term_chars=10" in messages[1]
    assert "max_glossary_avoid=1" in messages[2]
    assert "at most 100 characters" in messages[3]
    assert "listed twice" in messages[5]
    assert "not both" in messages[6] and "format text" in messages[7]
    assert all("Traceback" not in m and "function-after" not in m for m in messages)
    assert fake.glossaries == []   # nothing reached the model


def store_setup(tmp_path, **values):
    return fake_setup(tmp_path, api_keys=[ALICE, BOB], glossaries_db=tmp_path / "g.sqlite",
                      **values)


def key(k):
    return {"headers": {"X-API-Key": k}}


def test_stored_glossaries_crud_for_their_owner(tmp_path):
    settings, fake = store_setup(tmp_path)
    created, = run(settings, fake, [("POST", "/glossaries", {
        "json": {"name": "cars", "terms": TERMS, "avoid": ["bloke"]}, **key(ALICE)})])
    assert created.status_code == 201, created.text
    gid = created.json()["id"]
    listed, one, used, deleted, gone, used_gone = run(settings, fake, [
        ("GET", "/glossaries", key(ALICE)),
        ("GET", f"/glossaries/{gid}", key(ALICE)),
        ("POST", "/translate", {"json": libre("Der Mann.", glossary_id=gid), **key(ALICE)}),
        ("DELETE", f"/glossaries/{gid}", key(ALICE)),
        ("GET", f"/glossaries/{gid}", key(ALICE)),
        ("POST", "/translate", {"json": libre("Der Mann.", glossary_id=gid), **key(ALICE)}),
    ])
    assert listed.json() == {"glossaries": [{"id": gid, "name": "cars", "terms": 1,
                                             "avoid": 1, "created": one.json()["created"]}]}
    assert one.json()["terms"] == TERMS and one.json()["avoid"] == ["bloke"]
    assert used.status_code == 200
    assert [(t.source, t.target) for t in fake.glossaries[-1].terms] == [("Mann", "guy")]
    assert deleted.json() == {"deleted": True}
    assert gone.status_code == 404 and used_gone.status_code == 404


def test_a_caller_never_reads_or_uses_anothers_glossary(tmp_path):
    settings, fake = store_setup(tmp_path)
    created, = run(settings, fake, [("POST", "/glossaries", {
        "json": {"name": "mine", "terms": TERMS}, **key(ALICE)})])
    gid = created.json()["id"]
    listed, read, used, native, deleted, still = run(settings, fake, [
        ("GET", "/glossaries", key(BOB)),
        ("GET", f"/glossaries/{gid}", key(BOB)),
        ("POST", "/translate", {"json": libre("Der Mann.", glossary_id=gid), **key(BOB)}),
        ("POST", "/v1/translate", {"json": {"texts": ["a"], "source": "de", "target": "en",
                                            "glossary_id": gid}, **key(BOB)}),
        ("DELETE", f"/glossaries/{gid}", key(BOB)),
        ("GET", f"/glossaries/{gid}", key(ALICE)),
    ])
    assert listed.json() == {"glossaries": []}
    assert [r.status_code for r in (read, used, native, deleted)] == [404] * 4
    assert gid in read.json()["error"] and "Mann" not in read.text
    assert still.status_code == 200   # Bob's delete removed nothing
    assert fake.glossaries == []


def test_storing_needs_a_key_a_store_and_room(tmp_path):
    settings, fake = store_setup(tmp_path, max_glossaries_per_caller=1)
    body = {"name": "g", "terms": TERMS}
    keyless, first, over, bad = run(settings, fake, [
        ("POST", "/glossaries", {"json": body}),
        ("POST", "/glossaries", {"json": body, **key(ALICE)}),
        ("POST", "/glossaries", {"json": body, **key(ALICE)}),
        ("POST", "/glossaries", {"json": {"name": "g", "terms": [{"source": "!",
                                                                  "target": "x"}]},
                                 **key(BOB)}),
    ])
    assert keyless.status_code == 401
    assert first.status_code == 201 and over.status_code == 429
    assert "max_glossaries_per_caller=1" in over.json()["error"]
    assert bad.status_code == 422
    disabled_settings, _ = fake_setup(tmp_path / "off")
    off, = run(disabled_settings, fake, [("POST", "/glossaries", {"json": body})])
    assert off.status_code == 403 and off.json()["kind"] == "glossaries_disabled"


def test_a_reload_prepares_a_queued_sentence_again_with_its_glossary():
    from types import SimpleNamespace

    from s2s.inference.glossary import Glossary
    from service.serving.batcher import current_sources
    from service.serving.pipeline import GlossarySource

    terms = Glossary.from_json(TERMS)
    new = GlossaryFake()
    queued = SimpleNamespace(source=GlossarySource("Der Mann.", (1, 1), None, terms),
                             prepared_by=object())
    plain = SimpleNamespace(source=GlossarySource("Das Haus.", (1, 1)), prepared_by=object())
    current_sources(new, [queued, plain])
    assert new.glossaries == [terms, None]
