"""Office documents and e-books (.docx, .pptx, .odt, .odp, .epub) for /translate_file: every
kind of visible text translated, run formatting placed on the translation, untouched parts
byte-identical, language tags set, hostile packages refused quickly; real LibreOffice files
translated and rendered again (skipped without soffice)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
import tracemalloc

import pytest
from lxml import etree

from service.formats.documents import SUPPORTED_FORMATS, FileError, FileTooLarge, parse_upload
from service.formats.office import ZipLimits, parse_office
from service.stores.files import FileStore
from tests import office_fixtures as fx
from tests.service_fixtures import (  # noqa: F401 (fixtures)
    FakeTranslator,
    models_dir,
    serve,
    settings_for,
    tiny_model_file,
)

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
TAG = re.compile(r"(<[^>]*>)|([^<]+)")


def upper(texts):
    """Upper-cases the text of each HTML fragment, its tags as they are."""
    return [TAG.sub(lambda m: m.group(1) or m.group(2).upper(), text) for text in texts]


def translate(name, data, function=upper, target=None):
    doc = parse_upload(name, data, 100_000)
    assert doc.text_format == "html"
    return doc, doc.rebuild(function(doc.texts), target=target)


def xml(data: bytes, part: str):
    return etree.fromstring(fx.parts(data)[part])


def run_texts(root, run=W + "r", text=W + "t", props=W + "rPr"):
    """(properties as XML, text) of every run with text."""
    out = []
    for element in root.iter(run):
        words = "".join(t.text or "" for t in element.iter(text))
        if words:
            rpr = element.find(props)
            out.append((b"" if rpr is None else etree.tostring(rpr), words))
    return out


def paragraph_texts(root, paragraph, text):
    return ["".join(t.text or "" for t in p.iter(text)) for p in root.iter(paragraph)]


# ------------------------------------------------------------------------------ formats


def test_formats_are_listed_and_stored():
    for ext in (".docx", ".pptx", ".odt", ".odp", ".epub"):
        assert ext in SUPPORTED_FORMATS
        assert FileStore.valid_name("A" * 22 + ext)


def test_docx_every_element_kind_is_translated_with_its_formatting():
    data = fx.docx()
    _, out = translate("bericht.DOCX", data)
    document = xml(out, "word/document.xml")
    texts = paragraph_texts(document, W + "p", W + "t")
    for expected in ("DIE UEBERSCHRIFT", "IN DER ZELLE", "EIN LISTENPUNKT", "IM KASTEN",
                     "ERSTE ZEILEZWEITESPALTE"):
        assert any(expected in text for text in texts), (expected, texts)
    runs = run_texts(document)
    assert any(props.endswith(b"><w:b/></w:rPr>") and text == "SEHR" for props, text in runs)
    assert any(b"<w:i/>" in props and text == "GUT" for props, text in runs)
    link = document.find(f".//{W}hyperlink")
    assert link.get("{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id") \
        == "rId6"
    assert "".join(link.itertext()) == "EINEM LINK"
    assert b"<w:u" in etree.tostring(link.find(W + "r/" + W + "rPr"))
    body = etree.tostring(document)
    assert body.count(b"<w:footnoteReference") == 1 and body.count(b"<w:drawing") == 2
    assert body.count(b"<w:br/>") == 1 and body.count(b"<w:tab/>") == 1
    assert document.find(".//{*}docPr[@descr]").get("descr") == "EIN ROTES HAUS"
    assert "DIE KOPFZEILE" in paragraph_texts(xml(out, "word/header1.xml"), W + "p", W + "t")
    footer = xml(out, "word/footer1.xml")
    assert paragraph_texts(footer, W + "p", W + "t") == ["SEITE 7"]   # the field result kept
    assert [c.get(W + "fldCharType") for c in footer.iter(W + "fldChar")] == [
        "begin", "separate", "end"]
    assert " PAGE " in "".join(footer.itertext())
    notes = paragraph_texts(xml(out, "word/footnotes.xml"), W + "p", W + "t")
    assert " DIE FUSSNOTE" in notes


def test_docx_untouched_parts_are_byte_identical_and_identity_keeps_the_text():
    data = fx.docx()
    doc, out = translate("a.docx", data, function=lambda texts: list(texts))
    before, after = fx.parts(data), fx.parts(out)
    assert list(before) == list(after)
    changed = {name for name in before if before[name] != after[name]}
    assert changed <= {"word/document.xml", "word/header1.xml", "word/footer1.xml",
                       "word/footnotes.xml"}
    for part in changed:
        old, new = etree.fromstring(before[part]), etree.fromstring(after[part])
        assert paragraph_texts(old, W + "p", W + "t") == paragraph_texts(new, W + "p", W + "t")
        assert run_texts(old) == run_texts(new)
        assert after[part].startswith(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                                      b"\r\n")


def test_docx_runs_follow_the_translated_word_order():
    doc = parse_upload("a.docx", fx.docx(), 100_000)
    index = next(i for i, t in enumerate(doc.texts) if "sehr" in t)
    translations = list(doc.texts)
    translations[index] = ('<span data-r="1">good</span> and <span data-r="0">very</span> '
                           'this is, <span data-r="2">a link</span> at the end<img data-a="0">')
    document = xml(doc.rebuild(translations), "word/document.xml")
    paragraph = [p for p in document.iter(W + "p") if "good" in "".join(p.itertext())][0]
    runs = run_texts(paragraph)
    assert [text for _, text in runs] == ["good", " and ", "very", " this is, ", "a link",
                                          " at the end"]
    assert b"<w:i/>" in runs[0][0] and b"<w:b/>" in runs[2][0]
    assert paragraph[-1].find(W + "footnoteReference") is not None


def test_docx_language_tag_is_set_only_when_the_target_is_given():
    data = fx.docx()
    _, out = translate("a.docx", data, target="en")
    styles = xml(out, "word/styles.xml")
    assert [lang.get(W + "val") for lang in styles.iter(W + "lang")] == ["en"]
    assert xml(out, "docProps/core.xml").find("{*}language").text == "en"
    _, plain = translate("a.docx", data)
    assert fx.parts(plain)["word/styles.xml"] == fx.parts(data)["word/styles.xml"]
    assert fx.parts(plain)["docProps/core.xml"] == fx.parts(data)["docProps/core.xml"]


def test_pptx_slides_tables_notes_alt_text_and_runs():
    data = fx.pptx()
    _, out = translate("folien.pptx", data, target="pt-br")
    slide = xml(out, "ppt/slides/slide1.xml")
    texts = paragraph_texts(slide, A + "p", A + "t")
    assert texts[:2] == ["DER TITEL", "DAS IST SEHR UND GUTNEUE ZEILE3"]
    assert "IN DER ZELLE" in texts
    runs = run_texts(slide, A + "r", A + "t", A + "rPr")
    assert any(b'b="1"' in props and text == "SEHR" for props, text in runs)
    assert any(b'i="1"' in props and text == "GUT" for props, text in runs)
    body = slide.findall(f".//{A}p")[1]
    assert [local(child) for child in body] == ["pPr", "r", "r", "r", "r", "br", "r", "fld",
                                                "endParaRPr"]
    assert {element.get("lang") for element in slide.iter(A + "rPr")} == {"pt-BR"}
    assert [e.get("descr") for e in slide.iter("{*}cNvPr") if e.get("descr")] == [
        "EIN TEXTFELD", "EIN ROTES HAUS"]
    notes = xml(out, "ppt/notesSlides/notesSlide1.xml")
    assert paragraph_texts(notes, A + "p", A + "t") == ["DIE NOTIZEN"]
    assert fx.parts(out)["ppt/presentation.xml"] == fx.parts(data)["ppt/presentation.xml"]


def local(element):
    return etree.QName(element).localname


def test_odt_paragraphs_spans_links_tables_lists_notes_header_footer_alt():
    data = fx.odt()
    _, out = translate("text.odt", data, target="en")
    content = xml(out, "content.xml")
    texts = ["".join(p.itertext()) for p in content.iter(TEXT + "p", TEXT + "h")]
    assert texts[0] == "DIE UEBERSCHRIFT"
    assert "DAS IST SEHR GUT MIT EINEM LINK AMENDE1DIE FUSSNOTE" in texts
    for expected in ("DIE FUSSNOTE", "IN DER ZELLE", "EIN LISTENPUNKT", "ERSTE ZEILEZWEITESPALTE"):
        assert expected in texts
    span = content.find(f".//{TEXT}span")
    assert (span.get(TEXT + "style-name"), span.text) == ("T1", "SEHR")
    link = content.find(f".//{TEXT}a")
    assert (link.get("{http://www.w3.org/1999/xlink}href"), link.text) == (
        "https://example.org/", "EINEM LINK")
    assert content.find(".//{*}title").text == "EIN ROTES HAUS"
    styles = xml(out, "styles.xml")
    assert ["".join(p.itertext()) for p in styles.iter(TEXT + "p")] == ["DIE KOPFZEILE",
                                                                        "SEITE 7"]
    props = styles.find(".//{*}text-properties")
    assert props.get("{urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0}language") \
        == "en"
    assert xml(out, "meta.xml").find(".//{*}language").text == "en"
    before, after = fx.parts(data), fx.parts(out)
    assert list(before) == list(after)
    assert after["mimetype"] == before["mimetype"] and after["Pictures/a.png"] == before[
        "Pictures/a.png"]
    with __import__("zipfile").ZipFile(__import__("io").BytesIO(out)) as z:
        first = z.infolist()[0]
        assert (first.filename, first.compress_type) == ("mimetype", 0)


def test_odp_frames_spans_notes_and_alt_text():
    _, out = translate("folien.odp", fx.odp())
    content = xml(out, "content.xml")
    texts = ["".join(p.itertext()) for p in content.iter(TEXT + "p")]
    assert texts == ["DER TITEL", "DAS IST SEHR GUT", "DIE NOTIZEN"]
    assert content.find(f".//{TEXT}span").text == "SEHR"
    assert content.find(".//{*}desc").text == "EIN ROTES HAUS"


def test_epub_chapters_alt_text_toc_and_language():
    data = fx.epub()
    _, out = translate("buch.epub", data, target="en")
    chapter = fx.parts(out)["OEBPS/chapter1.xhtml"].decode()
    assert "<title>DAS KAPITEL</title>" in chapter and "<h1>DIE UEBERSCHRIFT</h1>" in chapter
    assert "DAS IST <b>SEHR</b> GUT\u00a0SO" in chapter
    assert 'alt="EIN ROTES HAUS"' in chapter and 'lang="en"' in chapter
    etree.fromstring(chapter.encode())   # still well-formed XML
    assert "ERSTES KAPITEL" in fx.parts(out)["OEBPS/toc.ncx"].decode()
    assert "<dc:language>en</dc:language>" in fx.parts(out)["OEBPS/content.opf"].decode()
    assert fx.parts(out)["OEBPS/a.png"] == fx.parts(data)["OEBPS/a.png"]


def test_character_limit_counts_the_texts():
    with pytest.raises(FileTooLarge):
        parse_upload("a.docx", fx.docx(), 100)


def test_rebuild_twice_gives_the_same_file():
    doc = parse_upload("a.pptx", fx.pptx(), 100_000)
    assert doc.rebuild(upper(doc.texts)) == doc.rebuild(upper(doc.texts))


# ------------------------------------------------------------------------------ hostile


HOSTILE = {
    "not a zip": ("a.docx", lambda: b"Hallo Welt", FileError),
    "pdf named .docx": ("a.docx", lambda: b"%PDF-1.7\n...", FileError),
    "pptx named .docx": ("a.docx", fx.pptx, FileError),
    "docx named .odt": ("a.odt", fx.docx, FileError),
    "odt named .epub": ("a.epub", fx.odt, FileError),
    "truncated": ("a.docx", lambda: fx.docx()[:700], FileError),
    "encrypted flag": ("a.docx", fx.encrypted_flag, FileError),
    "OLE (password-protected docx)": ("a.docx", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
                                      + b"\0" * 600, FileError),
    "path traversal": ("a.docx", fx.traversal, FileError),
    "overlapping entries bomb": ("a.docx", fx.overlapping_bomb, FileError),
    "ratio bomb 100 MB": ("a.docx", fx.ratio_bomb, FileTooLarge),
    "6000 entries": ("a.docx", fx.many_entries, FileTooLarge),
    "lying sizes": ("a.docx", fx.lying_sizes, FileError),
    "billion laughs": ("a.docx", lambda: fx.docx_with(fx.BILLION_LAUGHS), FileError),
    "external entity": ("a.docx", lambda: fx.docx_with(fx.EXTERNAL_ENTITY), FileError),
    "5000 nested elements": ("a.docx", lambda: fx.docx_with(fx.DEEP), FileError),
}


@pytest.mark.parametrize("label", list(HOSTILE))
def test_hostile_packages_are_refused_quickly(label):
    name, make, error = HOSTILE[label]
    data = make()
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(error) as info:
        parse_upload(name, data, 100_000)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 2.0 and peak < 64 * 2**20, (elapsed, peak)
    assert type(info.value) is error and str(info.value)


def test_a_name_claiming_more_than_it_is_names_the_supported_formats():
    with pytest.raises(FileError, match=r"\.txt"):
        parse_upload("table.docx", b"Hallo", 100)


def test_limits_apply_to_a_valid_package():
    with pytest.raises(FileTooLarge):
        parse_office("docx", fx.docx(), 100_000, ZipLimits(max_total_bytes=2_000))
    with pytest.raises(FileTooLarge):
        parse_office("docx", fx.docx(), 100_000, ZipLimits(max_entries=3))
    with pytest.raises(FileTooLarge):
        parse_office("docx", fx.docx(), 100_000, ZipLimits(max_package_bytes=1_000))


# ------------------------------------------------------------------------------ HTTP


def _fake_service(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "de-en.pt").write_text("fake")
    fake = FakeTranslator()
    settings = settings_for(folder, files_dir=tmp_path / "files", max_file_bytes=200_000)
    return settings, (lambda path: fake)


def _post(settings, factory, name, data):
    async def main():
        async with serve(settings, factory) as client:
            listed = (await client.get("/frontend/settings")).json()["supportedFilesFormat"]
            posted = await client.post("/translate_file", files={"file": (name, data)},
                                       data={"source": "de", "target": "en"})
            download = None
            if posted.status_code == 200:
                download = await client.get(posted.json()["translatedFileUrl"])
            return listed, posted, download

    return asyncio.run(main())


@pytest.mark.parametrize("name,make", [("bericht.docx", fx.docx), ("folien.pptx", fx.pptx),
                                       ("text.odt", fx.odt), ("folien.odp", fx.odp),
                                       ("buch.epub", fx.epub)])
def test_translate_file_route_takes_office_documents(tmp_path, name, make):
    settings, factory = _fake_service(tmp_path)
    listed, posted, download = _post(settings, factory, name, make())
    assert ".docx" in listed and ".epub" in listed
    assert posted.status_code == 200, posted.text
    assert download.status_code == 200
    ext = name.rsplit(".", 1)[1]
    assert download.headers["content-disposition"].endswith(f'.en.{ext}"')
    assert "opendocument" in download.headers["content-type"] or "officedocument" in \
        download.headers["content-type"] or "epub" in download.headers["content-type"]
    doc = parse_upload(name, download.content, 100_000)   # a valid package again
    assert any("fake(" in text for text in doc.texts)


def test_translate_file_route_refuses_hostile_packages_with_4xx(tmp_path):
    settings, factory = _fake_service(tmp_path)
    _, bomb, _ = _post(settings, factory, "a.docx", fx.ratio_bomb())
    _, laughs, _ = _post(settings, factory, "a.docx", fx.docx_with(fx.BILLION_LAUGHS))
    assert bomb.status_code == 413 and "error" in bomb.json()
    assert laughs.status_code == 400 and "entit" in laughs.json()["error"]
    assert not any(p.name.endswith(".docx") for p in (tmp_path / "files").iterdir())


def test_tiny_real_model_translates_a_docx_keeping_a_valid_package(tmp_path, models_dir):  # noqa: F811
    settings = settings_for(models_dir, files_dir=tmp_path / "files", max_file_bytes=200_000)
    data = fx.docx_with(
        f'<w:document {fx.W_NS}><w:body><w:p><w:r><w:t xml:space="preserve">the third of '
        '</w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>june</w:t></w:r><w:r><w:t xml:space='
        '"preserve"> two thousand seven</w:t></w:r></w:p></w:body></w:document>')

    async def main():
        async with serve(settings) as client:
            posted = await client.post("/translate_file", files={"file": ("d.docx", data)},
                                       data={"source": "en", "target": "date"})
            return posted, await client.get(posted.json()["translatedFileUrl"])

    posted, download = asyncio.run(main())
    assert posted.status_code == 200
    document = xml(download.content, "word/document.xml")
    runs = run_texts(document)
    bold = [run for run in document.iter(W + "r") if run.find(f"{W}rPr/{W}b") is not None]
    assert runs and len(bold) == 1   # the bold run survives (with or without words)
    assert "third" not in "".join(text for _, text in runs)


# ------------------------------------------------------------------------------ LibreOffice

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
PDFTOTEXT = shutil.which("pdftotext")
needs_office = pytest.mark.skipif(not (SOFFICE and PDFTOTEXT),
                                  reason="LibreOffice (soffice) and pdftotext are not installed")

SOURCE_HTML = """<html><head><meta charset="utf-8"><title>t</title></head><body>
<h1>Die Katze</h1>
<p>Die Katze sitzt auf <b>dem roten</b> Tisch und <i>schlaeft</i> ruhig.</p>
<table border="1"><tr><td>Das Haus ist gross.</td><td>Der Hund bellt.</td></tr></table>
<ul><li>Ein schoener Tag.</li></ul>
<p>Wir gehen heute <a href="https://example.org/">nach Hause</a>.</p>
</body></html>"""
SOURCE_FODP = """<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
 xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0"
 xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"
 xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"
 office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.presentation">
<office:automatic-styles><style:style style:name="T1" style:family="text">
<style:text-properties fo:font-weight="bold"/></style:style></office:automatic-styles>
<office:master-styles><style:master-page style:name="Default"/></office:master-styles>
<office:body><office:presentation><draw:page draw:name="p1" draw:master-page-name="Default">
<draw:frame svg:x="2cm" svg:y="1cm" svg:width="20cm" svg:height="3cm"><draw:text-box>
<text:p>Die Katze schlaeft.</text:p></draw:text-box></draw:frame>
<draw:frame svg:x="2cm" svg:y="5cm" svg:width="20cm" svg:height="8cm"><draw:text-box>
<text:p>Das Haus ist <text:span text:style-name="T1">sehr</text:span> gross.</text:p>
</draw:text-box></draw:frame>
<presentation:notes><draw:frame svg:x="2cm" svg:y="15cm" svg:width="15cm" svg:height="5cm"
 presentation:class="notes"><draw:text-box><text:p>Der Hund bellt laut.</text:p>
</draw:text-box></draw:frame></presentation:notes>
</draw:page></office:presentation></office:body></office:document>"""


def soffice(tmp_path, convert_to: str, files: list, outdir):
    profile = (tmp_path / "profile").as_uri()
    subprocess.run([SOFFICE, "--headless", f"-env:UserInstallation={profile}", "--convert-to",
                    convert_to, "--outdir", str(outdir), *map(str, files)],
                   check=True, capture_output=True, timeout=240)


@pytest.mark.slow
@needs_office
def test_libreoffice_documents_translate_and_render_again(tmp_path):
    (tmp_path / "doc.html").write_text(SOURCE_HTML)
    (tmp_path / "deck.fodp").write_text(SOURCE_FODP)
    made = tmp_path / "made"
    soffice(tmp_path, "docx:MS Word 2007 XML", [tmp_path / "doc.html"], made)
    soffice(tmp_path, "odt", [made / "doc.docx"], made)
    soffice(tmp_path, "pptx", [tmp_path / "deck.fodp"], made)
    soffice(tmp_path, "odp", [tmp_path / "deck.fodp"], made)
    translated = tmp_path / "translated"
    translated.mkdir()
    names = ["doc.docx", "doc.odt", "deck.pptx", "deck.odp"]
    for name in names:
        data = (made / name).read_bytes()
        doc, out = translate(name, data, target="en")
        assert len(doc.texts) >= 3
        (translated / name.replace(".", "_.")).write_bytes(out)
    pdfs = tmp_path / "pdf"
    soffice(tmp_path, "pdf", sorted(translated.iterdir()), pdfs)
    for name in names:
        pdf = pdfs / (name.replace(".", "_.").rsplit(".", 1)[0] + ".pdf")
        text = subprocess.run([PDFTOTEXT, str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout
        words = " ".join(text.split())
        if name.startswith("doc"):
            for expected in ("DIE KATZE SITZT AUF DEM ROTEN TISCH UND SCHLAEFT RUHIG.",
                             "DAS HAUS IST", "EIN SCHOENER TAG.",
                             "WIR GEHEN HEUTE NACH HAUSE."):
                assert expected in words, (name, words)
        else:
            assert "DIE KATZE SCHLAEFT." in words and "DAS HAUS IST SEHR GROSS." in words
        assert not re.search(r"\b(Katze|Haus)\b", words), (name, words)
