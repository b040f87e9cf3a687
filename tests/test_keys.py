"""API keys in SQLite, the shared request-rate limiter, the request decision and s2s-keys."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest

from scripts.keys import main as keys_main
from service.errors import InvalidApiKey, MissingApiKey
from service.serving.admission import KeyCharLimit, RateLimited, check_request, key_identity
from service.stores.keys import KeyLimits, KeyStore, KeyStoreError
from service.stores.rate_limits import RateLimiter

URL_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path) -> KeyStore:
    return KeyStore(tmp_path / "keys.sqlite")


@pytest.fixture
def limiter(tmp_path) -> RateLimiter:
    return RateLimiter(tmp_path / "rate.sqlite")


def test_add_list_remove_round_trip(store):
    key = store.add(requests_per_minute=30, chars_per_request=500, name="alice")
    [record] = store.list()
    assert (record.key, record.name, record.limits) == (key, "alice", KeyLimits(30, 500))
    assert record.created > 0 and store.get(key) == KeyLimits(30, 500)
    assert store.remove(key) is True and store.list() == [] and store.get(key) is None
    assert store.remove(key) is False


def test_duplicate_key_is_refused(store):
    store.add(key="abcdefgh12")
    with pytest.raises(KeyStoreError, match="already exists"):
        store.add(key="abcdefgh12", requests_per_minute=5)
    assert [r.limits for r in store.list()] == [KeyLimits()]


def test_generated_keys_are_unique_and_url_safe(store):
    keys = [store.add() for _ in range(20)]
    assert len(set(keys)) == 20
    assert all(len(key) == 32 and set(key) <= URL_SAFE for key in keys)


def test_keys_and_limits_are_durable(tmp_path):
    path = tmp_path / "deep" / "folder" / "keys.sqlite"
    key = KeyStore(path).add(requests_per_minute=7, name="bob")
    reopened = KeyStore(path)
    assert reopened.get(key) == KeyLimits(7, None)
    assert [(r.key, r.name) for r in reopened.list()] == [(key, "bob")]


def test_the_file_uses_wal_and_records_its_schema_version(store):
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT value FROM keys_meta WHERE name = 'schema_version'"
                          ).fetchone()[0] == 1


@pytest.mark.parametrize("limits", [dict(requests_per_minute=0), dict(requests_per_minute=-3),
                                    dict(chars_per_request=1.5), dict(chars_per_request=True),
                                    dict(requests_per_minute="10")])
def test_invalid_limits_are_refused(store, limits):
    with pytest.raises(KeyStoreError, match="whole number"):
        store.add(**limits)
    assert store.list() == []


@pytest.mark.parametrize("key", ["short", "has space!", "x" * 129, "é" * 10])
def test_invalid_key_text_is_refused(store, key):
    with pytest.raises(KeyStoreError, match="8 to 128"):
        store.add(key=key)


def test_a_corrupt_file_raises_a_clear_error(tmp_path):
    path = tmp_path / "keys.sqlite"
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(KeyStoreError, match="not a SQLite file"):
        KeyStore(path)
    with pytest.raises(KeyStoreError, match="not a SQLite file"):
        RateLimiter(path)


def test_a_newer_schema_version_is_refused(store):
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE keys_meta SET value = 9 WHERE name = 'schema_version'")
    with pytest.raises(KeyStoreError, match="schema version 9"):
        KeyStore(store.path)


def test_a_burst_of_n_then_a_wait_of_60_over_n(limiter):
    allowed = [limiter.hit("a", 6, now=100.0) for _ in range(6)]
    wait = limiter.hit("a", 6, now=100.0)
    assert allowed == [None] * 6
    assert wait == pytest.approx(10.0, abs=1e-3)


def test_allowed_again_after_the_wait(limiter):
    for _ in range(3):
        limiter.hit("a", 3, now=100.0)
    wait = limiter.hit("a", 3, now=105.0)
    assert wait == pytest.approx(15.0, abs=1e-3)
    assert limiter.hit("a", 3, now=105.0 + wait) is None
    assert limiter.hit("a", 3, now=105.0 + wait) == pytest.approx(20.0, abs=1e-3)


def test_identities_are_independent(limiter):
    assert limiter.hit("a", 1, now=100.0) is None
    assert limiter.hit("a", 1, now=100.0) is not None
    assert limiter.hit("b", 1, now=100.0) is None


def test_idle_identities_are_pruned(limiter):
    for identity in ("a", "b", "c"):
        limiter.hit(identity, 60, now=100.0)
    limiter.hit("d", 1, now=100.0)      # its budget is back only after 60 s
    assert limiter.prune(now=102.0) == 3 and limiter.size() == 1


def test_a_clock_that_went_back_does_not_lock_out(limiter):
    for _ in range(2):
        limiter.hit("a", 2, now=10_000.0)
    assert limiter.hit("a", 2, now=100.0) is None


def _hammer(path, start, results, hits) -> None:
    limiter = RateLimiter(path)
    start.wait()
    results.put(sum(limiter.hit("shared", 200, now=1_000.0) is None for _ in range(hits)))


def test_several_processes_share_one_exact_budget(tmp_path):
    """4 processes x 100 requests at one instant against 200 per minute (without one write
    transaction per step, racing processes let through 250-350)."""
    context = multiprocessing.get_context("spawn")
    path = tmp_path / "rate.sqlite"
    RateLimiter(path)
    start, results = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_hammer, args=(path, start, results, 100))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    counts = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert sum(counts) == 200 and all(w.exitcode == 0 for w in workers)


def decide(key, chars=10, *, store=None, limiter=None, settings_keys=(), required=False,
           per_minute=None, now=100.0):
    return check_request(key, chars, settings_keys=list(settings_keys), store=store,
                         limiter=limiter, keys_required=required,
                         default_per_minute=per_minute, client_ip="10.0.0.1", now=now)


def test_a_settings_key_is_accepted_with_the_default_rate(store, limiter):
    caller = decide("settings-key", store=store, limiter=limiter,
                    settings_keys=["settings-key"], required=True, per_minute=5)
    assert caller.source == "settings" and caller.limits == KeyLimits(5, None)
    assert caller.identity == key_identity("settings-key")


def test_a_database_key_is_accepted_with_its_own_limits(store, limiter):
    key = store.add(requests_per_minute=2, chars_per_request=100)
    caller = decide(key, store=store, limiter=limiter, required=True, per_minute=50)
    assert caller.source == "db" and caller.limits == KeyLimits(2, 100)


def test_an_unknown_key_is_refused_even_when_keys_are_optional(store):
    with pytest.raises(InvalidApiKey, match="Invalid API key") as refused:
        decide("not-a-known-key", store=store, settings_keys=["other-key"])
    assert refused.value.status == 403


def test_a_missing_key_is_refused_when_keys_are_required(store):
    with pytest.raises(MissingApiKey) as refused:
        decide(None, store=store, required=True)
    assert refused.value.status == 401


def test_without_key_sources_a_key_is_ignored_and_the_address_limited(limiter):
    caller = decide("whatever-key", limiter=limiter, per_minute=1)
    assert (caller.source, caller.identity) == ("ip", "ip:10.0.0.1")
    with pytest.raises(RateLimited):
        decide(None, limiter=limiter, per_minute=1)


def test_more_characters_than_the_key_allows_are_refused(store, limiter):
    key = store.add(chars_per_request=100)
    assert decide(key, chars=100, store=store, limiter=limiter).source == "db"
    with pytest.raises(KeyCharLimit,
                       match=r"\(101 characters\).*\(chars_per_request=100\)") as refused:
        decide(key, chars=101, store=store, limiter=limiter)
    assert refused.value.status == 413


def test_over_the_rate_is_429_with_slowdown_and_retry_after(store, limiter):
    key = store.add(requests_per_minute=2)
    for _ in range(2):
        decide(key, store=store, limiter=limiter)
    with pytest.raises(RateLimited) as refused:
        decide(key, store=store, limiter=limiter, now=100.5)
    error = refused.value
    assert error.status == 429 and error.message == "Slowdown: 2 per 1 minute"
    assert error.retry_after == pytest.approx(29.5, abs=1e-3)
    assert error.headers == {"Retry-After": "30"}


def test_cli_add_list_remove(tmp_path, capsys):
    db = str(tmp_path / "keys.sqlite")
    assert keys_main(["--db", db, "add", "--name", "carol", "--req-limit", "60",
                      "--char-limit", "5000"]) == 0
    key = capsys.readouterr().out.strip()
    assert keys_main(["--db", db, "list"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:4] == ["key", "name", "req/min", "chars/request"]
    assert row.split()[:4] == [key, "carol", "60", "5000"]
    assert keys_main(["--db", db, "remove", key]) == 0
    assert keys_main(["--db", db, "remove", key]) == 1
    assert "no key" in capsys.readouterr().err


def test_cli_reads_the_database_from_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("S2S_KEYS_DB", str(tmp_path / "env.sqlite"))
    assert keys_main(["add", "--key", "from-the-env"]) == 0
    assert KeyStore(tmp_path / "env.sqlite").get("from-the-env") == KeyLimits()


def test_cli_errors_exit_2_with_a_message(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("S2S_KEYS_DB", raising=False)
    assert keys_main(["list"]) == 2
    db = str(tmp_path / "keys.sqlite")
    assert keys_main(["--db", db, "add", "--req-limit", "0"]) == 2
    assert keys_main(["--db", db, "add", "--key", "dup-key-1"]) == 0
    assert keys_main(["--db", db, "add", "--key", "dup-key-1"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_a_key_removed_by_the_cli_is_refused_within_the_ttl(tmp_path, capsys):
    db, clock = tmp_path / "keys.sqlite", Clock()
    server = KeyStore(db, ttl=2.0, clock=clock)
    keys_main(["--db", str(db), "add", "--key", "short-lived"])
    clock.now += 2.0
    assert decide("short-lived", store=server).source == "db"
    keys_main(["--db", str(db), "remove", "short-lived"])
    clock.now += 1.0
    assert server.get("short-lived") is not None     # still cached
    clock.now += 1.0
    with pytest.raises(InvalidApiKey):
        decide("short-lived", store=server)


def test_a_new_key_never_starts_with_a_dash(monkeypatch):
    """token_urlsafe starts with '-' once in 64 draws; such a key could not be removed by
    `s2s-keys remove KEY` (read as an option): a new key is drawn again."""
    import service.stores.keys as keys

    draws = iter(["-starts-with-a-dash", "AbC_fine-key"])
    monkeypatch.setattr(keys.secrets, "token_urlsafe", lambda size: next(draws))
    assert keys.new_key() == "AbC_fine-key"
