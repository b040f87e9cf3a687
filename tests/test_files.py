"""File translation pieces: parsing uploads, rebuilding translated files, the download store."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.formats.documents import SUPPORTED_FORMATS, FileError, FileTooLarge, parse_upload
from service.stores.files import FileStore, download_filename

SRT = (
    "1\r\n"
    "00:00:01,000 --> 00:00:02,500\r\n"
    "Hello there.\r\n"
    "\r\n"
    "2\r\n"
    "00:00:03,000 --> 00:00:04,000 X1:10 X2:20 Y1:30 Y2:40\r\n"
    "How are you?\r\n"
    "Fine, thanks.\r\n"
    "\r\n"
    "\r\n"
    "3\r\n"
    "00:00:05,000 --> 00:00:06,000\r\n"
    "\r\n"
    "4\r\n"
    "00:00:07,000 --> 00:00:08,000\r\n"
    "Bye.\r\n"
    "\r\n"
    "\r\n"
)


def upper(texts):
    return [t.upper() for t in texts]


# ------------------------------------------------------------------ txt


def test_txt_identity_round_trip_keeps_bytes():
    data = b"First line.\r\n\r\n  Indented line  \r\nLast\n\n\nno newline at end"
    doc = parse_upload("notes.txt", data, 10_000)
    assert doc.rebuild(doc.texts) == data


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab \t\r\n\u00e9\u3000."), max_size=60))
def test_txt_identity_round_trip_any_text(text):
    data = text.encode("utf-8")
    doc = parse_upload("x.txt", data, 10_000)
    assert doc.rebuild(doc.texts) == data


def test_txt_one_text_per_non_blank_line():
    doc = parse_upload("a.TXT", b"Hello.\n\n  World  \r\n", 100)
    assert (doc.kind, doc.text_format, doc.texts) == ("txt", "text", ["Hello.", "World"])


def test_txt_translation_line_breaks_use_the_line_ending():
    doc = parse_upload("a.txt", b"one\r\ntwo\r\n", 100)
    assert doc.rebuild(["eins\nzwei", "drei"]) == b"eins\r\nzwei\r\ndrei\r\n"


# ------------------------------------------------------------------ srt


def test_srt_index_and_timing_lines_unchanged_byte_for_byte():
    doc = parse_upload("movie.srt", SRT.encode(), 10_000)
    rebuilt = doc.rebuild(upper(doc.texts)).decode()
    kept = [line for line in SRT.split("\r\n") if line[:1].isdigit()]
    assert [line for line in rebuilt.split("\r\n") if line[:1].isdigit()] == kept


def test_srt_translations_replace_cue_texts():
    doc = parse_upload("movie.srt", SRT.encode(), 10_000)
    expected = SRT.replace("Hello there.", "HELLO THERE.").replace(
        "How are you?\r\nFine, thanks.", "HOW ARE YOU?\r\nFINE, THANKS.").replace("Bye.", "BYE.")
    assert doc.rebuild(upper(doc.texts)) == expected.encode()


def test_srt_cue_texts_extracted_with_multi_line_cues():
    doc = parse_upload("movie.srt", SRT.encode(), 10_000)
    assert (doc.kind, doc.text_format) == ("srt", "text")
    assert doc.texts == ["Hello there.", "How are you?\nFine, thanks.", "Bye."]


def test_srt_identity_round_trip_keeps_bytes():
    data = b"\xef\xbb\xbf" + SRT.replace("\r\n", "\n").encode() + b"\n\n"
    doc = parse_upload("movie.srt", data, 10_000)
    assert doc.rebuild(doc.texts) == data


def test_srt_cue_without_blank_line_before_next_cue():
    data = b"1\n00:00:01,000 --> 00:00:02,000\nA\n2\n00:00:03,000 --> 00:00:04,000\nB\n"
    assert parse_upload("s.srt", data, 1000).texts == ["A", "B"]


def test_srt_translation_blank_lines_dropped_inside_cue():
    data = b"1\n00:00:01,000 --> 00:00:02,000\nA\n\n2\n00:00:03,000 --> 00:00:04,000\nB\n"
    doc = parse_upload("s.srt", data, 1000)
    assert doc.rebuild(["x\n\ny", "z"]) == (
        b"1\n00:00:01,000 --> 00:00:02,000\nx\ny\n\n2\n00:00:03,000 --> 00:00:04,000\nz\n")


def test_srt_malformed_timing_names_the_cue():
    data = b"1\n00:00:01,000 --> 00:00:02,000\nA\n\n7\n00:00:03,000 -> 00:00:04,000\nB\n"
    with pytest.raises(FileError, match=r"cue 7 \(line 6\)"):
        parse_upload("s.srt", data, 1000)


def test_srt_text_where_a_cue_should_start_is_refused():
    data = b"1\n00:00:01,000 --> 00:00:02,000\nA\n\nstray text\n"
    with pytest.raises(FileError, match="cue 2"):
        parse_upload("s.srt", data, 1000)


# ------------------------------------------------------------------ html and common checks


def test_html_document_is_one_html_text():
    data = b"<!DOCTYPE html><html><body><p>Hello <b>world</b></p>\n</body></html>\n"
    doc = parse_upload("page.HTM", data, 1000)
    assert (doc.kind, doc.text_format, doc.texts) == ("html", "html", [data.decode()])
    assert doc.rebuild(["<p>Hallo</p>"]) == b"<p>Hallo</p>"


def test_unsupported_extension_lists_supported_formats():
    for name in ("report.pdf", "noext", ".txt", "", "dir.txt/file"):
        with pytest.raises(FileError, match=r"\.txt, \.html, \.htm, \.srt, \.docx, \.pptx"):
            parse_upload(name, b"hello", 100)
    assert SUPPORTED_FORMATS == (".txt", ".html", ".htm", ".srt", ".docx", ".pptx", ".odt",
                                 ".odp", ".epub")


def test_non_utf8_refused():
    with pytest.raises(FileError, match="not UTF-8"):
        parse_upload("a.txt", "Grüße".encode("latin-1"), 100)


def test_nul_refused():
    with pytest.raises(FileError, match="NUL"):
        parse_upload("a.txt", b"abc\x00def", 100)


def test_too_many_chars_refused():
    assert parse_upload("a.txt", ("é" * 10).encode(), 10).texts == ["é" * 10]
    with pytest.raises(FileTooLarge):
        parse_upload("a.txt", ("é" * 11).encode(), 10)
    with pytest.raises(FileTooLarge):
        parse_upload("a.txt", b"x" * 1_000_000, 10)   # refused before decoding


def test_utf8_bom_kept():
    data = b"\xef\xbb\xbfHello\n"
    doc = parse_upload("a.txt", data, 100)
    assert doc.texts == ["Hello"] and doc.rebuild(["Hallo"]) == b"\xef\xbb\xbfHallo\n"


def test_utf16_with_bom_accepted_and_rebuilt_as_utf8():
    doc = parse_upload("a.txt", "Grüße\r\n".encode("utf-16"), 100)
    assert doc.texts == ["Grüße"] and doc.rebuild(["Hi"]) == b"\xef\xbb\xbfHi\r\n"


def test_rebuild_needs_one_translation_per_text():
    doc = parse_upload("a.txt", b"a\nb\n", 100)
    with pytest.raises(ValueError):
        doc.rebuild(["x"])


# ------------------------------------------------------------------ store


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_download_filename_is_sanitized():
    assert download_filename("report.txt", "de") == "report.de.txt"
    assert download_filename("C:\\x\\My Report (final).HTML", "zh-Hans") == \
        "My_Report_final.zh-Hans.html"
    assert download_filename("../../.bashrc.srt", "../") == "bashrc.srt"
    assert download_filename("Übersicht.txt", "en") == "Ubersicht.en.txt"
    assert len(download_filename("a" * 500 + ".txt", "b" * 500)) <= 120


def test_store_save_open_round_trip(tmp_path):
    store = FileStore(tmp_path / "files", ttl_s=60, max_bytes=1000)
    name = store.save(b"Hallo\n", "report.txt", "de")
    path, filename = store.open(name)
    assert (path.read_bytes(), filename) == (b"Hallo\n", "report.de.txt")
    assert name.endswith(".txt") and len(name) == 26
    assert (tmp_path / "files").stat().st_mode & 0o777 == 0o700


def test_store_expired_file_not_served(tmp_path):
    clock = Clock()
    store = FileStore(tmp_path, ttl_s=60, max_bytes=1000, clock=clock)
    name = store.save(b"x", "a.txt", "de")
    clock.now += 59
    store.open(name)
    clock.now += 1
    with pytest.raises(FileNotFoundError):
        store.open(name)


@pytest.mark.parametrize("name", ["../etc/passwd", "/abs", "a/b", "%2e%2e", "a" * 300 + ".txt",
                                  "..", "", "x.txt", "A" * 22 + ".txt.name", "A" * 22 + ".pdf",
                                  "A" * 22 + ".txt\n", "../" + "A" * 19 + ".txt"])
def test_store_refuses_invalid_names(tmp_path, name):
    store = FileStore(tmp_path, ttl_s=60, max_bytes=1000)
    store.save(b"x", "a.txt", "de")
    with pytest.raises(FileNotFoundError):
        store.open(name)


def test_store_unknown_name_not_found(tmp_path):
    store = FileStore(tmp_path, ttl_s=60, max_bytes=1000)
    with pytest.raises(FileNotFoundError) as info:
        store.open("A" * 22 + ".txt")
    assert str(tmp_path) not in str(info.value)


def test_store_eviction_keeps_total_under_max_and_removes_oldest(tmp_path):
    clock = Clock()
    store = FileStore(tmp_path, ttl_s=3600, max_bytes=250, clock=clock)
    names = []
    for _ in range(3):
        names.append(store.save(b"x" * 100, "a.txt", "de"))
        clock.now += 1
    data_bytes = sum(p.stat().st_size for p in tmp_path.glob("*.txt"))
    assert data_bytes <= 250
    with pytest.raises(FileNotFoundError):
        store.open(names[0])
    assert [store.open(n)[0].read_bytes() for n in names[1:]] == [b"x" * 100] * 2


def test_store_refuses_file_over_max_bytes(tmp_path):
    store = FileStore(tmp_path, ttl_s=60, max_bytes=100)
    with pytest.raises(FileTooLarge):
        store.save(b"x" * 101, "a.txt", "de")
    assert not list(tmp_path.glob("*.txt"))


def test_store_cleanup_removes_only_expired_files(tmp_path):
    clock = Clock()
    store = FileStore(tmp_path, ttl_s=60, max_bytes=1000, clock=clock)
    old = [store.save(b"old", "a.srt", "de") for _ in range(2)]
    clock.now += 30
    new = store.save(b"new", "a.srt", "de")
    clock.now += 40
    assert store.cleanup() == 2
    assert store.open(new)[0].read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == sorted([".lock", new, new + ".name"])
    for name in old:
        with pytest.raises(FileNotFoundError):
            store.open(name)
