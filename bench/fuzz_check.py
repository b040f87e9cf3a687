#!/usr/bin/env python3
"""Property-based fuzzing of the translation service's HTTP API with hypothesis.

Usage:
    python bench/fuzz_check.py --models-dir models [--total 5000] [--seed 1]
    python bench/fuzz_check.py --url http://127.0.0.1:8000 --api-key KEY --admin-key ADMIN

Without --url the script starts the service (scripts.serve) on --models-dir with the API key
--api-key, the admin key --admin-key and a 10 s request deadline, and stops it with SIGTERM at
the end. The language pair comes from /languages.

First every method is sent once to every known path (valid keys and body); then hypothesis
generates whole requests in five groups: "libre" (POST /translate, JSON or form,
every field sometimes hostile: any Unicode with lone surrogates, very long strings, mixed and
nested lists/dicts, NaN/inf, huge integers, extra keys), "native" (POST /v1/translate, the
same), "raw" (arbitrary bytes, mutated JSON, NaN literals, nesting up to 100,000 deep, invalid
UTF-8, content types), "routes" (GET/POST/PUT/DELETE/OPTIONS/HEAD on every path and on random
paths, query strings, random key headers) and "admin" (/admin/reload with random admin keys).
Each group gets --examples requests or its share of --total, whichever is more (requests
sent while shrinking a failure do not count towards it).

Properties of every response: no 5xx except 503, and a 503 has Retry-After and a JSON error;
every 4xx/503 of the app's routes is JSON with a non-empty "error" string (the web page "/",
/static/* and /metrics excepted, HEAD has no body); the server is still alive. A failing
request is recorded (method, path, headers, the body's first 300 bytes, the response) and the
fuzzing goes on: a failure already recorded is not raised again, so one bug hides no other.
Afterwards /ready must answer 200 and a normal translation 200. Writes JSON (--out: counts by
endpoint, status and group, the failures with their requests, the machine), prints a summary
and exits with 1 on any failure. The started server's output goes to --server-log if given.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import math
import os
import subprocess
import sys
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx
from bench_load import free_port, stop_server, wait_ready
from bench_train import machine_info
from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st

TEXTS = ["Hello world.", "march twenty-first, nineteen ninety-four",
         "the third of june two thousand seven", "Zwei Hunde spielen. Ein Mann fährt Rad.\n\nJa!",
         "", "   ", "\n"]
KNOWN_PATHS = ["/translate", "/v1/translate", "/detect", "/suggest", "/frontend/settings",
               "/admin/reload", "/ready", "/health", "/languages",
               "/v1/models", "/metrics", "/", "/static/index.html", "/static/app.js", "/docs",
               "/openapi.json"]
METHODS = ["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD"]
CONTENT_TYPES = ["application/json", "application/json; charset=latin-1", "text/plain",
                 "application/problem+json", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=fuzzboundary", "multipart/form-data", None]
HEADER_NAMES = ["x-api-key", "authorization", "x-admin-key", "content-type", "accept", "origin",
                "expect", "upgrade", "connection", "range", "if-none-match"]
INVALID_UTF8 = [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                b"\xc0\xaf", b"\x80", b"\xe2\x82"]
LITERALS = ["NaN", "Infinity", "-Infinity", "1" * 5000, "1e999", "-0", "nul", "tru", "[", "{}"]
HUGE_INTS = [10**30, -(10**30), 2**31, 2**63, -(2**63) - 1, 2**64]
BOUNDARY = b"fuzzboundary"
UVICORN_INVALID = b"Invalid HTTP request received."
MISSING = object()   # a field left out of the body
MAX_ROUNDS = 5       # hypothesis runs per group (a run ends at a new failure)
SHRINK_SECONDS = 30  # shrinking time per failure (a 504 costs the 10 s deadline per try)
TIMEOUT_S = 15.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (else one is started)")
    parser.add_argument("--models-dir", default="models", help="for the started server")
    parser.add_argument("--api-key", default="fuzz-key", help="a valid translation key")
    parser.add_argument("--admin-key", default="fuzz-admin", help="the valid admin key")
    parser.add_argument("--total", type=int, default=5000, help="requests at least, all groups")
    parser.add_argument("--examples", type=int, default=0, help="hypothesis examples per group "
                        "(at least the group's share of --total)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-shrink", action="store_true", help="skip shrinking failures")
    parser.add_argument("--server-log", help="file for the started server's output")
    parser.add_argument("--out", default="bench/fuzz_check.json")
    return parser.parse_args(argv)


def header_safe(raw: bytes) -> bytes:
    """The bytes h11 sends as a header value: no controls, no whitespace at the ends."""
    return bytes(b for b in raw if b == 0x20 or 0x21 <= b <= 0x7E or b >= 0x80).strip(b" ")


def utf8(text: str) -> bytes:
    """UTF-8, lone surrogates included (which makes it invalid UTF-8)."""
    return text.encode("utf-8", "surrogatepass")


@dataclass
class Req:
    method: str
    path: str                     # with the query string, percent-encoded
    headers: dict[str, bytes]
    body: bytes = b""
    chunked: bool = False         # Transfer-Encoding: chunked instead of Content-Length

    def __post_init__(self) -> None:
        self.headers = {name: header_safe(value) for name, value in self.headers.items()}

    def record(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path,
                "headers": {k: v.decode("utf-8", "backslashreplace")
                            for k, v in self.headers.items()},
                "body_bytes": len(self.body), "chunked": self.chunked,
                "body_head": self.body[:300].decode("utf-8", "backslashreplace")}


@dataclass(frozen=True)
class Target:
    """The server's real pair and keys: what a valid request uses."""

    source: str
    target: str
    api_key: str
    admin_key: str

    def body(self, **fields: Any) -> dict[str, Any]:
        return {"q": "Hello world.", "source": self.source, "target": self.target,
                "api_key": self.api_key, **fields}

    def native_body(self) -> dict[str, Any]:
        return {"texts": ["Hello world."], "source": self.source, "target": self.target,
                "api_key": self.api_key}


# ---------------------------------------------------------------- values

@functools.cache
def unicode_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Text of every Unicode category, lone surrogates included."""
    chars = st.one_of(st.characters(codec=None, blacklist_categories=()),
                      st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
    return st.text(chars, max_size=max_size)


@functools.cache
def long_text() -> st.SearchStrategy[str]:
    """One character repeated around the limits (5000 per text, 1 MB per body: "a" then)."""
    lengths = st.sampled_from([4999, 5000, 5001, 50_001, 1_000_001]) | st.integers(0, 20_000)
    return st.builds(lambda char, n: (char if n < 100_000 else "a") * n,
                     st.characters(codec=None), lengths)


@functools.cache
def hostile_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from(HUGE_INTS),
                        st.floats(allow_nan=True, allow_infinity=True), unicode_text())
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(unicode_text(8), inner, max_size=4), max_leaves=12)


@st.composite
def field_value(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> Any:
    """Mostly a valid value (what shrinking goes to); sometimes missing, hostile or very
    long."""
    roll = draw(st.integers(0, 19))
    if roll < 18:
        return draw(valid)
    if roll == 18:
        return MISSING
    return draw(st.one_of(hostile_values(), long_text()))


@st.composite
def mostly(draw: st.DrawFn, common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]
           ) -> Any:
    """A value of ``common``, one time in ten of ``rare`` (shrinking goes to ``common``)."""
    return draw(rare) if draw(st.integers(0, 9)) == 9 else draw(common)


@st.composite
def body_of(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    body = {name: draw(field_value(valid)) for name, valid in fields.items()}
    body = {name: value for name, value in body.items() if value is not MISSING}
    if draw(st.integers(0, 4)) < 4:
        return body
    return {**body, **draw(st.dictionaries(unicode_text(12), hostile_values(), max_size=2))}


@functools.cache
def text_items() -> st.SearchStrategy[str]:
    return st.sampled_from(TEXTS) | unicode_text()


@functools.cache
def at_the_limits() -> st.SearchStrategy[list[str]]:
    """Valid but heavy: about max_items texts, or one text of hundreds of words or sentences
    (within the character limit)."""
    many = st.builds(lambda n: ["Hello world."] * n, st.sampled_from([127, 128, 129, 1000]))
    words = st.builds(lambda word, n: [(word + " ") * n], st.sampled_from(
        ["nineteen", "Hund", "a.", "?!", "\u00e9"]), st.integers(1, 1200))
    return many | words


@functools.cache
def language_codes(code: str) -> st.SearchStrategy[str]:
    return st.sampled_from([code] * 12 + [code.upper(), "auto", "", "xx", code * 40])


@functools.cache
def libre_fields(target: Target) -> dict[str, st.SearchStrategy[Any]]:
    return {"q": mostly(text_items() | st.lists(text_items(), max_size=4), at_the_limits()),
            "source": language_codes(target.source), "target": language_codes(target.target),
            "format": st.sampled_from(["text"] * 4 + ["html"]), "alternatives": st.integers(0, 3)}


@functools.cache
def native_fields(target: Target) -> dict[str, st.SearchStrategy[Any]]:
    return {"texts": mostly(st.lists(text_items(), max_size=4), at_the_limits()),
            "source": language_codes(target.source), "target": language_codes(target.target),
            "beam_size": st.none() | st.integers(1, 6), "n_best": st.integers(1, 3),
            "length_penalty": st.floats(0, 2), "max_len_a": st.floats(0, 2),
            "max_len_b": st.integers(1, 60), "replace_unk": st.booleans(),
            "return_scores": st.booleans(), "return_tokens": st.booleans(),
            "return_attention": st.booleans()}


# ---------------------------------------------------------------- keys, headers, bodies

@functools.cache
def header_bytes() -> st.SearchStrategy[bytes]:
    """Random header bytes: binary, UTF-8 of any text, latin-1."""
    latin1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=30)
    return st.one_of(st.binary(max_size=40), unicode_text(20).map(utf8),
                     latin1.map(lambda text: text.encode("latin-1")))


@st.composite
def header_key(draw: st.DrawFn, key: str) -> bytes:
    """Mostly the valid key; else a wrong, empty or random one."""
    roll = draw(st.integers(0, 9))
    if roll < 6:
        return key.encode()
    if roll < 8:
        return draw(st.sampled_from([b"wrong-key", b"", key.upper().encode(), b"Bearer",
                                     key.encode() * 10_000]))
    return draw(header_bytes())


@st.composite
def body_key(draw: st.DrawFn, key: str) -> Any:
    roll = draw(st.integers(0, 9))
    if roll < 6:
        return key
    if roll < 8:
        return draw(st.sampled_from(["wrong-key", "", key + "\ud800", key * 100]))
    return draw(hostile_values())


@st.composite
def credentials(draw: st.DrawFn, key: str) -> tuple[dict[str, bytes], Any, str]:
    """(headers, the body's api_key or MISSING, query string) of one way to send a key."""
    place = draw(st.sampled_from(["x-api-key", "x-api-key", "bearer", "body", "body", "both",
                                  "scheme", "query", "none"]))
    value = draw(header_key(key))
    if place == "x-api-key":
        return {"x-api-key": value}, MISSING, ""
    if place == "bearer":
        return {"authorization": b"Bearer " + value}, MISSING, ""
    if place == "scheme":
        return {"authorization": draw(header_bytes()) + b" " + value}, MISSING, ""
    if place in ("body", "both"):
        headers = {"x-api-key": value} if place == "both" else {}
        return headers, draw(body_key(key)), ""
    if place == "query":
        return {}, MISSING, "?api_key=" + quote(value)
    return {}, MISSING, ""


@functools.cache
def content_types() -> st.SearchStrategy[bytes | None]:
    listed = st.sampled_from(CONTENT_TYPES).map(lambda t: None if t is None else t.encode())
    return listed | unicode_text(30).map(utf8)


def form_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value, allow_nan=True)


def form_pairs(body: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """Form fields as LibreTranslate takes them: a list q is a repeated field."""
    pairs = []
    for key, value in body.items():
        values = value if key == "q" and isinstance(value, list) else [value]
        pairs += [(utf8(key), utf8(form_text(item))) for item in values]
    return pairs


def urlencoded(body: dict[str, Any]) -> bytes:
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in form_pairs(body)).encode()


def multipart(body: dict[str, Any], files: bool = False) -> bytes:
    """multipart/form-data; with ``files`` every field is sent as an uploaded file."""
    filename = b'; filename="f.txt"\r\nContent-Type: text/plain' if files else b""
    parts = [b'--%b\r\nContent-Disposition: form-data; name="%b"%b\r\n\r\n%b\r\n'
             % (BOUNDARY, key, filename, value) for key, value in form_pairs(body)]
    return b"".join(parts) + b"--%b--\r\n" % BOUNDARY


def json_bytes(body: Any, encoding: str = "ascii") -> bytes:
    """JSON with NaN/Infinity literals where the values have them; "ascii" escapes everything,
    the others write the characters (lone surrogates as invalid bytes)."""
    text = json.dumps(body, allow_nan=True, ensure_ascii=encoding == "ascii")
    return text.encode("utf-8" if encoding == "ascii" else encoding, "surrogatepass")


@st.composite
def encoded(draw: st.DrawFn, body: dict[str, Any], forms: bool) -> tuple[bytes | None, bytes]:
    """(content type, bytes) of the body: JSON in some encoding or, with ``forms``, a form;
    now and then under another content type."""
    kinds = ["ascii", "ascii", "utf-8", "utf-16"] + (["form", "multipart"] if forms else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "form":
        content_type, content = b"application/x-www-form-urlencoded", urlencoded(body)
    elif kind == "multipart":
        content_type = b"multipart/form-data; boundary=" + BOUNDARY
        content = multipart(body, files=draw(st.integers(0, 4)) == 4)
    else:
        content_type, content = b"application/json", json_bytes(body, kind)
    if draw(st.integers(0, 5)) == 5:
        content_type = draw(content_types())
    return content_type, content


def chunked() -> st.SearchStrategy[bool]:
    return st.integers(0, 4).map(lambda n: n == 4)


def with_type(headers: dict[str, bytes], content_type: bytes | None) -> dict[str, bytes]:
    return headers if content_type is None else {**headers, "content-type": content_type}


# ---------------------------------------------------------------- raw bodies

@st.composite
def mutated_json(draw: st.DrawFn, target: Target) -> bytes:
    """A valid body's JSON truncated, with bytes inserted, or a field set to a literal that is
    not valid here (NaN, Infinity, a 5000-digit integer, ...)."""
    name = draw(st.sampled_from(["q", "source", "alternatives", "beam_size", "api_key"]))
    text = json.dumps(target.body(**{name: "@@"}))
    position = draw(st.integers(0, len(text)))
    kind = draw(st.sampled_from(["truncate", "insert", "literal", "trailing", "bom"]))
    if kind == "truncate":
        return text[:position].encode()
    if kind == "insert":
        return text[:position].encode() + draw(st.binary(max_size=20)) + text[position:].encode()
    if kind == "trailing":
        return text.encode() + draw(st.sampled_from([b"x", b"{}", b",", b"\x00", b" 1"]))
    if kind == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    return text.replace('"@@"', draw(st.sampled_from(LITERALS))).encode()


@st.composite
def invalid_utf8_json(draw: st.DrawFn, target: Target) -> bytes:
    text = json.dumps(target.body(q="@@")).encode()
    return text.replace(b"@@", b"a" + draw(st.sampled_from(INVALID_UTF8)) + b"b")


@st.composite
def deep_json(draw: st.DrawFn, target: Target) -> bytes:
    """Lists or objects nested up to 100,000 deep, alone or as the value of q."""
    depth = draw(st.integers(1, 100) | st.integers(100, 100_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    nested = opener * depth + "1" + closer * depth
    if draw(st.booleans()):
        nested = json.dumps(target.body(q="@@")).replace('"@@"', nested)
    return nested.encode()


# ---------------------------------------------------------------- requests

def translate_request(draw: st.DrawFn, target: Target, path: str,
                      fields: dict[str, st.SearchStrategy[Any]], forms: bool) -> Req:
    """A POST to a translate endpoint: fields (some hostile), a key somewhere, an encoding."""
    headers, key, query = draw(credentials(target.api_key))
    body = draw(body_of(fields))
    if key is not MISSING:
        body["api_key"] = key
    content_type, content = draw(encoded(body, forms=forms))
    return Req("POST", path + query, with_type(headers, content_type), content, draw(chunked()))


@st.composite
def libre_requests(draw: st.DrawFn, target: Target) -> Req:
    return translate_request(draw, target, "/translate", libre_fields(target), forms=True)


@st.composite
def native_requests(draw: st.DrawFn, target: Target) -> Req:
    forms = draw(st.integers(0, 9)) == 9          # now and then a form the endpoint refuses
    return translate_request(draw, target, "/v1/translate", native_fields(target), forms)


@st.composite
def raw_requests(draw: st.DrawFn, target: Target) -> Req:
    path = draw(st.sampled_from(["/translate", "/translate", "/v1/translate", "/detect",
                                 "/admin/reload"]))
    content = draw(st.one_of(st.binary(max_size=2000), mutated_json(target),
                             invalid_utf8_json(target), deep_json(target)))
    content_type = draw(st.just(b"application/json") | content_types())
    headers, _, query = draw(credentials(target.api_key))
    return Req("POST", path + query, with_type(headers, content_type), content, draw(chunked()))


@functools.cache
def random_paths() -> st.SearchStrategy[str]:
    prefixes = st.sampled_from(["/", "/static/", "/v1/", "/admin/", "/translate/"])
    return st.builds(lambda prefix, text: prefix + quote(utf8(text), safe="/"), prefixes,
                     unicode_text(30))


@functools.cache
def query_strings() -> st.SearchStrategy[str]:
    pairs = st.lists(st.tuples(unicode_text(10), unicode_text(20)), max_size=3)
    encoded_pairs = pairs.map(lambda items: "?" + "&".join(
        f"{quote(utf8(k))}={quote(utf8(v))}" for k, v in items))
    raw = unicode_text(30).map(lambda text: "?" + quote(utf8(text), safe="=&"))
    return st.just("") | encoded_pairs | raw


@functools.cache
def any_header(target: Target) -> st.SearchStrategy[bytes]:
    keys = st.sampled_from([target.api_key, target.admin_key, "Bearer " + target.api_key,
                            "application/json", "multipart/form-data", "100-continue",
                            "websocket", "close", "bytes=0-10", "bytes=5-1", "*"]
                           ).map(str.encode)
    return keys | header_bytes()


@st.composite
def route_requests(draw: st.DrawFn, target: Target) -> Req:
    method = draw(st.sampled_from(METHODS))
    path = draw(st.sampled_from(KNOWN_PATHS) | random_paths()) + draw(query_strings())
    headers = draw(st.dictionaries(st.sampled_from(HEADER_NAMES), any_header(target),
                                   max_size=3))
    content = draw(st.sampled_from([b"", json_bytes(target.body())]) | st.binary(max_size=200))
    return Req(method, path, headers, content)


@st.composite
def admin_requests(draw: st.DrawFn, target: Target) -> Req:
    method = draw(st.sampled_from(["POST"] * 4 + ["GET", "PUT"]))
    query = draw(st.sampled_from(["", "", "?force=false", "?force=true", "?force=maybe"])
                 | query_strings())
    value = draw(header_key(target.admin_key))
    place = draw(st.sampled_from(["x-admin-key", "x-admin-key", "bearer", "x-api-key", "none"]))
    headers = {"x-admin-key": value} if place == "x-admin-key" else {}
    if place == "bearer":
        headers["authorization"] = b"Bearer " + value
    elif place == "x-api-key":
        headers["x-api-key"] = value
    content = draw(st.sampled_from([b"", b"{}"]) | st.binary(max_size=100))
    return Req(method, "/admin/reload" + query, headers, content)


def request_groups(target: Target) -> dict[str, st.SearchStrategy[Req]]:
    return {"libre": libre_requests(target), "native": native_requests(target),
            "raw": raw_requests(target), "routes": route_requests(target),
            "admin": admin_requests(target)}


# ---------------------------------------------------------------- sending and checking

class ServerGone(BaseException):
    """The server exited or stopped answering: the fuzzing stops (not shrunk by hypothesis)."""


class StopShrinking(BaseException):
    """Shrinking a failure took SHRINK_SECONDS: the run ends with the smallest example yet."""


def endpoint_of(path: str) -> str:
    path = path.split("?", 1)[0]
    if path in KNOWN_PATHS:
        return path
    return "/static/*" if path.startswith("/static/") else "other"


def json_error(response: httpx.Response) -> bool:
    """Whether the body is a JSON object with a non-empty "error" string."""
    try:
        data = response.json()
    except ValueError:
        return False
    error = data.get("error") if isinstance(data, dict) else None
    return isinstance(error, str) and bool(error.strip())


def error_needs_json(method: str, path: str, status: int) -> bool:
    """4xx/503 answers of the app's routes are JSON errors (not the page, static, metrics)."""
    if method == "HEAD" or not (400 <= status < 500 or status == 503):
        return False
    return status == 503 or not (path in ("/", "/metrics") or path.startswith("/static/"))


def problem_of(req: Req, response: httpx.Response) -> str | None:
    """What is wrong with the response, None if nothing."""
    status = response.status_code
    if status >= 500 and status != 503:
        return f"status {status}"
    if status == 503 and "retry-after" not in response.headers:
        return "503 without Retry-After"
    if error_needs_json(req.method, response.request.url.path, status) \
            and not json_error(response):
        return f"{status} without a JSON error"
    return None


@dataclass
class Fuzzer:
    client: httpx.Client
    url: str
    process: subprocess.Popen | None
    group: str = "setup"
    by_endpoint: defaultdict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter))
    by_status: Counter[str] = field(default_factory=Counter)
    by_group: Counter[str] = field(default_factory=Counter)
    shrinking: Counter[str] = field(default_factory=Counter)   # sent while shrinking, by group
    replaying: bool = False           # after a new failure: hypothesis shrinks and replays
    shrink_until: float = 0.0         # time.monotonic() when shrinking stops
    new_failure: str = ""             # signature of the failure being shrunk
    not_sent: Counter[str] = field(default_factory=Counter)
    protocol_rejections: int = 0      # uvicorn's plain-text 400 for bytes it cannot parse
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)
    quiet: set[str] = field(default_factory=set)   # known failures: recorded, not raised

    @property
    def sent(self) -> int:
        return self.by_status.total()

    def send(self, req: Req) -> httpx.Response | str | None:
        """The response, the name of the transport error, or None when httpx refused to
        send the request (counted apart)."""
        try:
            outcome: httpx.Response | str = self.client.request(
                req.method, self.url + req.path, headers=req.headers,
                content=iter([req.body]) if req.chunked else req.body)
        except (httpx.LocalProtocolError, httpx.InvalidURL) as error:   # refused by httpx
            self.not_sent[f"{type(error).__name__}: {error}"[:80]] += 1
            return None
        except httpx.TransportError as error:
            outcome = type(error).__name__
        status = outcome if isinstance(outcome, str) else str(outcome.status_code)
        self.by_endpoint[endpoint_of(req.path)][status] += 1
        self.by_status[status] += 1
        (self.shrinking if self.replaying else self.by_group)[self.group] += 1
        return outcome

    def check(self, req: Req) -> None:
        """Send the request and check the properties; AssertionError on a new failure (for
        hypothesis to shrink), ServerGone when the server is no longer there."""
        if self.replaying and time.monotonic() > self.shrink_until:
            raise StopShrinking(self.new_failure)
        outcome = self.send(req)
        if outcome is None:
            return
        if isinstance(outcome, str):
            problem = f"no response ({outcome})"
        else:
            problem = self.classify(req, outcome)
        if not self.alive(outcome):
            self.record(req, outcome, "the server died")
            raise ServerGone("the server died")
        if problem is None:
            return
        signature = self.record(req, outcome, problem)
        if signature not in self.quiet:
            if not self.replaying:
                self.replaying, self.new_failure = True, signature
                self.shrink_until = time.monotonic() + SHRINK_SECONDS
            raise AssertionError(signature)

    def classify(self, req: Req, response: httpx.Response) -> str | None:
        if response.status_code == 400 and response.content == UVICORN_INVALID:
            self.protocol_rejections += 1
            return None
        return problem_of(req, response)

    def alive(self, outcome: httpx.Response | str) -> bool:
        """The started server's process runs; a server at --url answers /health after a
        request that got no response."""
        if self.process is not None:
            return self.process.poll() is None
        if isinstance(outcome, httpx.Response):
            return True
        try:
            return self.client.get(self.url + "/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def record(self, req: Req, outcome: httpx.Response | str, problem: str) -> str:
        """Keep the failing request (the latest, so the shrunk one); its signature."""
        signature = f"{self.group}: {req.method} {endpoint_of(req.path)}: {problem}"
        previous = self.failures.get(signature, {})
        self.failures[signature] = {
            "signature": signature, "group": self.group, "problem": problem,
            "count": previous.get("count", 0) + 1, "request": req.record(),
            "response": response_record(outcome)}
        return signature


def response_record(outcome: httpx.Response | str) -> dict[str, Any] | str:
    if isinstance(outcome, str):
        return outcome
    return {"status": outcome.status_code,
            "content_type": outcome.headers.get("content-type"),
            "retry_after": outcome.headers.get("retry-after"),
            "body_head": outcome.content[:300].decode("utf-8", "backslashreplace")}


# ---------------------------------------------------------------- running

def run_group(fuzzer: Fuzzer, strategy: st.SearchStrategy[Req], examples: int, seed_value: int,
              shrink: bool) -> str:
    """One hypothesis run; "passed" or what ended it (a new failure, after shrinking)."""
    phases = [Phase.generate, Phase.shrink] if shrink else [Phase.generate]
    fuzzer.quiet, fuzzer.replaying = set(fuzzer.failures), False

    @seed(seed_value)
    @settings(max_examples=examples, deadline=None, database=None, phases=phases,
              suppress_health_check=list(HealthCheck), derandomize=False,
              verbosity=Verbosity.quiet, report_multiple_bugs=False)
    @given(strategy)
    def fuzz(req: Req) -> None:
        fuzzer.check(req)

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Generating overly large repr")
            fuzz()
    except StopShrinking as stopped:
        return f"failed (shrinking stopped after {SHRINK_SECONDS} s): {stopped}"
    except Exception as error:   # hypothesis re-raises the (shrunk) failure
        return f"failed: {str(error).splitlines()[0][:200]}"
    return "passed"


def sweep(fuzzer: Fuzzer, target: Target) -> None:
    """Every method on every known path once, with valid keys and a valid body."""
    fuzzer.group = "sweep"
    headers = {"x-api-key": target.api_key.encode(), "x-admin-key": target.admin_key.encode(),
               "content-type": b"application/json"}
    for method, path in itertools.product(METHODS, KNOWN_PATHS):
        body = target.native_body() if path == "/v1/translate" else target.body()
        with contextlib.suppress(AssertionError):   # recorded; the sweep goes on
            fuzzer.check(Req(method, path, headers, json_bytes(body)))
        fuzzer.replaying = False
    print(f"  sweep: {fuzzer.by_group['sweep']} requests, {len(fuzzer.failures)} failures",
          flush=True)


def fuzz_groups(fuzzer: Fuzzer, groups: dict[str, st.SearchStrategy[Req]], per_group: int,
                args: argparse.Namespace) -> dict[str, list[str]]:
    """Each group until it has sent ``per_group`` generated requests, not counting shrinking
    (or MAX_ROUNDS runs, each with the next seed); the outcome of every run."""
    outcomes: dict[str, list[str]] = {name: [] for name in groups}
    for name, strategy in groups.items():
        fuzzer.group = name
        for round_number in range(MAX_ROUNDS):
            remaining = per_group - fuzzer.by_group[name]
            if remaining <= 0:
                break
            outcome = run_group(fuzzer, strategy, remaining, args.seed + round_number,
                                not args.no_shrink)
            outcomes[name].append(outcome)
            print(f"{name:>7} run {round_number}: {outcome} ({fuzzer.by_group[name]} requests, "
                  f"{fuzzer.shrinking[name]} shrinking)", flush=True)
    return outcomes


def discover_target(fuzzer: Fuzzer, args: argparse.Namespace) -> Target:
    response = fuzzer.send(Req("GET", "/languages", {}))
    if not isinstance(response, httpx.Response) or response.status_code != 200:
        raise SystemExit(f"error: GET /languages failed: {response_record(response or '-')}")
    for language in response.json():
        if language["targets"]:
            return Target(language["code"], language["targets"][0], args.api_key,
                          args.admin_key)
    raise SystemExit("error: the server serves no language pair")


def final_checks(fuzzer: Fuzzer, target: Target) -> dict[str, str]:
    """/ready and one normal translation after the fuzzing; their status (or error name)."""
    fuzzer.group = "after"
    ready = fuzzer.send(Req("GET", "/ready", {}))
    translation = fuzzer.send(Req("POST", "/translate", {"content-type": b"application/json"},
                                  json_bytes(target.body())))
    return {"ready": status_of(ready), "translation": status_of(translation)}


def status_of(outcome: httpx.Response | str | None) -> str:
    if isinstance(outcome, httpx.Response):
        return str(outcome.status_code)
    return outcome or "not sent"


def start_server(args: argparse.Namespace, log: IO[bytes] | None
                 ) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "scripts.serve", "--models-dir", args.models_dir,
               "--port", str(port), "--host", "127.0.0.1"]
    env = {**os.environ, "S2S_API_KEYS": args.api_key, "S2S_ADMIN_API_KEY": args.admin_key,
           "S2S_LOG_LEVEL": "warning", "S2S_REQUEST_TIMEOUT_S": "10"}
    process = subprocess.Popen(command, env=env, stdout=log,
                               stderr=None if log is None else subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_ready(process, url)
    return process, url


def fuzz_server(args: argparse.Namespace, url: str, process: subprocess.Popen | None
                ) -> dict[str, Any]:
    with httpx.Client(timeout=TIMEOUT_S) as client:
        fuzzer = Fuzzer(client, url, process)
        target = discover_target(fuzzer, args)
        groups = request_groups(target)
        per_group = max(args.examples, math.ceil(args.total / len(groups)))
        started = time.perf_counter()
        try:
            sweep(fuzzer, target)
            outcomes = fuzz_groups(fuzzer, groups, per_group, args)
        except ServerGone as gone:
            outcomes = {"stopped": [f"server gone: {gone}"]}
        elapsed = time.perf_counter() - started
        after = final_checks(fuzzer, target)
    return {"pair": f"{target.source}-{target.target}", "examples_per_group": per_group,
            "fuzz_seconds": round(elapsed, 1),
            "requests_per_s": round(fuzzer.sent / elapsed, 1) if elapsed else None,
            "total_requests": fuzzer.sent, "by_group": dict(fuzzer.by_group),
            "shrinking_by_group": dict(fuzzer.shrinking),
            "group_runs": outcomes, "by_status": dict(fuzzer.by_status),
            "by_endpoint": {k: dict(v) for k, v in sorted(fuzzer.by_endpoint.items())},
            "not_sent": dict(fuzzer.not_sent), "protocol_rejections": fuzzer.protocol_rejections,
            "failures": list(fuzzer.failures.values()), "after": after}


def run(args: argparse.Namespace, log: IO[bytes] | None) -> dict[str, Any]:
    if args.url:
        return fuzz_server(args, args.url.rstrip("/"), None)
    process, url = start_server(args, log)
    try:
        return fuzz_server(args, url, process)
    finally:
        stop_server(process)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(open(args.server_log, "wb")) if args.server_log else None
        report = run(args, log)
    after = report["after"]
    failed = bool(report["failures"]) or after != {"ready": "200", "translation": "200"}
    result = {"url": args.url, "models_dir": None if args.url else args.models_dir,
              "seed": args.seed, "total_asked": args.total, **report, "ok": not failed,
              "machine": machine_info()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for failure in report["failures"]:
        print(f"FAILURE x{failure['count']}: {failure['signature']}\n  request: "
              f"{failure['request']}\n  response: {failure['response']}")
    print(f"{report['total_requests']} requests, statuses {report['by_status']}, "
          f"{len(report['failures'])} failures, ready afterwards: {after['ready']} "
          f"(translation afterwards: {after['translation']}); wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
