"""Faults answer 503, not 500 (a busy SQLite file, a full disk), within a bounded wait; and web
safety: download URLs never built from the Host header, security headers on the page and the
API, downloads that are never rendered, /suggest closed to cross-site posts and capped per
caller."""

from __future__ import annotations

import asyncio
import errno
import re
import sqlite3
import time

import httpx

from service.http.frontend import STATIC
from service.stores.files import FileStore
from tests.service_fixtures import serve
from tests.test_service_api import fake_setup, libre

SUGGESTION = {"q": "Hallo", "s": "Hello", "source": "de", "target": "en"}


def requests(settings, factory, calls: list[tuple[str, str, dict]]) -> list[httpx.Response]:
    async def main():
        async with serve(settings, factory) as client:
            return [await client.request(method, path, **kwargs)
                    for method, path, kwargs in calls]

    return asyncio.run(main())


def upload(data: bytes = b"Hallo Welt\n", **headers):
    return {"files": {"file": ("brief.txt", data, "text/plain")},
            "data": {"source": "de", "target": "en"}, "headers": headers}


def hold_exclusive(path) -> sqlite3.Connection:
    """Another connection holding the file's write lock (as another process would)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    return db


# ------------------------------------------------------------------------------ faults


def test_a_locked_rate_limit_file_is_503_with_retry_after_within_the_busy_timeout(tmp_path):
    database = tmp_path / "keys.sqlite"
    settings, factory, _ = fake_setup(tmp_path, keys_db=database, sqlite_busy_timeout_s=0.3)

    async def main():
        async with serve(settings, factory) as client:
            holder = hold_exclusive(database)
            try:
                started = time.monotonic()
                response = await client.post("/translate", json=libre("a"))
                elapsed = time.monotonic() - started
            finally:
                holder.rollback()
                holder.close()
            return response, elapsed, await client.post("/translate", json=libre("a"))

    locked, elapsed, after = asyncio.run(main())
    assert locked.status_code == 503 and locked.headers["Retry-After"]
    assert locked.json()["kind"] == "store_unavailable" and "busy" in locked.json()["error"]
    assert elapsed < 2.0
    assert after.status_code == 200


def test_a_locked_suggestions_file_is_503_not_500(tmp_path):
    database = tmp_path / "suggestions.sqlite"
    settings, factory, _ = fake_setup(tmp_path, suggestions_db=database,
                                      sqlite_busy_timeout_s=0.3)

    async def main():
        async with serve(settings, factory) as client:
            holder = hold_exclusive(database)
            try:
                return await client.post("/suggest", json=SUGGESTION)
            finally:
                holder.rollback()
                holder.close()

    response = asyncio.run(main())
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.json()["kind"] == "store_unavailable"


def test_a_full_disk_for_translated_files_is_503(tmp_path, monkeypatch):
    settings, factory, _ = fake_setup(tmp_path, files_dir=tmp_path / "files")

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FileStore, "save", full)
    (response,) = requests(settings, factory, [("POST", "/translate_file", upload())])
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.json()["kind"] == "storage_full" and "full" in response.json()["error"]


# -------------------------------------------------------------------------- web safety


def test_the_download_url_never_comes_from_the_host_header(tmp_path):
    settings, factory, _ = fake_setup(tmp_path, files_dir=tmp_path / "files")
    public = settings.model_copy(update={"public_url": "https://translate.example.org/"})
    (relative,) = requests(settings, factory, [
        ("POST", "/translate_file", upload(Host="evil.example"))])
    (absolute,) = requests(public, factory, [
        ("POST", "/translate_file", upload(Host="evil.example"))])
    assert relative.status_code == 200
    assert re.fullmatch(r"/download_file/[\w-]+\.txt", relative.json()["translatedFileUrl"])
    assert re.fullmatch(r"https://translate\.example\.org/download_file/[\w-]+\.txt",
                        absolute.json()["translatedFileUrl"])


def test_downloads_are_attachments_never_rendered_or_sniffed(tmp_path):
    settings, factory, _ = fake_setup(tmp_path, files_dir=tmp_path / "files")

    async def main():
        async with serve(settings, factory) as client:
            posted = await client.post("/translate_file", **upload(
                b"<p>Hallo</p><script>alert(1)</script>"))
            posted_html = await client.post("/translate_file", files={
                "file": ("a.html", b"<p>Hallo</p>", "text/html")},
                data={"source": "de", "target": "en"})
            return [await client.get(p.json()["translatedFileUrl"])
                    for p in (posted, posted_html)]

    for download in asyncio.run(main()):
        assert download.status_code == 200
        assert download.headers["Content-Disposition"].startswith("attachment")
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        assert download.headers["Content-Security-Policy"] == "sandbox"


def test_the_page_and_the_api_carry_security_headers(tmp_path):
    settings, factory, _ = fake_setup(tmp_path)
    page, api, error = requests(settings, factory, [
        ("GET", "/", {}), ("POST", "/translate", {"json": libre("a")}),
        ("POST", "/translate", {"json": {}})])
    for response in (page, api, error):
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"


def test_the_page_has_no_inline_script_or_handlers():
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert not re.search(r"\son[a-z]+\s*=", page)
    assert not re.search(r"javascript:", page + (STATIC / "app.js").read_text(encoding="utf-8"))


def test_suggest_refuses_cross_site_posts(tmp_path):
    settings, factory, _ = fake_setup(tmp_path, suggestions_db=tmp_path / "s.sqlite")
    foreign, fetched, own, plain = requests(settings, factory, [
        ("POST", "/suggest", {"data": SUGGESTION, "headers": {"Origin": "https://evil.example"}}),
        ("POST", "/suggest", {"data": SUGGESTION, "headers": {"Sec-Fetch-Site": "cross-site"}}),
        ("POST", "/suggest", {"json": SUGGESTION, "headers": {"Origin": "http://service",
                                                              "Sec-Fetch-Site": "same-origin"}}),
        ("POST", "/suggest", {"json": SUGGESTION})])
    for refused in (foreign, fetched):
        assert refused.status_code == 403 and refused.json()["kind"] == "cross_site"
    assert own.status_code == 200 and plain.status_code == 200


def test_suggestions_are_capped_per_caller(tmp_path):
    settings, factory, _ = fake_setup(tmp_path, suggestions_db=tmp_path / "s.sqlite",
                                      max_suggestions_per_caller=2)
    responses = requests(settings, factory, [("POST", "/suggest", {"json": SUGGESTION})] * 3)
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert "max_suggestions_per_caller=2" in responses[2].json()["error"]
