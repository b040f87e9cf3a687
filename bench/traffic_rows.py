#!/usr/bin/env python3
"""The mixed-traffic issue's table, re-run against two servers: bench/traffic_rows.py

    python bench/traffic_rows.py --models-dir DIR --root-b OLD_CHECKOUT --out bench/x.json

Starts server A (this checkout) and server B (--root-b) in turn on the same model folder, each
with a files folder, a suggestions database and a key database (keys f0..f7 and p unlimited,
k30 at 30 requests a minute), and sends each row's requests: status, seconds, body bytes and
what matters of the answer. Rows: the flood (8 keyed callers looping 128-sentence requests
while another caller sends one html and one alternatives request), the 9 KB request asking
for a 32 MB answer, the 96 KB spaced-tags html file, the 80 KB unclosed-comment file to a pair
that is not served, long paragraphs in a .txt, a locked SQLite file, a keyless caller where
keys exist, a forged Host, a cross-site /suggest, security headers.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from bench_load import free_port, stop_server, wait_ready
from bench_train import machine_info

ROOT = Path(__file__).resolve().parent.parent
FLOOD_KEYS = [f"flood-key-{n:04d}" for n in range(8)]
PROBE_KEY, LIMITED_KEY = "probe-key-0000", "limited-key-30"
STATUS = ('<p>Hallo <a href="https://example.org/@anna">@anna</a>, wie geht\'s? '
          'Zwei Hunde spielen im Schnee.</p>')


def make_keys(path: Path) -> None:
    """The key database (this checkout's KeyStore; schema 1, which both sides read)."""
    sys.path.insert(0, str(ROOT))
    from service.stores.keys import KeyStore
    store = KeyStore(path)
    for key in [*FLOOD_KEYS, PROBE_KEY]:
        store.add(key=key)
    store.add(key=LIMITED_KEY, requests_per_minute=30)


def start(label: str, root: Path, models: str, folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(root), "S2S_LOG_LEVEL": "warning",
           "S2S_FILES_DIR": str(folder / f"files-{label}"),
           "S2S_SUGGESTIONS_DB": str(folder / f"suggestions-{label}.db"),
           "S2S_KEYS_DB": str(folder / "keys.db")}
    process = subprocess.Popen([sys.executable, "-m", "scripts.serve", "--models-dir", models,
                                "--port", str(port), "--host", "127.0.0.1"], cwd=root, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_ready(process, url)
    return process, url


def timed(client: httpx.Client, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as error:
        return {"status": type(error).__name__, "seconds": round(time.perf_counter() - started, 3)}
    return {"status": response.status_code, "seconds": round(time.perf_counter() - started, 3),
            "bytes": len(response.content), "body": response.text[:160],
            "headers": {k: v for k, v in response.headers.items()
                        if k.lower() in ("content-type", "content-security-policy",
                                         "x-content-type-options", "x-frame-options",
                                         "content-disposition", "retry-after")}}


def libre(q: Any, key: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"q": q, "source": "de", "target": "en", **extra}
    return body | ({"api_key": key} if key else {})


def flood_row(url: str) -> dict[str, Any]:
    stop, statuses = threading.Event(), {}
    lock = threading.Lock()

    def flood(key: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while not stop.is_set():
                status = timed(client, "POST", "/translate",
                               json=libre(["Hallo Welt."] * 128, key))["status"]
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=flood, args=(key,)) for key in FLOOD_KEYS]
    for thread in threads:
        thread.start()
    time.sleep(3)
    with httpx.Client(base_url=url, timeout=60) as client:
        html = timed(client, "POST", "/translate", json=libre([STATUS], PROBE_KEY, format="html"))
        alternatives = timed(client, "POST", "/translate",
                             json=libre("Ein Mann fährt Fahrrad.", PROBE_KEY, alternatives=1))
    stop.set()
    for thread in threads:
        thread.join()
    return {"html": html, "alternatives": alternatives,
            "flood_answers": {str(k): v for k, v in statuses.items()}}


def upload(client: httpx.Client, name: str, data: bytes, target: str = "en",
           **kwargs: Any) -> dict[str, Any]:
    return timed(client, "POST", "/translate_file", files={"file": (name, data)},
                 data={"source": "de", "target": target, "api_key": PROBE_KEY}, **kwargs)


def locked_row(client: httpx.Client, keys_db: Path) -> dict[str, Any]:
    """Another process holds the key and rate-limit file for 12 s."""
    holder = sqlite3.connect(keys_db, timeout=1, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(12, holder.rollback)
    release.start()
    try:
        return timed(client, "POST", "/translate", json=libre("Hallo.", LIMITED_KEY))
    finally:
        release.join()
        holder.close()


def rows(url: str, folder: Path) -> dict[str, Any]:
    spaced = ("<p>" + " ".join("<b> </b>" for _ in range(9000)) + " Hund</p>").encode()
    comments = b"<!--" * 20000
    paragraph = ("Ein Mann fährt mit dem Fahrrad durch die Stadt. " * 130)[:6110].encode()
    many = " ".join(["Ein Hund läuft."] * 300).encode()
    out: dict[str, Any] = {"flood": flood_row(url)}
    with httpx.Client(base_url=url, timeout=120) as client:
        out["response_32mb"] = timed(client, "POST", "/v1/translate", json={
            "texts": [" ".join(["Ein Mann fährt mit dem Fahrrad."] * 7)] * 40, "source": "de",
            "target": "en", "beam_size": 16, "n_best": 16, "return_attention": True,
            "api_key": PROBE_KEY})
        out["html_96kb_spaced_tags"] = upload(client, "page.html", spaced)
        out["html_80kb_unclosed_comments_to_de_fr"] = upload(client, "c.html", comments, "fr")
        out["txt_6110_char_paragraph"] = upload(client, "long.txt", paragraph)
        out["txt_line_of_300_sentences"] = upload(client, "many.txt", many)
        out["sqlite_locked_12s"] = locked_row(client, folder / "keys.db")
        keyless = [timed(client, "POST", "/translate", json=libre("Hallo."))["status"]
                   for _ in range(65)]
        out["keyless_65_requests"] = {str(s): keyless.count(s) for s in set(keyless)}
        forged = upload(client, "a.txt", b"Hallo Welt.", headers={"Host": "evil.example"})
        out["forged_host"] = forged
        out["cross_site_suggest"] = timed(
            client, "POST", "/suggest", data={"q": "Hallo", "s": "Hi", "source": "de",
                                              "target": "en", "api_key": PROBE_KEY},
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
        out["page_headers"] = timed(client, "GET", "/")["headers"]
        html_file = upload(client, "x.html", b"<p>Hallo <b>Welt</b></p>")
        link = json.loads(html_file.get("body", "{}") or "{}").get("translatedFileUrl", "")
        if link:
            out["download_headers"] = timed(client, "GET", httpx.URL(link).path)["headers"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", required=True)
    parser.add_argument("--root-b", required=True, help="the other checkout (before)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": machine_info(), "sides": {}}
    with tempfile.TemporaryDirectory(prefix="traffic_rows_") as tmp:
        folder = Path(tmp)
        make_keys(folder / "keys.db")
        for label, root in (("after", ROOT), ("before", Path(args.root_b).resolve())):
            process, url = start(label, root, str(Path(args.models_dir).resolve()), folder)
            try:
                result["sides"][label] = rows(url, folder)
            finally:
                stop_server(process)
            print(json.dumps({label: result["sides"][label]}, indent=1)[:4000])
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
