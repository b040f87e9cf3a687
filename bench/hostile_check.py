#!/usr/bin/env python3
"""Hostile requests to the translation service: bench/hostile_check.py [--url URL | --models-dir D]

Sends requests a hostile or broken client sends (deeply nested JSON, lone surrogates, huge
numbers, NaN/Infinity, bodies over the size limit, invalid UTF-8, wrong content types, missing,
wrong and non-ASCII keys, admin calls without the admin key, work above the budget, malformed
HTTP framing, ...) and checks each answer against what is expected: a specific status or any
4xx, and never a 5xx. Afterwards /ready and one normal translation show the server still serves.

Usage:
    python bench/hostile_check.py --models-dir models --out /tmp/hostile.json
    python bench/hostile_check.py --url http://127.0.0.1:8000 --api-key KEY --admin-key ADMIN

With --url the running server must require --api-key for translations and have --admin-key
as its admin key. Without it the script starts s2s-serve on --models-dir with those keys
(S2S_API_KEYS, S2S_ADMIN_API_KEY), records its RSS before and after the cases, and stops it
with SIGTERM at the end. Writes JSON (machine, server, cases) to --out, prints a Markdown
table and a summary line; exits 1 if any case got a 5xx or an unexpected status.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from bench_load import free_port, stop_server, wait_ready
from bench_train import machine_info

JSON_TYPE = {"Content-Type": "application/json"}
WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (else one is started on --models-dir)")
    parser.add_argument("--models-dir", default="models", help="for the started server")
    parser.add_argument("--pair", help="SRC-TGT (default: the first pair /languages lists)")
    parser.add_argument("--api-key", default="hostile-check-key", help="a translation key")
    parser.add_argument("--admin-key", default="hostile-admin-key", help="the admin key")
    parser.add_argument("--text", default="Hello world.", help="the normal text to translate")
    parser.add_argument("--max-body-bytes", type=int, default=1_000_000,
                        help="the server's body limit (a body just over it must get 413)")
    parser.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    parser.add_argument("--out", default="bench/hostile_check.json")
    return parser.parse_args(argv)


@dataclass
class Target:
    """The server under test and what the requests need."""

    url: str
    source: str
    target: str
    api_key: str
    admin_key: str
    text: str
    max_body_bytes: int


@dataclass
class Case:
    """One request and the status expected: "4xx", "413", "200|4xx" (alternatives)."""

    name: str
    method: str
    path: str
    expected: str
    json: Any = None
    content: bytes | Iterator[bytes] | None = None
    data: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] | None = None
    raw: bytes | None = None     # the whole HTTP request, sent over a plain socket


# --- request helpers ---------------------------------------------------------------------

def key_header(t: Target) -> dict[str, str]:
    return {"X-API-Key": t.api_key}


def libre(t: Target, **fields: Any) -> dict[str, Any]:
    """A /translate body (without a key unless given)."""
    return {"q": t.text, "source": t.source, "target": t.target, **fields}


def native(t: Target, **fields: Any) -> dict[str, Any]:
    return {"texts": [t.text], "source": t.source, "target": t.target, **fields}


def raw_json(t: Target, members: str, text_field: str = "q") -> bytes:
    """A JSON object as raw bytes: ``members`` verbatim (e.g. '"q": "\\ud800"'), the text in
    ``text_field`` unless ``members`` sets it, and the pair unless ``members`` sets it."""
    fields = {text_field: t.text if text_field == "q" else [t.text], "source": t.source,
              "target": t.target}
    rest = "".join(f", {json.dumps(name)}: {json.dumps(value)}" for name, value in fields.items()
                   if f'"{name}"' not in members)
    return f"{{{members}{rest}}}".encode()


def raw_http(t: Target, method: str, path: str, header_lines: list[bytes],
             body: bytes = b"") -> bytes:
    """A whole HTTP/1.1 request, header lines verbatim (any bytes, any framing)."""
    host = urlsplit(t.url).netloc.encode()
    head = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + host, b"Connection: close",
            *header_lines]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def words(count: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(count))


# --- the cases ---------------------------------------------------------------------------

def nesting_and_surrogate_cases(t: Target) -> list[Case]:
    nested = b"[" * 200_000 + b"]" * 200_000
    return [
        Case("JSON nested 200,000 deep, no key", "POST", "/translate", "4xx",
             content=nested, headers=JSON_TYPE),
        Case("JSON nested 200,000 deep, valid key", "POST", "/translate", "4xx",
             content=nested, headers={**JSON_TYPE, **key_header(t)}),
        Case("q nested 200,000 deep inside an object", "POST", "/translate", "4xx",
             content=b'{"q": ' + nested + b"}", headers={**JSON_TYPE, **key_header(t)}),
        Case("lone surrogate \\ud800 in q", "POST", "/translate", "422",
             content=raw_json(t, '"q": "\\ud800"'), headers={**JSON_TYPE, **key_header(t)}),
        Case("lone surrogate \\udfff in texts", "POST", "/v1/translate", "422",
             content=raw_json(t, '"texts": ["a\\udfffb"]', "texts"),
             headers={**JSON_TYPE, **key_header(t)}),
        Case("lone surrogate in api_key (body)", "POST", "/translate", "4xx",
             content=raw_json(t, '"api_key": "\\ud800"'), headers=JSON_TYPE),
        Case("lone surrogate in source", "POST", "/translate", "4xx",
             content=raw_json(t, '"source": "\\ud800"'), headers={**JSON_TYPE, **key_header(t)}),
    ]


def number_cases(t: Target) -> list[Case]:
    key = {**JSON_TYPE, **key_header(t)}

    def option(name: str, value: str, expected: str = "4xx") -> Case:
        shown = value if len(value) < 20 else f"a number of {len(value):,} digits"
        return Case(f"{name} = {shown}", "POST", "/v1/translate", expected,
                    content=raw_json(t, f'"{name}": {value}', "texts"), headers=key)

    return [
        option("max_len_b", "1e30"), option("max_len_b", "1000000000"),
        option("max_len_b", "1000000"), option("max_len_b", "0"),
        option("max_len_a", "1e300"), option("max_len_a", "-1"),
        option("length_penalty", "1e308"), option("length_penalty", "Infinity", "400"),
        option("length_penalty", "-Infinity", "400"), option("length_penalty", "NaN", "400"),
        option("max_len_a", "1e999"),
        option("beam_size", str(10**6)), option("beam_size", "0"), option("beam_size", "-1"),
        option("beam_size", "2.5"), option("beam_size", "1" + "0" * 5000),
        Case("n_best 8 > beam_size 4", "POST", "/v1/translate", "422",
             json=native(t, beam_size=4, n_best=8), headers=key_header(t)),
        Case("n_best 10**6 (beam default)", "POST", "/v1/translate", "422",
             json=native(t, n_best=10**6), headers=key_header(t)),
    ]


def admin_cases(t: Target) -> list[Case]:
    def reload(name: str, expected: str, headers: dict[str, str] | None = None,
               params: dict[str, str] | None = None) -> Case:
        return Case(f"admin reload: {name}", "POST", "/admin/reload", expected,
                    headers=headers or {}, params=params)

    return [
        reload("no key", "401"),
        reload("the translation key as X-API-Key", "4xx", key_header(t)),
        reload("the translation key as X-Admin-Key", "403", {"X-Admin-Key": t.api_key}),
        reload("wrong admin key", "403", {"X-Admin-Key": t.admin_key + "x"}),
        reload("admin key prefix", "403", {"X-Admin-Key": t.admin_key[:-1]}),
        reload("admin key as query parameter", "4xx",
               params={"api_key": t.admin_key, "admin_key": t.admin_key}),
        reload("admin key in Authorization: Basic", "4xx",
               {"Authorization": f"Basic {t.admin_key}"}),
        reload("right admin key", "200", {"X-Admin-Key": t.admin_key}),
    ]


def content_type_cases(t: Target) -> list[Case]:
    body = json.dumps(libre(t)).encode()
    native_body = json.dumps(native(t)).encode()
    key = key_header(t)
    return [
        Case("/translate text/plain", "POST", "/translate", "415", content=body,
             headers={**key, "Content-Type": "text/plain"}),
        Case("/translate no content type", "POST", "/translate", "415", content=body,
             headers=key),
        Case("/v1/translate text/plain", "POST", "/v1/translate", "415", content=native_body,
             headers={**key, "Content-Type": "text/plain"}),
        Case("/v1/translate no content type", "POST", "/v1/translate", "415",
             content=native_body, headers=key),
        Case("/v1/translate form-encoded", "POST", "/v1/translate", "415",
             data={"texts": t.text, "source": t.source, "target": t.target}, headers=key),
        Case("/translate form-encoded with key", "POST", "/translate", "200",
             data={**libre(t), "api_key": t.api_key}),
        Case("/translate multipart, broken boundary", "POST", "/translate", "4xx",
             content=b"--zz\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\nhi",
             headers={**key, "Content-Type": "multipart/form-data; boundary=zz"}),
        Case("/translate multipart, no boundary", "POST", "/translate", "4xx",
             content=b"q=hi", headers={**key, "Content-Type": "multipart/form-data"}),
        Case("content type application/evil+json", "POST", "/translate", "200",
             content=body, headers={**key, "Content-Type": "application/evil+json"}),
    ]


def oversized_chunks(total: int) -> Iterator[bytes]:
    chunk = b" " * 65536
    for _ in range(total // len(chunk) + 1):
        yield chunk


def body_cases(t: Target) -> list[Case]:
    key = {**JSON_TYPE, **key_header(t)}
    over = t.max_body_bytes + 1
    big = b'{"q": "' + b"a" * (over - 8) + b'"}'
    return [
        Case(f"body of {len(big):,} bytes", "POST", "/translate", "413", content=big,
             headers=key),
        Case(f"chunked body over {t.max_body_bytes:,} bytes", "POST", "/translate", "413",
             content=oversized_chunks(over), headers=key),
        Case("Content-Length 10**12 declared", "POST", "/translate", "413", raw=raw_http(
            t, "POST", "/translate", [b"Content-Type: application/json",
                                      b"Content-Length: 1000000000000"], b"{}")),
        Case("invalid UTF-8 bytes in JSON", "POST", "/translate", "400",
             content=raw_json(t, '"q": "ab"').replace(b"ab", b"a\xff\xfeb"), headers=key),
        Case("raw NUL byte inside a JSON string", "POST", "/translate", "400",
             content=raw_json(t, '"q": "a\0b"'), headers=key),
        Case("empty body", "POST", "/translate", "400", content=b"", headers=key),
        Case("JSON array", "POST", "/translate", "400", json=[libre(t)], headers=key_header(t)),
        Case("JSON string", "POST", "/translate", "400", json="hello", headers=key_header(t)),
        Case("JSON null", "POST", "/v1/translate", "400", content=b"null", headers=key),
        Case("truncated JSON", "POST", "/translate", "400",
             content=json.dumps(libre(t)).encode()[:-3], headers=key),
        Case("duplicate keys (last q wins)", "POST", "/translate", "200|4xx",
             content=raw_json(t, '"q": 12345, "q": "x"'), headers=key),
        Case("duplicate api_key: valid first, wrong last", "POST", "/translate", "403",
             content=raw_json(t, f'"api_key": {json.dumps(t.api_key)}, "api_key": "wrong"'),
             headers=JSON_TYPE),
        Case("JSON body in UTF-16", "POST", "/translate", "200|4xx",
             content=json.dumps(libre(t)).encode("utf-16"), headers=key),
        Case("unknown field in the native body", "POST", "/v1/translate", "422",
             json=native(t, evil=True), headers=key_header(t)),
    ]


def text_cases(t: Target) -> list[Case]:
    key = key_header(t)

    def q(name: str, value: Any, expected: str) -> Case:
        return Case(name, "POST", "/translate", expected, json=libre(t, q=value), headers=key)

    return [
        q("q: list of 10,000 items", ["a"] * 10_000, "413"),
        q("q: one text of 100,000 characters", "a" * 100_000, "413"),
        q("q: nested lists", [["a", ["b"]], "c"], "422"),
        q("q: integer", 12345, "422"),
        q("q: object", {"text": "a"}, "422"),
        q("q: null", None, "422"),
        q("q: boolean", True, "422"),
        q("q: empty list", [], "200|4xx"),
        q("q: NUL characters (\\u0000)", "a\u0000b\u0000", "200|4xx"),
        q("q: 3,000 words, no punctuation", words(3000), "413"),
        q("q: 900 words, within the character limit", words(900), "413"),
        q("q: 128 texts of 97 sentences each", ["Hi. " * 97] * 128, "413"),
        q("q: 5,000 line breaks", "\n" * 5000, "200|4xx"),
        q("q: bidi overrides and zero-width characters", "\u202e\u200b\u2066abc\u2069\ufeff",
          "200|4xx"),
        q("q: 5,000 combining marks", "a" + "\u0301" * 4999, "200|4xx"),
    ]


def language_cases(t: Target) -> list[Case]:
    key = key_header(t)

    def body(name: str, expected: str, **fields: Any) -> Case:
        return Case(name, "POST", "/translate", expected, json=libre(t, **fields), headers=key)

    return [
        body("unknown pair xx-yy", "400", source="xx", target="yy"),
        body("source auto (detected per text)", "200|4xx", source="auto"),  # by --text
        body("source code of 10,000 characters", "422", source="x" * 10_000),
        body("source with path characters ../../etc", "4xx", source="../../etc"),
        body("source as a list", "422", source=[t.source]),
        body("alternatives = -1", "422", alternatives=-1),
        body("alternatives = 10**9", "422", alternatives=10**9),
        body("alternatives = 10**5 (within schema, above n_best)", "422", alternatives=10**5),
        body("format html", "400", format="html"),
        body("format xml", "422", format="xml"),
    ]


def key_cases(t: Target) -> list[Case]:
    body = json.dumps(libre(t)).encode()
    raw_headers = [b"Content-Type: application/json", f"Content-Length: {len(body)}".encode()]

    def keyed(name: str, expected: str, headers: dict[str, str] | None = None,
              params: dict[str, str] | None = None) -> Case:
        return Case(name, "POST", "/translate", expected, json=libre(t), headers=headers or {},
                    params=params)

    return [
        keyed("missing key", "401"),
        keyed("wrong key (header)", "403", {"X-API-Key": "wrong"}),
        keyed("valid key in the query string", "200", params={"api_key": t.api_key}),
        keyed("wrong key in the query string", "403", params={"api_key": "wrong"}),
        keyed("key 100 KB long (header)", "4xx", {"X-API-Key": "k" * 100_000}),
        keyed("valid key as Bearer, lowercase scheme", "200",
              {"Authorization": f"bearer {t.api_key}"}),
        Case("key with non-ASCII bytes (raw header)", "POST", "/translate", "403", raw=raw_http(
            t, "POST", "/translate", [*raw_headers, "X-API-Key: clé-ключ-鍵".encode()], body)),
        Case("Authorization: Bearer and spaces only (raw)", "POST", "/translate", "401",
             raw=raw_http(t, "POST", "/translate", [*raw_headers, b"Authorization: Bearer   "],
                          body)),
        Case("key with Latin-1 byte 0xff (raw header)", "POST", "/translate", "403",
             raw=raw_http(t, "POST", "/translate", [*raw_headers, b"X-API-Key: \xff\xfe"], body)),
        Case("valid key with appended non-ASCII (raw)", "POST", "/translate", "403",
             raw=raw_http(t, "POST", "/translate",
                          [*raw_headers, b"X-API-Key: " + t.api_key.encode() + b"\xc3\xa9"],
                          body)),
    ]


def route_cases(t: Target) -> list[Case]:
    return [
        Case("GET /translate", "GET", "/translate", "405"),
        Case("GET /v1/translate", "GET", "/v1/translate", "405"),
        Case("GET /admin/reload", "GET", "/admin/reload", "405"),
        Case("PUT /translate", "PUT", "/translate", "405", json=libre(t)),
        Case("DELETE /v1/models", "DELETE", "/v1/models", "405"),
        Case("unknown path", "GET", "/no/such/path", "404"),
        Case("static path traversal", "GET", "/static/../../../etc/passwd", "404"),
        Case("static encoded traversal (raw)", "GET", "/static/%2e%2e/%2e%2e/etc/passwd", "404",
             raw=raw_http(t, "GET", "/static/%2e%2e/%2e%2e/etc/passwd", [])),
        Case("HEAD /health", "HEAD", "/health", "200|405"),
        Case("HEAD /translate", "HEAD", "/translate", "405"),
        Case("OPTIONS /translate", "OPTIONS", "/translate", "405"),
        Case("unknown method BREW", "BREW", "/translate", "4xx"),
    ]


def budget_cases(t: Target) -> list[Case]:
    texts = [words(40)] * 120
    return [
        Case("120 texts x 40 words, beam 16, max_len_b 200", "POST", "/v1/translate", "413",
             json=native(t, texts=texts, beam_size=16, max_len_b=200),
             headers=key_header(t)),
        Case("128 texts, beam 16, n_best 16, max_len_a 4, attention", "POST", "/v1/translate",
             "413", json=native(t, texts=[words(40)] * 128, beam_size=16, n_best=16,
                                max_len_a=4, max_len_b=256, return_attention=True),
             headers=key_header(t)),
    ]


def framing_cases(t: Target) -> list[Case]:
    body = json.dumps(libre(t, api_key=t.api_key)).encode()
    json_type = b"Content-Type: application/json"

    def raw(name: str, lines: list[bytes], payload: bytes = body) -> Case:
        return Case(name, "POST", "/translate", "4xx",
                    raw=raw_http(t, "POST", "/translate", [json_type, *lines], payload))

    return [
        raw("Content-Length: -1 (raw)", [b"Content-Length: -1"]),
        raw("Content-Length not a number (raw)", [b"Content-Length: 12abc"]),
        raw("two different Content-Lengths (raw)",
            [f"Content-Length: {len(body)}".encode(), b"Content-Length: 5"]),
        raw("Content-Length and chunked together (raw)",
            [f"Content-Length: {len(body)}".encode(), b"Transfer-Encoding: chunked"],
            b"0\r\n\r\n" + body),
        raw("chunked with a bad chunk size (raw)", [b"Transfer-Encoding: chunked"],
            b"zz\r\n" + body + b"\r\n0\r\n\r\n"),
        raw("Content-Length shorter than the body (raw)", [b"Content-Length: 10"]),
        raw("header name with a space (raw)", [b"X Bad: 1", f"Content-Length: {len(body)}"
                                                .encode()]),
    ]


def after_cases(t: Target) -> list[Case]:
    return [
        Case("after: GET /ready", "GET", "/ready", "200"),
        Case("after: a normal translation", "POST", "/translate", "200", json=libre(t),
             headers=key_header(t)),
    ]


def detect_cases(t: Target) -> list[Case]:
    """/detect and source "auto": the same hostile shapes as the translate endpoints."""
    keyed = {**JSON_TYPE, **key_header(t)}
    return [
        Case("/detect JSON nested 200,000 deep", "POST", "/detect", "4xx",
             content=b"[" * 200_000 + b"]" * 200_000, headers=keyed),
        Case("/detect lone surrogate in q", "POST", "/detect", "422",
             content=b'{"q": "\\ud800"}', headers=keyed),
        Case("/detect 10,000 items", "POST", "/detect", "413",
             json={"q": ["a"] * 10_000}, headers=key_header(t)),
        Case("/detect no key", "POST", "/detect", "401", json={"q": t.text}),
        Case("/detect text/plain", "POST", "/detect", "415", content=b'{"q": "a"}',
             headers={"content-type": "text/plain", **key_header(t)}),
        Case("/detect digits only", "POST", "/detect", "200", json={"q": "12345"},
             headers=key_header(t)),
        Case("source auto, target unknown", "POST", "/translate", "400",
             json=libre(t, source="auto", target="xx"), headers=key_header(t)),
        Case("source auto, digits only", "POST", "/translate", "4xx",
             json=libre(t, q="12345", source="auto"), headers=key_header(t)),
    ]


def all_cases(t: Target) -> list[Case]:
    groups = (nesting_and_surrogate_cases, number_cases, admin_cases, content_type_cases,
              body_cases, text_cases, language_cases, key_cases, route_cases, budget_cases,
              detect_cases, framing_cases, after_cases)
    return [case for group in groups for case in group(t)]


# --- sending -----------------------------------------------------------------------------

def send_http(client: httpx.Client, case: Case) -> tuple[int, bytes]:
    kwargs: dict[str, Any] = {"headers": case.headers, "params": case.params}
    if case.content is not None:
        kwargs["content"] = case.content
    elif case.data is not None:
        kwargs["data"] = case.data
    elif case.json is not None:
        kwargs["json"] = case.json
    response = client.request(case.method, case.path, **kwargs)
    return response.status_code, response.content


def send_raw(url: str, request: bytes, timeout: float) -> tuple[int, bytes]:
    """Send bytes as they are, read until the server closes; (status, body)."""
    parts = urlsplit(url)
    chunks = []
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as sock:
        with contextlib.suppress(OSError):   # it may answer (413) and close before the end
            sock.sendall(request)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return parse_response(b"".join(chunks))


def parse_response(data: bytes) -> tuple[int, bytes]:
    """Status and body of the first response in ``data`` (Content-Length or chunked)."""
    if not data:
        raise ConnectionError("the server closed the connection without an answer")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.lower().split(b":", 1) for line in lines[1:] if b":" in line)
    if b"content-length" in headers:
        return status, body[:int(headers[b"content-length"])]
    if headers.get(b"transfer-encoding", b"").strip() == b"chunked":
        return status, dechunk(body)
    return status, body


def dechunk(body: bytes) -> bytes:
    out = []
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out.append(body[:size])
        body = body[size + 2:]
    return b"".join(out)


def error_fields(body: bytes) -> tuple[str | None, str]:
    """(kind, message): the JSON error's, else the start of the body."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None, body.decode("utf-8", "replace")[:120]
    if isinstance(answer, dict) and "error" in answer:
        return answer.get("kind"), str(answer["error"])[:120]
    return None, json.dumps(answer, ensure_ascii=False)[:120]


def status_matches(expected: str, status: int | None) -> bool:
    if status is None:
        return False
    for part in expected.split("|"):
        if part.endswith("xx") and status // 100 == int(part[0]):
            return True
        if part.isdigit() and status == int(part):
            return True
    return False


def run_case(client: httpx.Client, t: Target, case: Case, timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        if case.raw is not None:
            status, body = send_raw(t.url, case.raw, timeout)
        else:
            status, body = send_http(client, case)
        kind, message = error_fields(body)
    except (httpx.HTTPError, OSError, ValueError, IndexError) as error:
        status, kind, message = None, "no_response", f"{type(error).__name__}: {error}"[:120]
    server_error = status is not None and status >= 500
    return {"name": case.name, "method": case.method, "path": case.path,
            "expected": case.expected, "status": status, "kind": kind, "message": message,
            "seconds": round(time.perf_counter() - started, 3),
            "ok": not server_error and status_matches(case.expected, status)}


# --- the server --------------------------------------------------------------------------

def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "scripts.serve", "--models-dir", args.models_dir,
               "--port", str(port), "--host", "127.0.0.1"]
    env = {**os.environ, "S2S_API_KEYS": args.api_key, "S2S_ADMIN_API_KEY": args.admin_key,
           "S2S_LOG_LEVEL": "warning"}
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_ready(process, url)
    return process, url


def rss_mib(pid: int) -> float | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def default_pair(client: httpx.Client) -> str:
    languages = client.get("/languages").raise_for_status().json()
    for language in languages:
        if language.get("targets"):
            return f"{language['code']}-{language['targets'][0]}"
    raise SystemExit("error: the server lists no language pair")


# --- output ------------------------------------------------------------------------------

def cell(value: Any) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def print_table(rows: list[dict[str, Any]]) -> None:
    print("| case | status | kind | message | ok |")
    print("|---|---|---|---|---|")
    for row in rows:
        ok = "yes" if row["ok"] else f"**NO** (expected {row['expected']})"
        print(f"| {cell(row['name'])} | {cell(row['status'])} | {cell(row['kind'])} | "
              f"{cell(row['message'])} | {ok} |")


def summarize(rows: list[dict[str, Any]]) -> tuple[int, int]:
    """(5xx count, unexpected count) -- a 5xx is also unexpected."""
    server_errors = sum(1 for row in rows if row["status"] is not None and row["status"] >= 500)
    unexpected = sum(1 for row in rows if not row["ok"])
    return server_errors, unexpected


def run_all(args: argparse.Namespace, url: str) -> tuple[str, list[dict[str, Any]]]:
    with httpx.Client(base_url=url, timeout=args.timeout) as client:
        pair = args.pair or default_pair(client)
        source, target = pair.split("-", 1)
        t = Target(url, source, target, args.api_key, args.admin_key, args.text,
                   args.max_body_bytes)
        rows = [run_case(client, t, case, args.timeout) for case in all_cases(t)]
    return pair, rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    process, url = (None, args.url.rstrip("/")) if args.url else start_server(args)
    server: dict[str, Any] = {"url": url, "started": process is not None}
    try:
        if process is not None:
            server["rss_mib_before"] = rss_mib(process.pid)
        server["pair"], rows = run_all(args, url)
        if process is not None:
            server["rss_mib_after"] = rss_mib(process.pid)
    finally:
        if process is not None:
            started = time.perf_counter()
            stop_server(process)
            server["exit_s"] = round(time.perf_counter() - started, 2)
            server["exit_code"] = process.returncode
    result = {"machine": machine_info(), "server": server, "cases": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_table(rows)
    server_errors, unexpected = summarize(rows)
    print(f"\n{len(rows)} cases, {server_errors} 5xx, {unexpected} unexpected")
    print(f"server: {json.dumps(server)}\nwrote {args.out}")
    return 1 if server_errors or unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
