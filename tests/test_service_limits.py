"""Limits that tell the truth: a text within charLimit is never refused for its sentence count
(the server cuts the work into waves), every 413 names its setting and value, the response's
size is bounded before any work starts, source "auto" leaves texts already in the target
language as they are, and keyless callers are rate-limited where keys exist (per address, the
address believed from X-Forwarded-For only when a trusted proxy sent it)."""

from __future__ import annotations

import asyncio

import httpx

from service.http.middleware import forwarded_client, parse_networks
from service.stores.keys import KeyStore
from tests.service_fixtures import fake_file_factory, serve, settings_for
from tests.test_service_api import fake_setup, libre

NATIVE = {"source": "de", "target": "en"}


def post_all(settings, factory, requests: list[tuple[str, dict]]) -> list[httpx.Response]:
    async def main():
        async with serve(settings, factory) as client:
            return [await client.post(path, **kwargs) for path, kwargs in requests]

    return asyncio.run(main())


def test_a_text_within_char_limit_is_never_refused_for_its_sentence_count(tmp_path):
    settings, factory, fake = fake_setup(tmp_path, max_item_chars=5000)   # the defaults
    text = "Hallo Welt. " * 415                    # 4,980 characters, 415 sentences > 256
    assert len(text) <= settings.max_item_chars < len(text) + 30
    (response,) = post_all(settings, factory, [("/translate", {"json": libre(text)})])
    assert response.status_code == 200, response.text
    assert response.json()["translatedText"] == " ".join(["fake(Hallo Welt.)"] * 415)
    assert max(len(batch) for batch in fake.batches) <= settings.max_request_sentences


def test_every_413_names_its_setting_and_value(tmp_path):
    settings, factory, _ = fake_setup(tmp_path, max_items=2, max_item_chars=10,
                                      max_total_chars=15, max_body_bytes=2000,
                                      max_request_cost=50, max_response_bytes=10_000)
    responses = post_all(settings, factory, [
        ("/translate", {"json": libre(["a", "b", "c"])}),
        ("/translate", {"json": libre("x" * 11)}),
        ("/translate", {"json": libre(["x" * 10, "y" * 10])}),
        ("/translate", {"content": b'{"q": "' + b"x" * 3000 + b'"}',
                        "headers": {"content-type": "application/json"}}),
        ("/v1/translate", {"json": {**NATIVE, "texts": ["a"], "beam_size": 8}}),
        ("/v1/translate", {"json": {**NATIVE, "texts": ["a", "b"], "beam_size": 2, "n_best": 2,
                                    "return_attention": True, "max_len_b": 1}})])
    named = ["max_items=2", "max_item_chars=10", "max_total_chars=15", "max_body_bytes=2000",
             "max_request_cost=50"]
    for response, setting in zip(responses, named):
        assert response.status_code == 413 and setting in response.json()["error"]
    assert responses[-1].status_code == 200


def test_a_response_above_max_response_bytes_is_refused_before_any_work(tmp_path):
    settings, factory, fake = fake_setup(tmp_path, max_response_bytes=200_000)
    texts = [" ".join(["wort"] * 20)] * 40         # 40 sentences of 20 pieces, n-best 16
    big = {**NATIVE, "texts": texts, "beam_size": 16, "n_best": 16, "return_attention": True}
    refused, answered = post_all(settings, factory, [
        ("/v1/translate", {"json": {**big, "return_candidate_attention": True}}),
        ("/v1/translate", {"json": {**big, "texts": texts[:2]}})])
    assert refused.status_code == 413
    error = refused.json()["error"]
    assert "max_response_bytes=200000" in error and "40 sentences" in error
    assert "16 candidates" in error
    assert answered.status_code == 200
    assert fake.translated() == ["Hello world."] + texts[:2]   # the refused one never ran


def test_candidate_attention_only_when_asked(tmp_path):
    settings, factory, _ = fake_setup(tmp_path)
    body = {**NATIVE, "texts": ["a b"], "beam_size": 2, "n_best": 2, "return_attention": True}
    plain, asked = post_all(settings, factory, [
        ("/v1/translate", {"json": body}),
        ("/v1/translate", {"json": {**body, "return_candidate_attention": True}})])
    sentence = plain.json()["translations"][0]["sentences"][0]
    assert sentence["attention"] is not None
    assert all(c.get("attention") is None for c in sentence["candidates"])
    asked_sentence = asked.json()["translations"][0]["sentences"][0]
    assert all(c["attention"] for c in asked_sentence["candidates"])


def test_auto_leaves_texts_already_in_the_target_language_unchanged(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "de-en.pt").write_text("fake-de")
    settings = settings_for(folder)
    german = "Ein Mann mit einem roten Hut sitzt auf einer Bank."
    english = "A man in a red hat is sitting on a bench.\n\nTwo  spaces stay."
    (response,) = post_all(settings, fake_file_factory(), [
        ("/translate", {"json": {"q": [german, english], "source": "auto", "target": "en"}})])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["translatedText"] == [f"fake-de({german})", english]
    assert [d["language"] for d in body["detectedLanguage"]] == ["de", "en"]


def test_keyless_callers_are_limited_where_keys_exist(tmp_path):
    database = tmp_path / "keys.sqlite"
    key = KeyStore(database).add(requests_per_minute=30)
    settings, factory, _ = fake_setup(tmp_path, keys_db=database)
    assert settings.keyless_per_minute() == 60
    responses = post_all(settings, factory, [("/translate", {"json": libre("a")})] * 61
                         + [("/translate", {"json": libre("a", api_key=key)})])
    assert all(r.status_code == 200 for r in responses[:60])
    assert responses[60].status_code == 429 and "Retry-After" in responses[60].headers
    assert responses[61].status_code == 200        # the key has its own budget


def test_a_spoofed_forwarded_for_from_an_untrusted_peer_keeps_the_bucket(tmp_path):
    settings, factory, _ = fake_setup(tmp_path, keys_db=tmp_path / "keys.sqlite",
                                      keyless_requests_per_minute=1)
    spoofed = post_all(settings, factory, [
        ("/translate", {"json": libre("a"), "headers": {"X-Forwarded-For": "1.1.1.1"}}),
        ("/translate", {"json": libre("a"), "headers": {"X-Forwarded-For": "2.2.2.2"}})])
    assert [r.status_code for r in spoofed] == [200, 429]
    # the in-process client's peer is 127.0.0.1: trusted as a proxy, its header counts
    trusted = settings.model_copy(update={"forwarded_allow_ips": ["127.0.0.1"]})
    proxied = post_all(trusted, factory, [
        ("/translate", {"json": libre("a"), "headers": {"X-Forwarded-For": "1.1.1.1"}}),
        ("/translate", {"json": libre("a"), "headers": {"X-Forwarded-For": "2.2.2.2"}}),
        ("/translate", {"json": libre("a"), "headers": {"X-Forwarded-For": "2.2.2.2"}})])
    assert [r.status_code for r in proxied] == [200, 200, 429]


def test_the_client_is_the_right_most_untrusted_forwarded_address():
    proxies = parse_networks(["10.0.0.0/8"])
    assert forwarded_client("10.0.0.5", ["6.6.6.6, 1.2.3.4"], proxies) == "1.2.3.4"
    assert forwarded_client("10.0.0.5", ["1.2.3.4, 10.0.0.9"], proxies) == "1.2.3.4"
    assert forwarded_client("10.0.0.5", ["garbage, 10.0.0.9"], proxies) == "10.0.0.9"
    assert forwarded_client("5.5.5.5", ["1.2.3.4"], proxies) == "5.5.5.5"   # not a proxy
