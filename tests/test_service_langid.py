"""Language identification: /detect and source "auto" as LibreTranslate clients use them,
restricted to the languages the server has models for, per text."""

from __future__ import annotations

import asyncio

from tests.service_fixtures import fake_file_factory, serve, settings_for

GERMAN = "Ein Mann mit einem roten Hut sitzt auf einer Bank."
FRENCH = "Un homme avec un chapeau rouge est assis sur un banc."
ENGLISH = "A man in a red hat is sitting on a bench."


def models(tmp_path, pairs: dict[str, str]):
    folder = tmp_path / "models"
    folder.mkdir()
    for pair, name in pairs.items():
        (folder / f"{pair}.pt").write_text(name)
    return settings_for(folder), fake_file_factory()


def run(settings, factory, requests):
    async def main():
        async with serve(settings, factory) as client:
            return [await client.post(path, json=body) for path, body in requests]

    return asyncio.run(main())


def test_detect_ranks_the_served_source_languages(tmp_path):
    settings, factory = models(tmp_path, {"de-en": "fake-de", "fr-en": "fake-fr",
                                          "en-de": "fake-en"})
    one, many = run(settings, factory, [("/detect", {"q": GERMAN}),
                                        ("/detect", {"q": [FRENCH, ENGLISH]})])
    ranked = one.json()
    assert one.status_code == 200 and ranked[0]["language"] == "de"
    assert {d["language"] for d in ranked} <= {"de", "fr", "en"}
    assert ranked == sorted(ranked, key=lambda d: -d["confidence"])
    assert [item[0]["language"] for item in many.json()] == ["fr", "en"]


def test_auto_routes_each_item_to_its_own_pair(tmp_path):
    settings, factory = models(tmp_path, {"de-en": "fake-de", "fr-en": "fake-fr"})
    (response,) = run(settings, factory, [("/translate", {
        "q": [GERMAN, FRENCH, ""], "source": "auto", "target": "en"})])
    body = response.json()
    assert response.status_code == 200
    assert body["translatedText"] == [f"fake-de({GERMAN})", f"fake-fr({FRENCH})", ""]
    assert [d["language"] for d in body["detectedLanguage"]] == ["de", "fr", ""]
    assert body["detectedLanguage"][0]["confidence"] > 50


def test_a_detected_language_without_a_model_to_the_target_is_named(tmp_path):
    settings, factory = models(tmp_path, {"de-en": "fake-de", "fr-de": "fake-fr"})
    (response,) = run(settings, factory, [("/translate", {
        "q": FRENCH, "source": "auto", "target": "en"})])
    message = response.json()["error"]
    assert response.status_code == 400
    assert "'fr'" in message and "de-en" in message and "fr-de" in message


def test_a_single_string_gets_a_single_detected_language(tmp_path):
    settings, factory = models(tmp_path, {"de-en": "fake-de"})
    (response,) = run(settings, factory, [("/translate", {
        "q": GERMAN, "source": "auto", "target": "en"})])
    detected = response.json()["detectedLanguage"]   # a dict (candidates: de, and en the target)
    assert detected["language"] == "de" and detected["confidence"] > 90


def test_the_native_endpoint_reports_the_detected_language(tmp_path):
    settings, factory = models(tmp_path, {"de-en": "fake-de", "fr-en": "fake-fr"})
    (response,) = run(settings, factory, [("/v1/translate", {
        "texts": [FRENCH], "source": "auto", "target": "en"})])
    (text,) = response.json()["translations"]
    assert text["translation"] == f"fake-fr({FRENCH})"
    assert text["detected_language"]["language"] == "fr"


def test_the_response_budget_counts_every_language_of_an_auto_request(tmp_path):
    settings, factory = models(tmp_path, {"de-en": "fake-de", "fr-en": "fake-fr"})
    # beam 2, 10 or 11 words a sentence: at worst (1.5 x words + 10) pieces x 8 bytes each
    settings = settings.model_copy(update={"max_response_bytes": 400})
    texts = [GERMAN] * 2 + [FRENCH] * 2      # each language alone fits, both together do not
    (alone,) = run(settings, factory, [("/translate", {
        "q": texts[:2], "source": "auto", "target": "en"})])
    (both,) = run(settings, factory, [("/translate", {
        "q": texts, "source": "auto", "target": "en"})])
    assert alone.status_code == 200
    assert both.status_code == 413 and "max_response_bytes=400" in both.json()["error"]


def test_the_work_of_an_auto_request_counts_every_language_against_the_budget(tmp_path):
    settings, factory = models(tmp_path, {"de-en": "fake-de", "fr-en": "fake-fr"})
    settings = settings.model_copy(update={"max_request_cost": 150})
    texts = [GERMAN] * 2 + [FRENCH] * 2      # each language alone fits, both together do not
    (both,) = run(settings, factory, [("/translate", {
        "q": texts, "source": "auto", "target": "en"})])
    assert both.status_code == 413
    assert "max_request_cost=150" in both.json()["error"]
