#!/usr/bin/env python3
"""Existing LibreTranslate clients, unchanged, against a running service (issue 12); every
request and response is recorded.

    python bench/client_demo.py --url http://127.0.0.1:8000 --keys-db KEYS.db --out FILE.json

Needs ``pip install libretranslatepy==2.1.4 deep-translator`` (clients from the package
registry; not project dependencies). The server must serve de-en and at least one other pair,
with files_dir and keys_db set (the keys are added here).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import httpx

KEY_CACHE_S = 2.5   # service.stores.keys.KeyStore's lookup cache (2 s) and a margin
SENTENCE_DE = "Ein Mann mit einem roten Hut fährt Fahrrad auf der Straße."
SENTENCE_FR = "Une femme lit un livre dans le parc."
MASTODON = ['<p>Hallo <a href="https://example.org/@anna" class="u-url mention">@<span>anna'
            '</span></a>, wie geht\'s? Zwei Hunde spielen im Schnee.</p>',
            "<p>Un homme <strong>joue de la guitare</strong> dans la rue.</p>"]
SRT = ("1\n00:00:01,000 --> 00:00:03,500\nEin kleines Mädchen klettert auf ein Spielhaus.\n\n"
       "2\n00:00:04,000 --> 00:00:06,000\nZwei Männer stehen am Strand.\n")
HTML_FILE = ("<!doctype html><html><head><title>Bilder</title></head><body>"
             "<h1>Ein Hund im Park</h1><p>Ein <b>brauner</b> Hund rennt über das Gras.</p>"
             "<pre>code bleibt</pre></body></html>")


def libretranslatepy(url: str, key: str) -> dict:
    from libretranslatepy import LibreTranslateAPI

    api = LibreTranslateAPI(url, api_key=key)
    return {"languages": api.languages(),
            "translate_de_en": api.translate(SENTENCE_DE, "de", "en"),
            "translate_auto_en": api.translate(SENTENCE_FR, "auto", "en"),
            "detect": api.detect(SENTENCE_DE)}


def deep_translator(url: str, key: str) -> dict:
    from deep_translator import LibreTranslator

    out = {}
    for source, text in (("de", SENTENCE_DE), ("auto", SENTENCE_FR)):
        client = LibreTranslator(source=source, target="en", api_key=key,
                                 custom_url=url.rstrip("/") + "/")
        out[f"translate_{source}_en"] = client.translate(text)
    return out


def mastodon(client: httpx.Client, key: str) -> dict:
    body = {"q": MASTODON, "source": "auto", "target": "en", "format": "html", "api_key": key}
    response = client.post("/translate", json=body)
    return {"request": body, "status": response.status_code, "response": response.json()}


FRAGMENTS = {
    "nested inline": "<p>Ein <b>Mann mit <i>rotem</i> Hut</b> fährt Fahrrad.</p>",
    "link": '<p>Ein Hund <a href="https://example.org/hund?a=1&amp;b=2">rennt</a> im Park.</p>',
    "entities": "<p>Mann &amp; Frau gehen&nbsp;spazieren &lt;heute&gt;.</p>",
    "code": "<p>Eine Frau tippt <code>ls -la</code> in einen Computer.</p>",
    "pre and script": "<pre>nicht übersetzen</pre><script>var x = 1;</script><p>Ein Kind "
                      "spielt.</p>",
    "malformed": "<p><b>Zwei Männer <i>spielen</p> Fußball</b></div>",
    "empty elements": '<p>Ein Junge<br>springt <img src="a.png" alt="Bild"> ins Wasser.</p>',
    "blocks": "<ul><li>Ein Hund schwimmt.</li><li>Eine Katze schläft.</li></ul>",
    "empty": "",
}


def tag_sequence(html: str) -> list[tuple[str, str]]:
    """Start, empty and end tags with their raw text, in order (text and entities left out)."""
    from service.formats.markup import tokenize

    return [(token.kind, token.raw) for token in tokenize(html)
            if token.kind in ("start", "empty", "end")]


def html_fragments(client: httpx.Client, key: str) -> list[dict]:
    rows = []
    for name, fragment in FRAGMENTS.items():
        response = client.post("/translate", json={"q": fragment, "source": "de", "target": "en",
                                                    "format": "html", "api_key": key})
        output = response.json().get("translatedText", "")
        rows.append({"case": name, "status": response.status_code, "input": fragment,
                     "output": output,
                     "same_tag_sequence": tag_sequence(fragment) == tag_sequence(output),
                     "same_tags": sorted(tag_sequence(fragment)) == sorted(tag_sequence(output))})
    return rows


def files(client: httpx.Client, key: str) -> dict:
    out = {}
    for name, text in (("captions.srt", SRT), ("page.html", HTML_FILE)):
        response = client.post("/translate_file", files={"file": (name, text.encode())},
                               data={"source": "de", "target": "en", "api_key": key})
        answer = response.json()
        record = {"status": response.status_code, "response": answer, "input": text}
        if response.status_code == 200:
            download = client.get(answer["translatedFileUrl"])
            record["download_status"] = download.status_code
            record["download_headers"] = {"content-disposition":
                                          download.headers.get("content-disposition")}
            record["output"] = download.text
        out[name] = record
    return out


def rate_limits(client: httpx.Client, store) -> dict:
    slow = store.add(requests_per_minute=2, name="demo-slow")
    fast = store.add(requests_per_minute=60, name="demo-fast")
    time.sleep(KEY_CACHE_S)        # the server sees new keys within its cache time
    body = {"q": SENTENCE_DE, "source": "de", "target": "en"}
    calls = []
    for key in (slow, slow, slow, fast, fast):
        response = client.post("/translate", json={**body, "api_key": key})
        calls.append({"key": "slow (2/min)" if key == slow else "fast (60/min)",
                      "status": response.status_code,
                      "retry_after": response.headers.get("retry-after"),
                      "body": response.json()})
    unknown = client.post("/translate", json={**body, "api_key": "not-a-key-at-all"})
    calls.append({"key": "unknown", "status": unknown.status_code, "body": unknown.json()})
    return {"calls": calls}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--keys-db", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from service.stores.keys import KeyStore

    store = KeyStore(args.keys_db)
    key = store.add(name="client-demo")     # unlimited; the server refuses unknown keys
    time.sleep(KEY_CACHE_S)
    with httpx.Client(base_url=args.url, timeout=60) as client:
        record = {"libretranslatepy 2.1.4": libretranslatepy(args.url, key),
                  "deep-translator": deep_translator(args.url, key),
                  "mastodon": mastodon(client, key),
                  "html_fragments": html_fragments(client, key), "files": files(client, key),
                  "rate_limits": rate_limits(client, store)}
    args.out.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps(record, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
