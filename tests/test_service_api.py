"""HTTP behaviour of the service: both translate endpoints, every error status, sentence
splitting, readiness, metrics. Fake translators where timing or content must be controlled."""

from __future__ import annotations

import asyncio
import re
import threading
import time

import httpx
import pytest

from s2s.inference.confidence import confidence
from service.settings import Settings
from tests.service_fixtures import (  # noqa: F401 (fixtures)
    FakeTranslator,
    RecordingTranslator,
    models_dir,
    running_server,
    serve,
    settings_for,
    tiny_model_file,
    wait_until,
)

DATE = "the third of june two thousand seven"


def fake_setup(tmp_path, translator: FakeTranslator | None = None, pairs=("de-en",), **values):
    folder = tmp_path / "models"
    folder.mkdir(exist_ok=True)
    for pair in pairs:
        (folder / f"{pair}.pt").write_text("fake")
    fake = translator or FakeTranslator()
    return settings_for(folder, **values), (lambda path: fake), fake


def libre(q, **extra):
    return {"q": q, "source": "de", "target": "en", **extra}


def test_libretranslate_string_and_list(tmp_path):
    settings, factory, _ = fake_setup(tmp_path)

    async def main():
        async with serve(settings, factory) as client:
            one = await client.post("/translate", json=libre("Hallo"))
            many = await client.post("/translate", json=libre(["Hallo", "Welt"]))
            alts = await client.post("/translate", json=libre("Hallo", alternatives=2))
            alts_many = await client.post("/translate", json=libre(["a", "b"], alternatives=1))
            form = await client.post("/translate", data={"q": ["x", "y"], "source": "de",
                                                         "target": "en"})
            return one, many, alts, alts_many, form

    one, many, alts, alts_many, form = asyncio.run(main())
    assert one.status_code == 200
    sure = confidence(-1.0, 1)     # the fake's best candidate: score -1, one token
    assert one.json() == {"translatedText": "fake(Hallo)", "confidence": sure}
    assert many.json() == {"translatedText": ["fake(Hallo)", "fake(Welt)"],
                           "confidence": [sure, sure]}
    assert alts.json() == {"translatedText": "fake(Hallo)", "confidence": sure,
                           "alternatives": ["fake(Hallo)#1", "fake(Hallo)#2"]}
    assert alts_many.json()["alternatives"] == [["fake(a)#1"], ["fake(b)#1"]]
    assert form.status_code == 200
    assert form.json()["translatedText"] == ["fake(x)", "fake(y)"]


def test_empty_and_blank_texts_translate_to_empty(tmp_path):
    settings, factory, fake = fake_setup(tmp_path)

    async def main():
        async with serve(settings, factory) as client:
            return await client.post("/translate", json=libre(["", "   ", "\n", "a"]))

    response = asyncio.run(main())
    assert response.status_code == 200
    assert response.json()["translatedText"] == ["", "", "", "fake(a)"]
    assert fake.translated()[-1:] == ["a"]          # blanks never reach the model


def test_multi_sentence_text_is_split_and_rejoined(tmp_path):
    settings, factory, fake = fake_setup(tmp_path)
    text = "Erster Satz. Zweiter Satz!\nDritte Zeile\n\nNach Leerzeile?"

    async def main():
        async with serve(settings, factory) as client:
            return await client.post("/translate", json=libre(text))

    response = asyncio.run(main())
    assert response.json()["translatedText"] == (
        "fake(Erster Satz.) fake(Zweiter Satz!)\nfake(Dritte Zeile)\n\nfake(Nach Leerzeile?)")
    assert sorted(fake.translated()[-4:]) == sorted(
        ["Erster Satz.", "Zweiter Satz!", "Dritte Zeile", "Nach Leerzeile?"])


def test_each_sentence_is_tokenized_once_and_reaches_the_model_unsplit(tmp_path):
    settings, factory, fake = fake_setup(tmp_path, max_wait_ms=50, max_delay_ms=50)
    texts = ["Eins. Zwei.", "Drei", "Vier! Fünf?"]

    async def main():
        async with serve(settings, factory) as client:
            before = fake.prepared
            response = await client.post("/translate", json=libre(texts))
            return response, fake.prepared - before

    response, prepared = asyncio.run(main())
    assert response.status_code == 200
    assert prepared == 5                       # five sentences, each prepared once
    assert sorted(fake.batches[-1]) == sorted(["Eins.", "Zwei.", "Drei", "Vier!", "Fünf?"])


def test_native_endpoint_with_the_real_model(models_dir):  # noqa: F811
    async def main():
        async with serve(settings_for(models_dir)) as client:
            return await client.post("/v1/translate", json={
                "texts": [DATE, ""], "source": "en", "target": "date", "beam_size": 3,
                "n_best": 2, "return_tokens": True, "return_attention": True})

    response = asyncio.run(main())
    assert response.status_code == 200
    first, empty = response.json()["translations"]
    sentence = first["sentences"][0]
    assert sentence["translation"] == first["translation"] != ""
    assert len(sentence["attention"]) == len(sentence["tokens"]) + 1
    assert all(len(row) == len(sentence["source_tokens"]) for row in sentence["attention"])
    assert all(abs(sum(row) - 1) < 1e-3 for row in sentence["attention"])
    assert len(first["candidates"]) == 2 and len(sentence["candidates"]) == 2
    assert first["score"] == pytest.approx(sentence["score"])
    assert empty == {"translation": "", "score": 0.0, "confidence": 0.0, "candidates": [],
                     "sentences": []}


def test_sentence_translates_the_same_alone_and_in_a_batch(models_dir):  # noqa: F811
    others = ["the first of may nineteen ninety", "the fifth of july two thousand",
              "the tenth of march two thousand twelve", "the second of june"]
    recorder = {}

    def factory(path):
        recorder["translator"] = RecordingTranslator(path)
        return recorder["translator"]

    async def ask(client, text):
        response = await client.post("/v1/translate", json={
            "texts": [text], "source": "en", "target": "date", "return_tokens": True})
        return response.json()["translations"][0]["sentences"][0]

    async def main():
        async with serve(settings_for(models_dir, max_wait_ms=300, max_delay_ms=300),
                         factory) as client:
            # together first: before any batch the batcher waits max_wait_ms for company
            together = await asyncio.gather(*(ask(client, t) for t in [*others, DATE]))
            alone = await ask(client, DATE)
            return alone, together[-1]

    alone, in_batch = asyncio.run(main())
    assert recorder["translator"].batch_sizes[-2:] == [5, 1]   # one batch of five, then alone
    assert in_batch["translation"] == alone["translation"]
    assert in_batch["tokens"] == alone["tokens"]
    assert in_batch["score"] == pytest.approx(alone["score"], abs=1e-4)


def test_concurrent_requests_get_their_own_results(tmp_path):
    settings, factory, fake = fake_setup(tmp_path, FakeTranslator(delay=0.002),
                                         max_wait_ms=2, max_batch_sentences=16)

    async def main():
        async with serve(settings, factory) as client:
            async def one(number):
                texts = [f"r{number} t{k}" for k in range(1 + number % 3)]
                response = await client.post("/translate", json=libre(texts))
                return texts, response.json()["translatedText"]

            return await asyncio.gather(*(one(n) for n in range(40)))

    for texts, translated in asyncio.run(main()):
        assert translated == [f"fake({t})" for t in texts]
    assert max(len(b) for b in fake.batches) > 1


@pytest.mark.parametrize("body, expected", [
    (b"{not json", 400),
    (b'{"q": 5, "source": "de", "target": "en"}', 422),
    (b'{"q": ["a", 3], "source": "de", "target": "en"}', 422),
    (b'{"source": "de", "target": "en"}', 422),
    (b'{"q": "a", "source": "de", "target": "en", "alternatives": -1}', 422),
    (b'{"q": "a", "source": "de", "target": "en", "format": "xml"}', 422),
    (b'{"q": "a", "source": "de", "target": "fr"}', 400),
    (b'[1, 2]', 400),
    (b'[' * 100_000 + b']' * 100_000, 400),
    (b'{"q": "a", "source": "de", "target": "en", "x": NaN}', 400),
    (b'{"q": "\\ud800", "source": "de", "target": "en"}', 422),
    (b'{"q": "a", "source": "\\udfff", "target": "en"}', 422),
    (b'{"q": "a", "source": "de", "target": "en", "alternatives": 1e30}', 422),
])
def test_bad_libretranslate_requests(tmp_path, body, expected):
    settings, factory, _ = fake_setup(tmp_path)

    async def main():
        async with serve(settings, factory) as client:
            bad = await client.post("/translate", content=body,
                                    headers={"content-type": "application/json"})
            good = await client.post("/translate", json=libre("still serving"))
            return bad, good

    bad, good = asyncio.run(main())
    assert bad.status_code == expected
    assert isinstance(bad.json()["error"], str) and bad.json()["error"]
    assert good.status_code == 200


@pytest.mark.parametrize("body, expected, named", [
    ({"texts": "not a list", "source": "de", "target": "en"}, 422, "texts"),
    ({"texts": ["a"], "source": "de", "target": "en", "beam_size": 0}, 422, "beam.size"),
    ({"texts": ["a"], "source": "de", "target": "en", "beam_size": 2, "n_best": 3}, 422,
     "n.best"),
    ({"texts": ["a"], "source": "de", "target": "en", "beam_size": 99}, 422, "beam.size"),
    ({"texts": ["a"], "source": "de", "target": "en", "unknown_option": 1}, 422,
     "unknown_option"),
    ({"texts": ["a"], "source": "xx", "target": "en"}, 400, "'xx'"),
])
def test_bad_native_requests(tmp_path, body, expected, named):
    """Each refusal has its status and a message naming what was wrong."""
    settings, factory, _ = fake_setup(tmp_path)

    async def main():
        async with serve(settings, factory) as client:
            return await client.post("/v1/translate", json=body)

    response = asyncio.run(main())
    assert response.status_code == expected
    assert re.search(named, response.json()["error"]), response.json()


def test_unknown_pair_names_the_available_pairs(tmp_path):
    settings, factory, _ = fake_setup(tmp_path, pairs=("de-en", "en-de"))

    async def main():
        async with serve(settings, factory) as client:
            return await client.post("/translate", json=libre("a", target="fr"))

    response = asyncio.run(main())
    assert response.status_code == 400
    assert "de-en" in response.json()["error"] and "en-de" in response.json()["error"]


@pytest.mark.parametrize("q, reason", [
    (["a"] * 5, "texts in one request; the limit is max_items=4"),
    ("x" * 101, "characters; the limit is max_item_chars=100 per text"),
    (["x" * 100, "y" * 100, "z" * 100], "characters in all; the limit is max_total_chars=250"),
])
def test_too_large_requests(tmp_path, q, reason):
    settings, factory, _ = fake_setup(tmp_path, max_items=4, max_item_chars=100,
                                      max_total_chars=250)

    async def main():
        async with serve(settings, factory) as client:
            return await client.post("/translate", json=libre(q))

    response = asyncio.run(main())
    assert response.status_code == 413 and reason in response.json()["error"]


def test_too_large_body_with_and_without_content_length(tmp_path):
    settings, factory, _ = fake_setup(tmp_path, max_body_bytes=1000)
    big = ('{"q": "' + "x" * 2000 + '", "source": "de", "target": "en"}').encode()

    async def chunks():
        for start in range(0, len(big), 500):
            yield big[start:start + 500]

    async def main():
        async with serve(settings, factory) as client:
            declared = await client.post("/translate", content=big,
                                         headers={"content-type": "application/json"})
            streamed = await client.post("/v1/translate", content=chunks(),
                                         headers={"content-type": "application/json"})
            return declared, streamed

    declared, streamed = asyncio.run(main())
    assert declared.status_code == 413 and "1000 bytes" in declared.json()["error"]
    assert streamed.status_code == 413


def test_sentence_too_long_for_the_model(tmp_path):
    settings, factory, _ = fake_setup(tmp_path, FakeTranslator(max_src_len=5))

    async def main():
        async with serve(settings, factory) as client:
            long_sentence = await client.post("/translate", json=libre("a b c d e f g"))
            split_fits = await client.post("/translate", json=libre("Das ist gut. Wir gehen heim."))
            return long_sentence, split_fits

    long_sentence, split_fits = asyncio.run(main())
    assert long_sentence.status_code == 413
    assert "at most 5" in long_sentence.json()["error"]
    assert split_fits.status_code == 200


@pytest.mark.parametrize("where", ["body", "header", "bearer"])
def test_api_keys(tmp_path, where):
    settings, factory, _ = fake_setup(tmp_path, api_keys=["secret1", "secret2"])

    def ask(client, key):
        body, headers = libre("a"), {}
        if key is not None:
            if where == "body":
                body["api_key"] = key
            elif where == "header":
                headers["X-API-Key"] = key
            else:
                headers["Authorization"] = f"Bearer {key}"
        return client.post("/translate", json=body, headers=headers)

    async def main():
        async with serve(settings, factory) as client:
            return [await ask(client, key) for key in (None, "wrong", "secret2")]

    missing, wrong, right = asyncio.run(main())
    assert missing.status_code == 401 and "API key" in missing.json()["error"]
    assert wrong.status_code == 403
    assert right.status_code == 200


def test_not_ready_until_models_are_loaded_and_warmed_up(tmp_path):
    gate = threading.Event()
    fake = FakeTranslator()

    def slow_factory(path):
        gate.wait(10)
        return fake

    settings, _, _ = fake_setup(tmp_path)

    async def main():
        async with serve(settings, slow_factory, wait_ready=False) as client:
            before = [await client.get("/ready"), await client.get("/health"),
                      await client.post("/translate", json=libre("a"))]
            gate.set()
            await wait_until(lambda: client.app.state.service.registry.ready)
            after = await client.get("/ready")
            return before, after

    (ready, health, translate), after = asyncio.run(main())
    assert ready.status_code == 503 and "Retry-After" in ready.headers
    assert health.status_code == 200
    assert translate.status_code == 503
    assert after.status_code == 200
    assert fake.translated() == [Settings().warmup_text]     # the warm-up sentence


def test_languages_and_health(tmp_path):
    settings, factory, _ = fake_setup(tmp_path, pairs=("de-en", "de-fr", "en-de"))

    async def main():
        async with serve(settings, factory) as client:
            return await client.get("/languages"), await client.get("/health")

    languages, health = asyncio.run(main())
    assert languages.json() == [{"code": "de", "name": "German", "targets": ["en", "fr"]},
                                {"code": "en", "name": "English", "targets": ["de"]}]
    assert health.status_code == 200


def test_metrics_are_exported(tmp_path):
    settings, factory, _ = fake_setup(tmp_path)

    async def main():
        async with serve(settings, factory) as client:
            await client.post("/translate", json=libre(["a b", "c"]))
            await client.post("/translate", json=libre("a", target="fr"))
            return (await client.get("/metrics")).text

    text = asyncio.run(main())
    for name in ('s2s_request_latency_seconds_bucket{endpoint="/translate"',
                 's2s_queue_depth{pair="de-en"}', 's2s_batch_size_count{pair="de-en"}',
                 's2s_batch_tokens_sum{pair="de-en"}',
                 's2s_translated_tokens_total{pair="de-en",side="source"} 3.0',
                 's2s_errors_total{kind="unknown_pair"} 1.0'):
        assert name in text


def test_deadline_gives_504_and_drops_pending_sentences(tmp_path):
    gate = threading.Event()
    gate.set()                              # let the warm-up pass, then block batches
    settings, factory, fake = fake_setup(tmp_path, FakeTranslator(gate=gate),
                                         request_timeout_s=0.3, max_batch_sentences=1)

    async def main():
        async with serve(settings, factory) as client:
            gate.clear()
            fake.calls.clear()
            late = await client.post("/translate", json=libre(["one", "two", "three"]))
            gate.set()
            await asyncio.sleep(0.1)
            after = await client.post("/translate", json=libre("four"))
            return late, after

    late, after = asyncio.run(main())
    assert late.status_code == 504 and "deadline" in late.json()["error"]
    assert after.status_code == 200
    assert fake.translated() == ["one", "four"]       # "two" and "three" were dropped


def test_full_queue_gives_503_with_retry_after(tmp_path):
    gate = threading.Event()
    gate.set()
    settings, factory, fake = fake_setup(tmp_path, FakeTranslator(gate=gate), queue_capacity=2,
                                         max_batch_sentences=2, retry_after_s=3,
                                         caller_queue_share=1.0)   # one caller may fill it

    async def main():
        async with serve(settings, factory) as client:
            gate.clear()
            fake.calls.clear()
            batcher = client.app.state.service.registry.slots["de-en"].batcher
            running = asyncio.create_task(client.post("/translate", json=libre(["a", "b"])))
            await wait_until(lambda: fake.calls)                # in the model, blocked
            queued = asyncio.create_task(client.post("/translate", json=libre(["c", "d"])))
            await wait_until(lambda: batcher.depth == 2)
            refused = await client.post("/translate", json=libre("e"))
            gate.set()
            return refused, await running, await queued

    refused, running, queued = asyncio.run(main())
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "3"
    assert "full" in refused.json()["error"]
    assert running.status_code == queued.status_code == 200


def test_out_of_memory_batches_are_split_not_failed(tmp_path):
    settings, factory, fake = fake_setup(tmp_path, FakeTranslator(oom_above=2), max_wait_ms=50)

    async def main():
        async with serve(settings, factory) as client:
            texts = [f"s{i}" for i in range(7)]
            return texts, await client.post("/translate", json=libre(texts))

    texts, response = asyncio.run(main())
    assert response.status_code == 200
    assert response.json()["translatedText"] == [f"fake({t})" for t in texts]
    assert any(len(b) > 2 for b in fake.batches)      # the big batch was tried first


def test_client_disconnect_drops_pending_work(tmp_path):
    gate = threading.Event()
    gate.set()
    settings, factory, fake = fake_setup(tmp_path, FakeTranslator(gate=gate),
                                         max_batch_sentences=1)
    with running_server(settings, factory) as running:
        url = running.url
        gate.clear()
        fake.calls.clear()
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/translate", json=libre(["one", "two", "three"]), timeout=0.5)
        metrics = ""
        for _ in range(100):   # the server notices the disconnect, then the gate opens
            metrics = httpx.get(f"{url}/metrics").text
            if 's2s_errors_total{kind="client_disconnected"}' in metrics:
                break
            threading.Event().wait(0.02)
        gate.set()
        assert httpx.post(f"{url}/translate", json=libre("four")).status_code == 200
    assert 's2s_errors_total{kind="client_disconnected"}' in metrics
    assert fake.translated() == ["one", "four"]


def test_shutdown_lets_in_flight_requests_finish(tmp_path):
    gate = threading.Event()
    gate.set()
    settings, factory, fake = fake_setup(tmp_path, FakeTranslator(gate=gate),
                                         max_batch_sentences=1)
    answers = []
    with running_server(settings, factory) as running:
        gate.clear()
        fake.calls.clear()
        client = threading.Thread(target=lambda: answers.append(httpx.post(
            f"{running.url}/translate", json=libre(["one", "two"]), timeout=10)))
        client.start()
        deadline = time.monotonic() + 5
        while not fake.calls and time.monotonic() < deadline:
            time.sleep(0.01)
        running.server.should_exit = True          # what uvicorn does on SIGTERM
        time.sleep(0.2)
        assert client.is_alive()                   # still waiting for its translation
        gate.set()
        client.join(10)
        running.thread.join(10)
        assert not running.thread.is_alive()
    assert answers[0].status_code == 200
    assert answers[0].json()["translatedText"] == ["fake(one)", "fake(two)"]
