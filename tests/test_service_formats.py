"""Formats, files and keys over HTTP: ``format: "html"`` keeps the markup, /translate_file and
/download_file (LibreTranslate's file API), and API keys from the key database with their own
rate and character limits. Fake translators everywhere the model does not matter; the tiny real
model only for Mastodon's auto-detected HTML request."""

from __future__ import annotations

import asyncio
import re
import time
from html.parser import HTMLParser

import pytest

from s2s.inference.translator import Candidate, Translation
from service.settings import Settings
from service.stores.keys import KeyStore
from tests.service_fixtures import (  # noqa: F401 (fixtures)
    FakeTranslator,
    models_dir,
    serve,
    settings_for,
    tiny_model_file,
)

MASTODON = '<p>Hallo <a href="https://example.org/@anna">@anna</a>, wie geht\'s?</p>'
NESTED = ('<p>Das ist <b>sehr <i>wirklich</i> wichtig</b> und <span class="x" '
          'title="T">gut</span>.</p>')
CODE_IN_P = "<p>Tippe <code>ls -la</code> und dann Enter</p>"
MALFORMED = "<p><b>x</p>"
DATE = "the third of june two thousand seven"


# -------------------------------------------------------------------------------- helpers


def fake_setup(tmp_path, **values):
    """Settings serving de-en through one FakeTranslator (returned too)."""
    folder = tmp_path / "models"
    folder.mkdir(exist_ok=True)
    (folder / "de-en.pt").write_text("fake")
    fake = FakeTranslator()
    return settings_for(folder, **values), (lambda path: fake), fake


class EchoTranslator(FakeTranslator):
    """Translates a text into itself: word pieces with SentencePiece's word-start mark and a
    diagonal attention, as a perfectly aligned model would give."""

    def result(self, text, options, n_best=None):
        if not text.strip():
            return Translation("", 0.0, [])
        pieces = ["\u2581" + word for word in text.split()]
        attention = [[float(row == column) for column in range(len(pieces))]
                     for row in range(len(pieces) + 1)]
        best = Candidate(text.strip(), -1.0, -0.5, pieces,
                         attention if options.search.return_attention else None)
        return Translation(best.text, best.score, pieces, pieces, best.attention, [best])


def run(settings, factory, scenario):
    """``await scenario(client)`` with the app (lifespan included) running."""

    async def main():
        async with serve(settings, factory) as client:
            return await scenario(client)

    return asyncio.run(main())


class _TagRecorder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[tuple] = []

    def handle_starttag(self, tag, attrs):
        self.events.append(("start", tag, tuple(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.events.append(("empty", tag, tuple(attrs)))

    def handle_endtag(self, tag):
        self.events.append(("end", tag))


def tag_tree(html: str) -> list[tuple]:
    """The start, empty and end tags of ``html`` in order, with their attributes."""
    recorder = _TagRecorder()
    recorder.feed(html)
    recorder.close()
    return recorder.events


def libre(q, **extra):
    return {"q": q, "source": "de", "target": "en", **extra}


def html_request(q, **extra):
    return libre(q, format="html", **extra)


def upload(name: str, data: bytes, **fields):
    return {"files": {"file": (name, data, "application/octet-stream")},
            "data": {"source": "de", "target": "en", **fields}}


async def translate_and_download(client, name: str, data: bytes):
    posted = await client.post("/translate_file", **upload(name, data))
    assert posted.status_code == 200, posted.text
    url = posted.json()["translatedFileUrl"]
    return posted, url, await client.get(url)


def assert_json_error(response, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json()["error"], str) and response.json()["error"]


def keys_setup(tmp_path, **values):
    """Settings with a key database (created empty) and the KeyStore to add keys to."""
    path = tmp_path / "keys.db"
    store = KeyStore(path)
    settings, factory, _ = fake_setup(tmp_path, keys_db=path, **values)
    return settings, factory, store


# -------------------------------------------------------------------------------- HTML


@pytest.mark.parametrize("html", [MASTODON, NESTED, CODE_IN_P, MALFORMED, ""],
                         ids=["mastodon", "nested", "code", "malformed", "empty"])
def test_html_translation_keeps_the_tag_tree(tmp_path, html):
    settings, factory, _ = fake_setup(tmp_path)

    async def scenario(client):
        return await client.post("/translate", json=html_request(html))

    response = run(settings, factory, scenario)
    assert response.status_code == 200, response.text
    translated = response.json()["translatedText"]
    assert isinstance(translated, str)
    assert tag_tree(translated) == tag_tree(html)
    if not html:
        assert translated == ""


def test_an_identity_translation_gives_the_html_back_exactly(tmp_path):
    """With a perfect alignment every tag lands where it was: the output is the input."""
    settings, _, _ = fake_setup(tmp_path)
    echo = EchoTranslator()
    items = [MASTODON, NESTED, CODE_IN_P, MALFORMED, "Hallo &amp; Welt &lt;3",
             "<p>x<br>y</p>", "<ul><li>A <b>B</b> C</li><li><i>D</i></li></ul>"]

    async def scenario(client):
        return await client.post("/translate", json=html_request(items))

    response = run(settings, lambda path: echo, scenario)
    assert response.status_code == 200, response.text
    assert response.json()["translatedText"] == items


def test_html_list_comes_back_as_a_list_in_order(tmp_path):
    settings, factory, _ = fake_setup(tmp_path)
    items = ["<p>eins</p>", "<i>zwei</i>", "<p>drei <b>vier</b></p>"]

    async def scenario(client):
        return await client.post("/translate", json=html_request(items))

    response = run(settings, factory, scenario)
    assert response.status_code == 200, response.text
    translated = response.json()["translatedText"]
    assert isinstance(translated, list) and len(translated) == len(items)
    for item, out, word in zip(items, translated, ["eins", "zwei", "drei"]):
        assert word in out
        assert tag_tree(out) == tag_tree(item)
    assert "fake(" in translated[0]          # translated, not echoed


def test_code_pre_and_script_content_is_not_translated(tmp_path):
    settings, factory, fake = fake_setup(tmp_path)
    code = "<code>rm -rf ./build &amp;&amp; make</code>"
    pre = "<pre>  keep   this\n    exactly as it is </pre>"
    script = '<script>if (a < b && c > d) { go("x"); }</script>'
    html = f"<p>Bitte {code} ausfuehren</p>{pre}<div>Text {script} hier</div>"

    async def scenario(client):
        return await client.post("/translate", json=html_request(html))

    response = run(settings, factory, scenario)
    assert response.status_code == 200, response.text
    translated = response.json()["translatedText"]
    for opaque in (code, pre, script):
        assert opaque in translated
    sent = " ".join(fake.translated())
    assert "fake(" in translated and "Bitte" in sent
    assert "rm -rf" not in sent and "keep" not in sent and "go(" not in sent


def test_mastodon_auto_html_request_gets_a_detected_language_per_item(models_dir):  # noqa: F811
    settings = settings_for(models_dir)
    items = [f"<p>{DATE}</p>", '<p>the <b>first</b> of <a href="x">may</a> nineteen ninety</p>',
             ""]

    async def scenario(client):
        return await client.post("/translate", json={
            "q": items, "source": "auto", "target": "date", "format": "html"})

    response = run(settings, None, scenario)
    assert response.status_code == 200, response.text
    body = response.json()
    translated = body["translatedText"]
    assert isinstance(translated, list) and len(translated) == len(items)
    assert all(isinstance(text, str) for text in translated) and translated[2] == ""
    assert [tag_tree(text) for text in translated] == [tag_tree(item) for item in items]
    detected = body["detectedLanguage"]
    assert isinstance(detected, list) and len(detected) == len(items)
    for item in detected:
        assert set(item) == {"language", "confidence"}
        assert isinstance(item["confidence"], (int, float))
    for item in detected[:2]:
        assert item["language"] == "en" and 0 < item["confidence"] <= 100
    assert detected[2] == {"language": "", "confidence": 0}      # a blank item: none


# -------------------------------------------------------------------------------- files


def files_setup(tmp_path, **values):
    return fake_setup(tmp_path, files_dir=tmp_path / "files", **values)


def test_a_txt_file_is_translated_and_downloadable(tmp_path):
    settings, factory, _ = files_setup(tmp_path)
    data = b"Erste Zeile\n\nZweite Zeile\n   \nDritte Zeile.\n\n"

    async def scenario(client):
        return await translate_and_download(client, "notes.txt", data)

    posted, url, download = run(settings, factory, scenario)
    assert set(posted.json()) == {"translatedFileUrl"}
    assert re.search(r"/download_file/[^/]+\.txt$", url)
    assert download.status_code == 200
    disposition = download.headers["content-disposition"]
    assert re.fullmatch(r'attachment; filename="[A-Za-z0-9._-]+\.txt"', disposition)
    out_lines = download.content.decode().split("\n")
    in_lines = data.decode().split("\n")
    assert len(out_lines) == len(in_lines)
    assert [not line.strip() for line in out_lines] == [not line.strip() for line in in_lines]
    assert out_lines[0] == "fake(Erste Zeile)"


SRT = (b"1\r\n00:00:01,000 --> 00:00:02,500\r\nHallo Welt\r\n\r\n"
       b"2\r\n00:00:03,000 --> 00:00:04,000\r\nZweite Zeile\r\nmit zwei Zeilen\r\n\r\n"
       b"  17 \r\n00:01:05.5 -->  00:01:07,250 X1:40 Y1:60\r\nLetzter Satz.\r\n")
SRT_HEADER = re.compile(rb"^(?:[ \t]*\d+[ \t]*|.*-->.*)\r?$", re.MULTILINE)


def test_a_file_with_more_lines_than_a_request_allows_is_translated_in_chunks(tmp_path):
    settings, factory, fake = files_setup(tmp_path, max_items=2)
    lines = ["eins", "zwei", "drei", "vier", "fuenf"]

    async def scenario(client):
        return await translate_and_download(client, "long.txt",
                                            "\n".join(lines).encode() + b"\n")

    _, _, download = run(settings, factory, scenario)
    assert download.status_code == 200
    assert download.content.decode().splitlines() == [f"fake({line})" for line in lines]
    assert fake.batches and all(len(batch) <= 2 for batch in fake.batches)
    assert fake.translated()[-len(lines):] == lines          # after the warm-up sentence


def test_srt_index_and_timing_lines_are_kept_byte_for_byte(tmp_path):
    settings, factory, _ = files_setup(tmp_path)

    async def scenario(client):
        return await translate_and_download(client, "film.srt", SRT)

    _, _, download = run(settings, factory, scenario)
    assert download.status_code == 200
    out = download.content
    assert SRT_HEADER.findall(out) == SRT_HEADER.findall(SRT)
    assert len(SRT_HEADER.findall(SRT)) == 6
    for header in (b"1\r\n00:00:01,000 --> 00:00:02,500\r\n",
                   b"\r\n\r\n2\r\n00:00:03,000 --> 00:00:04,000\r\n",
                   b"\r\n\r\n  17 \r\n00:01:05.5 -->  00:01:07,250 X1:40 Y1:60\r\n"):
        assert header in out
    assert b"fake(Hallo Welt)" in out


def test_an_html_file_keeps_its_tag_tree(tmp_path):
    settings, factory, _ = files_setup(tmp_path)
    html = ('<!DOCTYPE html>\n<html><head><title>Titel</title></head>\n<body><h1>Kopf</h1>\n'
            + NESTED + '\n<ul><li>eins</li><li><a href="/x">zwei</a></li></ul>\n'
            + CODE_IN_P + "\n</body></html>\n")

    async def scenario(client):
        return await translate_and_download(client, "page.html", html.encode())

    _, _, download = run(settings, factory, scenario)
    assert download.status_code == 200
    assert download.headers["content-disposition"].endswith('.html"')
    out = download.content.decode()
    assert tag_tree(out) == tag_tree(html)
    assert "fake(" in out


def test_bad_uploads_are_refused_with_json_errors(tmp_path):
    settings, factory, _ = files_setup(tmp_path, max_file_bytes=200)

    async def scenario(client):
        return [
            await client.post("/translate_file", **upload("table.docx", b"Hallo")),
            await client.post("/translate_file", **upload("latin1.txt", b"caf\xe9 au lait\n")),
            await client.post("/translate_file", **upload("big.txt", b"Hallo Welt\n" * 30)),
            await client.post("/translate_file", files={"document": ("a.txt", b"x")},
                              data={"source": "de", "target": "en"}),
            await client.post("/translate_file", data={"source": "de", "target": "en"}),
        ]

    extension, encoding, too_big, wrong_field, no_file = run(settings, factory, scenario)
    assert_json_error(extension, 400)
    assert ".txt" in extension.json()["error"]
    assert_json_error(encoding, 400)
    assert_json_error(too_big, 413)
    assert_json_error(wrong_field, 422)
    assert_json_error(no_file, 422)


def test_file_translation_disabled_is_403_on_both_endpoints(tmp_path):
    settings, factory, _ = fake_setup(tmp_path)

    async def scenario(client):
        return (await client.post("/translate_file", **upload("a.txt", b"Hallo\n")),
                await client.get("/download_file/" + "A" * 22 + ".txt"))

    posted, download = run(settings, factory, scenario)
    assert_json_error(posted, 403)
    assert_json_error(download, 403)


@pytest.mark.parametrize("name", [
    "A" * 22 + ".txt", "..%2F..%2Fetc%2Fpasswd", "a.txt", "%2E%2E",
    "..%5C..%5Cwindows%5Cwin.ini", "A" * 22 + ".txt.name", ".lock", "%00.txt",
])
def test_download_of_an_unknown_or_invalid_name_is_404(tmp_path, name):
    settings, factory, _ = files_setup(tmp_path)

    async def scenario(client):
        return await client.get("/download_file/" + name)

    assert_json_error(run(settings, factory, scenario), 404)


def test_the_sidecar_and_lock_files_of_a_stored_file_are_not_downloadable(tmp_path):
    settings, factory, _ = files_setup(tmp_path)

    async def scenario(client):
        _, url, download = await translate_and_download(client, "a.txt", b"Hallo\n")
        name = url.rsplit("/", 1)[1]
        return download, [await client.get(f"/download_file/{other}")
                          for other in (name + ".name", ".lock", name.upper())]

    download, others = run(settings, factory, scenario)
    assert download.status_code == 200
    for response in others:
        assert_json_error(response, 404)


def test_an_expired_file_is_404(tmp_path):
    settings, factory, _ = files_setup(tmp_path, file_ttl_s=0.5)

    async def scenario(client):
        posted = await client.post("/translate_file", **upload("a.txt", b"Hallo\n"))
        assert posted.status_code == 200, posted.text
        await asyncio.sleep(0.7)
        return await client.get(posted.json()["translatedFileUrl"])

    assert_json_error(run(settings, factory, scenario), 404)


def test_frontend_settings_report_file_translation(tmp_path):
    with_files, factory, _ = files_setup(tmp_path)
    without = with_files.model_copy(update={"files_dir": None})

    async def scenario(client):
        return (await client.get("/frontend/settings")).json()

    enabled = run(with_files, factory, scenario)
    disabled = run(without, factory, scenario)
    assert enabled["filesTranslation"] is True
    assert {".txt", ".html", ".srt"} <= set(enabled["supportedFilesFormat"])
    assert disabled["filesTranslation"] is False and disabled["supportedFilesFormat"] == []
    assert enabled["keyRequired"] is False


def test_frontend_settings_report_a_required_key(tmp_path):
    settings, factory, _ = keys_setup(tmp_path, require_api_key=True)

    async def scenario(client):
        return (await client.get("/frontend/settings")).json()

    assert run(settings, factory, scenario)["keyRequired"] is True


def test_file_translation_checks_the_key_and_its_char_limit(tmp_path):
    settings, factory, store = keys_setup(tmp_path, require_api_key=True,
                                          files_dir=tmp_path / "files")
    small = store.add(chars_per_request=5)
    roomy = store.add()

    async def scenario(client):
        data = b"Hallo Welt\n"
        return (await client.post("/translate_file", **upload("a.txt", data)),
                await client.post("/translate_file", **upload("a.txt", data, api_key=small)),
                await client.post("/translate_file", **upload("a.txt", data, api_key=roomy)))

    missing, over, ok = run(settings, factory, scenario)
    assert_json_error(missing, 401)
    assert_json_error(over, 413)
    assert ok.status_code == 200 and "translatedFileUrl" in ok.json()


# -------------------------------------------------------------------------------- keys


def test_a_key_over_its_rate_gets_429_and_other_keys_are_unaffected(tmp_path):
    settings, factory, store = keys_setup(tmp_path)
    limited = store.add(requests_per_minute=2, name="limited")
    other = store.add(requests_per_minute=2, name="other")

    async def scenario(client):
        first = [await client.post("/translate", json=libre("Hallo", api_key=limited))
                 for _ in range(3)]
        second = [await client.post("/translate", json=libre("Hallo"),
                                    headers={"X-API-Key": other}) for _ in range(2)]
        return first, second

    (one, two, three), second = run(settings, factory, scenario)
    assert one.status_code == 200 and two.status_code == 200
    assert_json_error(three, 429)
    assert three.json()["error"].startswith("Slowdown:")
    retry_after = three.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) > 0
    assert [response.status_code for response in second] == [200, 200]


def test_unknown_missing_and_settings_keys(tmp_path):
    settings, factory, store = keys_setup(tmp_path, api_keys=["settings-key-1234"])
    stored = store.add(name="db")

    async def scenario(client):
        return (await client.post("/translate", json=libre("Hallo", api_key="not-a-known-key")),
                await client.post("/translate", json=libre("Hallo")),
                await client.post("/translate", json=libre("Hallo",
                                                           api_key="settings-key-1234")),
                await client.post("/translate", json=libre("Hallo"),
                                  headers={"Authorization": f"Bearer {stored}"}))

    unknown, missing, from_settings, from_db = run(settings, factory, scenario)
    assert_json_error(unknown, 403)
    assert_json_error(missing, 401)
    assert from_settings.status_code == 200 and from_settings.json()["translatedText"]
    assert from_db.status_code == 200


def test_require_api_key_refuses_keyless_requests(tmp_path):
    settings, factory, store = keys_setup(tmp_path, require_api_key=True)
    key = store.add()

    async def scenario(client):
        return (await client.post("/translate", json=libre("Hallo")),
                await client.post("/detect", json={"q": "Hallo"}),
                await client.post("/translate", json=libre("Hallo", api_key=key)))

    missing, detect_missing, ok = run(settings, factory, scenario)
    assert_json_error(missing, 401)
    assert_json_error(detect_missing, 401)
    assert ok.status_code == 200


def test_a_key_char_limit_is_413_above_and_200_below(tmp_path):
    settings, factory, store = keys_setup(tmp_path)
    key = store.add(chars_per_request=5)

    async def scenario(client):
        return (await client.post("/translate", json=libre("0123456789", api_key=key)),
                await client.post("/translate", json=libre(["01234", "56789"], api_key=key)),
                await client.post("/translate", json=libre("abc", api_key=key)))

    over, over_list, ok = run(settings, factory, scenario)
    assert_json_error(over, 413)
    assert_json_error(over_list, 413)
    assert ok.status_code == 200 and ok.json()["translatedText"] == "fake(abc)"


def test_a_removed_key_stops_working_within_the_cache_ttl(tmp_path):
    settings, factory, store = keys_setup(tmp_path)
    key = store.add()

    async def scenario(client):
        before = await client.post("/translate", json=libre("Hallo", api_key=key))
        assert KeyStore(settings.keys_db).remove(key)     # as another process (s2s-keys) does
        await asyncio.sleep(2.5)
        return before, await client.post("/translate", json=libre("Hallo", api_key=key))

    before, after = run(settings, factory, scenario)
    assert before.status_code == 200
    assert_json_error(after, 403)


def test_detect_counts_against_the_key_rate(tmp_path):
    settings, factory, store = keys_setup(tmp_path)
    detect_first = store.add(requests_per_minute=2)
    translate_first = store.add(requests_per_minute=2)

    async def scenario(client):
        a = [await client.post("/detect", json={"q": "Hallo", "api_key": detect_first}),
             await client.post("/detect", json={"q": "Hallo", "api_key": detect_first}),
             await client.post("/translate", json=libre("Hallo", api_key=detect_first))]
        b = [await client.post("/translate", json=libre("Hallo", api_key=translate_first)),
             await client.post("/translate", json=libre("Hallo", api_key=translate_first)),
             await client.post("/detect", json={"q": "Hallo", "api_key": translate_first})]
        return a, b

    a, b = run(settings, factory, scenario)
    assert [r.status_code for r in a[:2]] == [200, 200] and a[2].status_code == 429
    assert [r.status_code for r in b[:2]] == [200, 200] and b[2].status_code == 429
    assert b[2].json()["error"].startswith("Slowdown:")


def test_keyless_clients_are_limited_per_address(tmp_path):
    settings, factory, _ = fake_setup(tmp_path, default_requests_per_minute=1,
                                      rate_limit_db=tmp_path / "rate.db")

    async def scenario(client):
        return (await client.post("/translate", json=libre("Hallo")),
                await client.post("/translate", json=libre("Hallo")))

    first, second = run(settings, factory, scenario)
    assert first.status_code == 200
    assert_json_error(second, 429)
    assert second.json()["error"].startswith("Slowdown:")
    assert int(second.headers["retry-after"]) > 0


def test_rate_limits_are_shared_through_the_database_across_apps(tmp_path):
    """Two app instances (as two worker processes) on one key database share a key's rate."""
    settings, factory, store = keys_setup(tmp_path)
    key = store.add(requests_per_minute=2)

    async def scenario(client):
        return await client.post("/translate", json=libre("Hallo", api_key=key))

    started = time.monotonic()
    statuses = [run(settings, factory, scenario).status_code for _ in range(3)]
    assert time.monotonic() - started < 30          # well within the minute
    assert statuses == [200, 200, 429]


def test_require_api_key_without_a_key_source_is_a_settings_error(tmp_path):
    with pytest.raises(ValueError, match="require_api_key"):
        Settings(models_dir=tmp_path, require_api_key=True)


def test_query_parameters_without_a_body_are_a_libretranslate_request(tmp_path):
    """deep-translator's LibreTranslator sends its fields as query parameters, no body."""
    settings, factory, _ = fake_setup(tmp_path)

    async def main():
        async with serve(settings, factory) as client:
            return await client.post("/translate", params={
                "q": "hallo", "source": "de", "target": "en", "format": "text"})

    response = asyncio.run(main())
    assert response.status_code == 200
    assert response.json()["translatedText"]
