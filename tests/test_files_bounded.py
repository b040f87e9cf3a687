"""Files and HTML in bounded time, off the request path: rendering linear in runs of inline
tags and in nesting depth, the tokenizer linear on unclosed "<!--" and the like, the pair
checked before an upload is parsed, long paragraphs cut at sentence boundaries into pieces
within a request's limits (instead of 413), and parsing/rendering never on the event loop."""

from __future__ import annotations

import gc
import random
import sys
import threading
import time
from html import unescape
from html.parser import HTMLParser

import pytest

from service.formats.markup import AlignedText, parse_html
from service.serving.markup_translation import aligned_text
from service.serving.pipeline import TextResult
from tests.test_service_formats import (
    assert_json_error,
    files_setup,
    html_request,
    run,
    translate_and_download,
    upload,
)

TOKENIZE = sys.modules["service.formats.markup.tokenize"]


def identity(segment: str) -> AlignedText:
    """A segment translated into itself (word pieces, no attention: aligned in proportion)."""
    pieces = ["\u2581" + word for word in segment.split()]
    return AlignedText(pieces, pieces, [], segment)


def cpu_seconds(html: str) -> float:
    """CPU time to parse html and render it from identity translations (tags checked)."""
    start = time.process_time()
    fragment = parse_html(html)
    out = fragment.render([identity(segment) for segment in fragment.segments])
    spent = time.process_time() - start
    assert "".join(unescape(out).split()) == "".join(unescape(html).split())
    return spent


# ------------------------------------------------------------------ rendering and parsing


# Inputs that were quadratic, as (prefix, repeated unit, suffix, repeats): 4x the repeats is
# about 96 KB of markup, which took 2-18 s of CPU before (the spaced inline tags 18 s).
PATHOLOGICAL = {
    "spaced_inline_tags": ("<p>Wort ", "<b> ", "</p>", 6_000),
    "spaced_closed_tags": ("<p>", "<b> ", "Wort</p>", 3_000),  # closed below
    "nested_words": ("<p>", "<i>Wort ", "</p>", 3_000),
    "unclosed_comments": ("<p>Wort</p>", "<!--", "", 5_000),
    "comments_ended_as_text": ("<p>Wort</p>", "<!--x>", "", 4_000),
    "unclosed_end_tags": ("<p>Wort</p>", "</x", "", 8_000),
    "unclosed_sections": ("<p>Wort</p>", "<![CDATA[x>", "", 2_200),
}


def pathological(name: str, scale: int) -> str:
    prefix, unit, suffix, repeats = PATHOLOGICAL[name]
    count = repeats * scale
    if name == "spaced_closed_tags":
        return prefix + unit * count + "Wort" + " </b>" * count + "</p>"
    return prefix + unit * count + suffix


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_pathological_html_parses_and_renders_in_linear_time(name):
    gc.disable()  # collections of the growing heap add noise to small timings
    try:
        small = min(cpu_seconds(pathological(name, 1)) for _ in range(3))
        large = min(cpu_seconds(pathological(name, 4)) for _ in range(2))
    finally:
        gc.enable()
    assert large < 10 * max(small, 0.02)  # linear: 4x; quadratic: 16x
    assert large < 3.0  # ~0.1-1 s here on a loaded 2-core machine


def _old_tokenize(html: str):
    """The tokenizer as it was: the stdlib's own comment and marked-section parsing, the
    whole input fed."""
    import _markupbase

    recorder = TOKENIZE._Recorder

    def marked(self, i, report=1):
        try:
            return _markupbase.ParserBase.parse_marked_section(self, i, report)
        except AssertionError:
            end = self.rawdata.find(">", i + 3)
            if end < 0:
                return -1
            self.unknown_decl(self.rawdata[i + 3:end])
            return end + 1

    saved = recorder.parse_comment, recorder.parse_marked_section
    recorder.parse_comment, recorder.parse_marked_section = HTMLParser.parse_comment, marked
    try:
        return TOKENIZE._tokenize(html)
    finally:
        recorder.parse_comment, recorder.parse_marked_section = saved


def _merged(tokens):
    out = []
    for token in tokens:
        if out and token.kind == "text" == out[-1].kind:
            out[-1] = TOKENIZE.Token("text", "", out[-1].raw + token.raw)
        else:
            out.append(token)
    return out


def test_the_bounded_tokenizer_gives_the_stdlib_tokens():
    pieces = ["<", ">", "!", "-", "--", "<!--", "-->", "<![CDATA[", "]]>", "]", "<?", "</",
              "a", " ", "\n", "&", ";", "amp", "<b>", "</b>", "<script>", "</script>", "'",
              '"', "=", "<p ", "<![if", "<!x", "<!doctype", "--!>"]
    rng = random.Random(7)
    for _ in range(3000):
        html = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        tokens = TOKENIZE.tokenize(html)
        assert "".join(token.raw for token in tokens) == html
        assert _merged(tokens) == _merged(_old_tokenize(html)), html


def test_sparse_attention_rows_place_as_the_dense_ones():
    html = "<p>Das ist <b>gut</b>. Und <i>das</i> auch.</p>"
    fragment = parse_html(html)
    words = [["\u2581Das", "\u2581ist", "\u2581gut."], ["\u2581Und", "\u2581das", "\u2581auch."]]
    one_hot = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    sparse = AlignedText(words[0] + words[1], words[1] + words[0], one_hot + one_hot, "",
                         [3, 3, 3, 0, 0, 0])
    dense = AlignedText(words[0] + words[1], words[1] + words[0],
                        [[0, 0, 0] + row for row in one_hot] + [row + [0, 0, 0] for row in one_hot],
                        "")
    assert fragment.render([sparse]) == fragment.render([dense])
    assert fragment.render([sparse]) == "<p>Und <i>das</i> auch. Das ist <b>gut</b>.</p>"


def test_aligned_text_keeps_rows_as_long_as_their_sentence():
    from s2s.inference.translator import Translation

    sentences = [Translation(f"s{n}", 0.0, ["\u2581a", "\u2581b"], ["\u2581x", "\u2581y"],
                             [[0.9, 0.1], [0.2, 0.8]]) for n in range(500)]
    aligned = aligned_text(TextResult([["x y"] * 500], ["x y"] * 500, sentences))
    assert len(aligned.source_pieces) == 1000 and len(aligned.attention) == 1000
    assert max(len(row) for row in aligned.attention) == 2
    assert aligned.offsets[:4] == [0, 0, 2, 2]


# ------------------------------------------------------------------ long paragraphs


@pytest.mark.parametrize("text", [
    "Das ist ein Satz. " * 340,                            # 6,120 characters, one line
    " ".join(f"Satz {n} ist kurz." for n in range(300)),   # 300 sentences in a line
    "Kopf\n" + "Ein Satz hier. " * 400 + "\n\nFuss.",      # lines around a long one
])
def test_split_long_puts_the_line_structure_back(text):
    from service.formats.text import split_long, split_text

    pieces = split_long(text, 500, 20)
    assert len(pieces) > 1
    lines: list[list[str]] = []
    for piece in pieces:
        assert piece.sentences <= 20 and len(piece.text) <= 500
        mine = [list(line) for line in split_text(piece.text)]
        if piece.continues and lines:
            lines[-1] += mine.pop(0)
        lines += mine
    assert lines == split_text(text)


def _fake_rows(fake, first: int = 0):
    """Texts the fake translator got from its first-th batch on, one per sentence."""
    return [text for batch in fake.batches[first:] for text in batch]


@pytest.mark.parametrize("name,data", [
    ("paragraph.txt", ("Das ist ein Satz. " * 340).strip().encode() + b"\nEnde.\n"),
    ("sentences.txt", " ".join(f"Satz {n} ist kurz." for n in range(300)).encode()),
    ("cue.srt", b"1\n00:00:01,000 --> 00:00:02,000\n"
                + " ".join(f"Satz {n} ist kurz." for n in range(300)).encode()
                + b"\nZweite Zeile.\n"),
    ("page.html", b"<html><body><p>" + b"Das ist <b>ein</b> Satz. " * 340 + b"</p></body></html>"),
])
def test_long_paragraphs_of_files_are_translated_in_pieces(tmp_path, name, data):
    settings, factory, fake = files_setup(tmp_path)

    async def scenario(client):
        return len(fake.batches), await translate_and_download(client, name, data)

    first, (_, _, download) = run(settings, factory, scenario)
    assert download.status_code == 200
    out = download.content.decode()
    sentences = _fake_rows(fake, first)
    assert max(map(len, fake.batches)) <= settings.max_request_sentences
    assert len(sentences) >= 300
    assert out.count("fake(") == len(sentences)
    if name.endswith(".txt"):   # one line stays one line, its sentences joined by a space
        assert out.split("\n")[0].startswith("fake(") and out.count("\n") == data.count(b"\n")
    if name.endswith(".html"):
        assert out.count("<b>") == 340 and out.startswith("<html><body><p>")


# ------------------------------------------------------------------ the pair first


def test_an_unknown_pair_is_refused_before_the_file_is_parsed(tmp_path, monkeypatch):
    settings, factory, _ = files_setup(tmp_path)
    import service.formats.markup.render as render

    parsed: list[str] = []
    original = render.tokenize
    monkeypatch.setattr(render, "tokenize", lambda html: parsed.append(html) or original(html))
    files = tmp_path / "files"

    async def scenario(client):
        unknown = await client.post("/translate_file", **upload(
            "c.html", b"<!--" * 20_000, source="de", target="fr"))
        auto = await client.post("/translate_file", **upload(
            "c.html", b"<p>Hallo</p>", source="auto", target="fr"))
        blank = await client.post("/translate_file", **upload(
            "e.txt", b"\n  \n", source="xx", target="en"))
        return unknown, auto, blank

    started = time.monotonic()
    unknown, auto, blank = run(settings, factory, scenario)
    assert time.monotonic() - started < 10
    for response in (unknown, auto, blank):
        assert_json_error(response, 400)
        assert response.json()["kind"] == "unknown_pair"
    assert parsed == []
    assert not [path for path in files.glob("*") if not path.name.startswith(".")]


def watch_file_waits(monkeypatch, wait_s: float | None) -> tuple[list[int], list[str]]:
    """Every count a file's wait is checked with, the queue's expected wait made ``wait_s``;
    and the uploads parsed."""
    import service.http.files as files
    from service.serving.batcher import Batcher

    counts: list[int] = []
    parsed: list[str] = []
    original_check, original_parse = Batcher.check_wait, files.parse_upload

    def check_wait(self, caller, count, express, whole=False, offer=True):
        counts.append(count)
        return original_check(self, caller, count, express, whole, offer)

    monkeypatch.setattr(Batcher, "check_wait", check_wait)
    monkeypatch.setattr(Batcher, "expected_wait_s", lambda self, *args: wait_s)
    monkeypatch.setattr(files, "parse_upload",
                        lambda name, *args: parsed.append(name) or original_parse(name, *args))
    return counts, parsed


def test_a_backlog_refuses_a_file_before_it_is_parsed(tmp_path, monkeypatch):
    settings, factory, _ = files_setup(tmp_path)
    counts, parsed = watch_file_waits(monkeypatch, 60.0)

    async def scenario(client):
        return await client.post("/translate_file", **upload("a.txt", b"Hallo Welt.\n" * 50))

    refused = run(settings, factory, scenario)
    assert_json_error(refused, 503)
    assert int(refused.headers["Retry-After"]) == 60
    assert counts == [1] and parsed == []


def test_a_file_is_admitted_whole_not_chunk_by_chunk(tmp_path, monkeypatch):
    """A file cut into several chunks is checked once with all its sentences (then once
    more with one before it was parsed), so an admitted file is never refused halfway."""
    settings, factory, _ = files_setup(tmp_path, max_request_sentences=16)
    counts, parsed = watch_file_waits(monkeypatch, None)
    data = "".join(f"Satz {n} ist hier. Noch einer.\n" for n in range(40)).encode()

    async def scenario(client):
        return await translate_and_download(client, "a.txt", data)

    (_, _, download) = run(settings, factory, scenario)
    assert download.status_code == 200 and parsed == ["a.txt"]
    assert counts == [1, 80]


def test_a_files_chunks_are_queued_in_the_turn_it_was_admitted_with(tmp_path, monkeypatch):
    """Every chunk of a file is queued with the place its admission gave it, so requests
    that arrive between its chunks do not go before the rest of the file."""
    from service.serving.batcher import Batcher

    settings, factory, _ = files_setup(tmp_path, max_request_sentences=16)
    places = []
    original_submit = Batcher.submit

    def submit(self, sources, options, caller="", admission=None):
        places.append(admission.place)
        return original_submit(self, sources, options, caller, admission)

    monkeypatch.setattr(Batcher, "submit", submit)
    data = "".join(f"Satz {n} ist hier. Noch einer.\n" for n in range(40)).encode()

    async def scenario(client):
        return await translate_and_download(client, "a.txt", data)

    (_, _, download) = run(settings, factory, scenario)
    assert download.status_code == 200 and len(places) > 1
    assert places[0] is not None and all(place == places[0] for place in places)


def test_an_upload_is_checked_unparsed_with_the_sentences_its_size_predicts(tmp_path,
                                                                             monkeypatch):
    """Before a file is parsed its wait is checked with the sentences that earlier files had
    per byte (one before any file was seen)."""
    settings, factory, _ = files_setup(tmp_path, max_request_sentences=16)
    counts, _ = watch_file_waits(monkeypatch, None)
    data = "".join(f"Satz {n} ist hier. Noch einer.\n" for n in range(40)).encode()

    async def scenario(client):
        await translate_and_download(client, "a.txt", data)
        return await translate_and_download(client, "b.txt", data + data)

    run(settings, factory, scenario)
    assert counts == [1, 80, 160, 160]


def test_a_file_with_nothing_to_translate_comes_back_as_it_is(tmp_path):
    settings, factory, fake = files_setup(tmp_path)
    html = b"<html><body><p>" + b"<!-- -->" * 4_000 + b"<br>\n" + b"<!--" * 12_000

    async def scenario(client):
        return (await translate_and_download(client, "c.html", html),
                await translate_and_download(client, "e.txt", b"\n \n"))

    (_, _, page), (_, _, text) = run(settings, factory, scenario)
    assert page.content == html and text.content == b"\n \n"
    assert _fake_rows(fake) in ([], ["Hello world."])  # the warm-up at most


# ------------------------------------------------------------------ off the event loop


def test_parsing_and_rendering_of_files_and_html_run_off_the_event_loop(tmp_path, monkeypatch):
    import service.formats.documents as documents
    import service.formats.markup.render as render
    import service.http.files as files

    settings, factory, _ = files_setup(tmp_path)
    on_loop: list[str] = []
    main = threading.main_thread()

    def watch(module, name, label):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            if threading.current_thread() is main:
                on_loop.append(label)
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    watch(files, "parse_upload", "parse_upload")
    watch(documents.Document, "rebuild", "rebuild")
    watch(render, "tokenize", "tokenize")
    watch(render.HtmlFragment, "render", "render")
    watch(render, "_render_segment", "render segment")

    async def scenario(client):
        answers = [await translate_and_download(client, name, data) for name, data in (
            ("a.txt", b"Hallo Welt. Wie geht's?\n"),
            ("a.srt", b"1\n00:00:01,000 --> 00:00:02,000\nHallo.\n"),
            ("a.html", b"<p>Hallo <b>Welt</b></p>"))]
        answers.append(await client.post("/translate", json=html_request("<p>Hallo <b>x</b></p>")))
        return answers

    *downloads, html = run(settings, factory, scenario)
    assert all(download.status_code == 200 for _, _, download in downloads)
    assert html.status_code == 200, html.text
    assert on_loop == []
