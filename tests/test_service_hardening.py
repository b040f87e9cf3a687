"""What a hostile or careless client can send: every such input gets a 4xx with a JSON
message, bounded work, keys checked first; connections and shutdown stay bounded."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
import time

import httpx
import pytest

from service.http.middleware import BodyLimitMiddleware
from service.http.server import RedactQueryValues
from service.serving.metrics import Metrics
from tests.service_fixtures import FakeTranslator, running_server, serve
from tests.test_service_api import fake_setup, libre

NATIVE = {"texts": ["a"], "source": "de", "target": "en"}


def post_all(settings, factory, requests: list[tuple[str, dict]]) -> list[httpx.Response]:
    async def main():
        async with serve(settings, factory) as client:
            return [await client.post(path, **kwargs) for path, kwargs in requests]

    return asyncio.run(main())


@pytest.mark.parametrize("extra, named", [
    ({"max_len_b": 10**9}, "max_len_b"), ({"max_len_b": 1e30}, "max_len_b"),
    ({"max_len_a": 1e300}, "max_len_a"), ({"max_len_a": 5}, "max_len_a"),
    ({"length_penalty": 1e308}, "length_penalty"), ({"length_penalty": 6}, "length_penalty"),
    ({"n_best": 40, "beam_size": 40}, "n_best"),
    ({"beam_size": 40}, "beam_size 40 is above the server's limit of 16 (max_beam_size)"),
])
def test_numbers_beyond_the_servers_limits_are_422_naming_the_limit(tmp_path, extra, named):
    settings, factory, _ = fake_setup(tmp_path)
    (response,) = post_all(settings, factory, [("/v1/translate", {"json": {**NATIVE, **extra}})])
    assert response.status_code == 422 and named in response.json()["error"]


@pytest.mark.parametrize("literal", [b"Infinity", b"-Infinity", b"NaN"])
def test_non_finite_numbers_are_refused(tmp_path, literal):
    settings, factory, _ = fake_setup(tmp_path)
    body = b'{"texts": ["a"], "source": "de", "target": "en", "length_penalty": ' + literal + b"}"
    (response,) = post_all(settings, factory, [
        ("/v1/translate", {"content": body, "headers": {"content-type": "application/json"}})])
    assert response.status_code == 400 and response.json()["kind"] == "invalid_json"


def test_work_above_the_budget_in_all_is_refused_before_it_starts(tmp_path):
    """The budget bounds the whole request (its waves together), so a request that fits the
    character limits cannot buy unbounded work by splitting it into many sentences."""
    settings, factory, fake = fake_setup(tmp_path, max_request_cost=1000)
    texts = [" ".join(["wort"] * 30)] * 10          # 10 x beam 2 x (45 + 10) = 1100
    (response,) = post_all(settings, factory, [
        ("/v1/translate", {"json": {**NATIVE, "texts": texts}})])
    assert response.status_code == 413
    message = response.json()["error"]
    assert "1100" in message and "max_request_cost=1000" in message
    assert fake.translated() == ["Hello world."]             # only the warm-up sentence


def test_a_sentence_above_the_work_budget_on_its_own_is_refused_before_it_starts(tmp_path):
    settings, factory, fake = fake_setup(tmp_path, max_request_cost=100)
    (response,) = post_all(settings, factory, [
        ("/v1/translate", {"json": {**NATIVE, "texts": [" ".join(["wort"] * 30)]}})])
    assert response.status_code == 413
    assert "max_request_cost=100" in response.json()["error"]
    assert fake.translated() == ["Hello world."]


def test_sentences_beyond_max_request_sentences_run_in_waves(tmp_path):
    settings, factory, fake = fake_setup(tmp_path, max_request_sentences=10)
    (response,) = post_all(settings, factory, [
        ("/translate", {"json": libre("Hallo Welt. " * 11)})])
    assert response.status_code == 200
    assert response.json()["translatedText"] == " ".join(["fake(Hallo Welt.)"] * 11)
    assert all(len(batch) <= 10 for batch in fake.batches)


def test_every_sentence_output_is_capped_at_max_output_tokens(tmp_path):
    settings, factory, fake = fake_setup(tmp_path, max_output_tokens=12)
    post_all(settings, factory, [("/v1/translate", {"json": NATIVE})])
    assert fake.calls[-1][1].search.max_len == 12


@pytest.mark.parametrize("path, content_type", [
    ("/v1/translate", "text/plain"), ("/v1/translate", "application/x-www-form-urlencoded"),
    ("/translate", "text/plain"), ("/translate", None)])
def test_json_endpoints_need_a_json_content_type(tmp_path, path, content_type):
    settings, factory, fake = fake_setup(tmp_path)
    headers = {} if content_type is None else {"content-type": content_type}
    body = b'{"q": "a", "texts": ["a"], "source": "de", "target": "en"}'
    (response,) = post_all(settings, factory, [(path, {"content": body, "headers": headers})])
    assert response.status_code == 415 and response.json()["error"]
    assert fake.translated() == ["Hello world."]      # only the warm-up


def test_a_lone_surrogate_in_an_api_key_is_an_invalid_key(tmp_path):
    settings, factory, _ = fake_setup(tmp_path, api_keys=["k"])
    body = b'{"q": "a", "source": "de", "target": "en", "api_key": "\\ud800"}'
    (response,) = post_all(settings, factory, [
        ("/translate", {"content": body, "headers": {"content-type": "application/json"}})])
    assert response.status_code == 403


def test_the_key_is_checked_before_the_body_is_validated(tmp_path):
    settings, factory, _ = fake_setup(tmp_path, api_keys=["k"])
    responses = post_all(settings, factory, [
        ("/v1/translate", {"json": {"texts": 5, "nonsense": True}}),
        ("/v1/translate", {"json": {"texts": 5}, "headers": {"X-API-Key": "wrong"}}),
        ("/v1/translate", {"json": {"texts": 5}, "headers": {"X-API-Key": "k"}})])
    assert [r.status_code for r in responses] == [401, 403, 422]
    assert "detail" not in responses[0].json()


def test_alternatives_never_repeat_the_translation(tmp_path):
    class SameCandidates(FakeTranslator):
        def result(self, text, options, n_best=None):
            result = super().result(text, options, n_best)
            for candidate in result.alternatives:
                candidate.text = result.text
            return result

    settings, factory, _ = fake_setup(tmp_path, SameCandidates())
    (response,) = post_all(settings, factory,
                           [("/translate", {"json": libre("a", alternatives=3)})])
    assert response.json()["alternatives"] == []
    assert response.json()["translatedText"] == "fake(a)"


def test_metrics_can_require_a_key(tmp_path):
    settings, factory, _ = fake_setup(tmp_path, metrics_api_key="m")

    async def main():
        async with serve(settings, factory) as client:
            return (await client.get("/metrics"),
                    await client.get("/metrics", headers={"X-API-Key": "wrong"}),
                    await client.get("/metrics", headers={"X-API-Key": "m"}))

    missing, wrong, right = asyncio.run(main())
    assert (missing.status_code, missing.json()["kind"]) == (401, "missing_api_key")
    assert (wrong.status_code, wrong.json()["kind"]) == (403, "invalid_api_key")
    assert "s2s_" not in missing.text and "s2s_" not in wrong.text     # nothing leaks
    assert right.status_code == 200 and "s2s_queue_depth" in right.text


def test_the_access_log_never_shows_query_values():
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               ("1.2.3.4:5", "POST", "/translate?api_key=SECRET&x=1", "1.1", 200),
                               None)
    RedactQueryValues().filter(record)
    assert "SECRET" not in record.getMessage()
    assert "/translate?api_key=***&x=***" in record.getMessage()


def asgi_call(middleware, messages, delay: float = 0.0) -> list[dict]:
    sent = []

    async def receive():
        if not messages:
            await asyncio.sleep(3600)
        await asyncio.sleep(delay)
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "headers": [], "method": "POST", "path": "/"}
    asyncio.run(middleware(scope, receive, send))
    return sent


def echo_app(calls):
    async def app(scope, receive, send):
        calls.append(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def test_a_body_that_does_not_arrive_in_time_is_408():
    calls = []
    middleware = BodyLimitMiddleware(echo_app(calls), 1000, Metrics(), timeout_s=0.2)
    sent = asgi_call(middleware, [{"type": "http.request", "body": b"{", "more_body": True}])
    assert sent[0]["status"] == 408 and calls == []


def test_body_bytes_held_across_requests_are_capped():
    calls = []
    middleware = BodyLimitMiddleware(echo_app(calls), 1000, Metrics(), max_buffered=100)
    middleware.buffered = 90                           # other requests hold 90 bytes
    sent = asgi_call(middleware, [{"type": "http.request", "body": b"x" * 20}])
    assert sent[0]["status"] == 503 and calls == []
    assert middleware.buffered == 90


def test_a_slow_header_sender_is_disconnected(tmp_path):
    settings, factory, _ = fake_setup(tmp_path, header_timeout_s=0.3)
    with running_server(settings, factory) as running, socket.create_connection(
            ("127.0.0.1", running.port), timeout=5) as sock:
        sock.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\n")   # and never finishes
        started = time.monotonic()
        assert sock.recv(100) == b""                              # closed by the server
        assert time.monotonic() - started < 3


def test_connections_beyond_the_cap_get_a_json_503(tmp_path):
    settings, factory, _ = fake_setup(tmp_path, max_connections=2)
    with running_server(settings, factory) as running:
        idle = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(2)]
        try:
            response = httpx.get(f"{running.url}/health")
        finally:
            for sock in idle:
                sock.close()
        assert response.status_code == 503 and response.json()["kind"] == "too_many_connections"


def test_after_the_grace_period_waiting_requests_get_503_and_the_server_exits(tmp_path):
    gate = threading.Event()
    settings, factory, fake = fake_setup(tmp_path, FakeTranslator(gate=gate),
                                         shutdown_grace_s=0.5)
    answers = []
    with running_server(settings, factory) as running:
        client = threading.Thread(target=lambda: answers.append(httpx.post(
            f"{running.url}/translate", json=libre("stuck"), timeout=20)))
        client.start()
        while len(fake.calls) < 2:                     # the warm-up, then "stuck"
            time.sleep(0.01)
        started = time.monotonic()
        running.server.handle_exit(signal.SIGTERM, None)
        client.join(10)
        gate.set()
        running.thread.join(15)
        stopped = time.monotonic() - started
    assert answers[0].status_code == 503 and "shut down" in answers[0].json()["error"]
    assert stopped < 0.5 + 5 and not running.thread.is_alive()
