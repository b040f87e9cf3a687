"""Confidence in the HTTP service: every translation carries one, 0-100, per text (both
APIs) and per sentence (/v1/translate); a better-scored translation gets a higher one; a text
of several sentences gets their character-weighted mean; the OpenAPI schema documents it."""

from __future__ import annotations

import asyncio

from s2s.inference.translator import Translation
from tests.service_fixtures import FakeTranslator, serve, settings_for


class ScoredFake(FakeTranslator):
    """Sentences containing "gut" get a high log-probability, others a low one."""

    def result(self, text, options, n_best=None):
        result = super().result(text, options, n_best)
        score = -0.2 if "gut" in text else -12.0
        return Translation(result.text, score, result.tokens, result.source_tokens,
                           alternatives=[type(c)(c.text, score - rank, c.normalized_score,
                                                 c.tokens) for rank, c in
                                         enumerate(result.alternatives)])


def run(tmp_path, requests):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "de-en.pt").write_text("fake")
    fake = ScoredFake()

    async def main():
        async with serve(settings_for(folder), lambda path: fake) as client:
            return [await client.post(url, json=body) for url, body in requests]

    return asyncio.run(main())


def libre(q, **extra):
    return {"q": q, "source": "de", "target": "en", **extra}


def test_confidence_is_present_bounded_and_higher_for_a_better_score(tmp_path):
    single, many, native = run(tmp_path, [
        ("/translate", libre("gut gemacht")),
        ("/translate", libre(["gut gemacht", "schlecht gemacht", ""])),
        ("/v1/translate", {"texts": ["gut gemacht", "schlecht gemacht"], "source": "de",
                           "target": "en", "n_best": 2}),
    ])
    assert isinstance(single.json()["confidence"], float)
    good, bad, blank = many.json()["confidence"]
    assert 0 <= bad < good <= 100 and blank == 0
    assert single.json()["confidence"] == good
    texts = native.json()["translations"]
    assert [t["confidence"] for t in texts] == [good, bad]
    for text in texts:
        sentence, = text["sentences"]
        assert sentence["confidence"] == text["confidence"]
        first, second = sentence["candidates"]
        assert 0 <= second["confidence"] <= first["confidence"] <= 100


def test_a_texts_confidence_is_its_sentences_character_weighted_mean(tmp_path):
    text = "Das ist gut. Das ist leider gar nicht so sehr schlecht."
    native, = run(tmp_path, [("/v1/translate", {"texts": [text], "source": "de",
                                                "target": "en"})])
    answer = native.json()["translations"][0]
    sentences = answer["sentences"]
    assert len(sentences) == 2
    weights = [len(s["source"]) for s in sentences]
    mean = sum(w * s["confidence"] for w, s in zip(weights, sentences)) / sum(weights)
    assert abs(answer["confidence"] - mean) < 0.06
    assert min(s["confidence"] for s in sentences) < answer["confidence"] < max(
        s["confidence"] for s in sentences)


def test_the_openapi_schema_documents_confidence(tmp_path):
    from service.app import create_app

    folder = tmp_path / "models"
    folder.mkdir()
    document = create_app(settings_for(folder)).openapi()
    assert "$defs" not in str(document)   # request bodies' nested models are inlined
    schemas = document["components"]["schemas"]
    assert "confidence" in schemas["LibreTranslateResponse"]["properties"]
    for name in ("TextOut", "SentenceOut"):
        assert "confidence" in schemas[name]["properties"]
        assert "confidence" in schemas[name]["required"]
    assert "0-100" in schemas["LibreTranslateResponse"]["properties"]["confidence"][
        "description"]
