"""Which library to read and write office packages with: round trip of an untouched document
(parts byte-identical?), runs kept when texts are replaced, and time per document.

Run with a Python that has python-docx, python-pptx, odfpy, ebooklib, lxml and defusedxml
(e.g. a scratch venv; they are not the project's dependencies):

    python bench/office/measure_libraries.py DIR > bench/office/libraries.json

DIR holds doc.docx, deck.pptx, doc.odt, deck.odp (made by LibreOffice, see README.md); the
.epub is the test fixture (tests/office_fixtures.py)."""

from __future__ import annotations

import io
import json
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def identical(before: bytes, after: bytes) -> str:
    a, b = parts(before), parts(after)
    same = sum(1 for name in a if b.get(name) == a[name])
    xml = [n for n in a if n.endswith(".xml") or n.endswith(".rels")]
    same_xml = sum(1 for name in xml if b.get(name) == a[name])
    return f"{same}/{len(a)} parts ({same_xml}/{len(xml)} XML), entries {len(b)}"


def timed(function, repeat: int = 20) -> float:
    function()
    started = time.perf_counter()
    for _ in range(repeat):
        function()
    return round((time.perf_counter() - started) / repeat * 1000, 2)


def upper_all(texts):
    import re
    return [re.sub(r"(<[^>]*>)|([^<]+)", lambda m: m.group(1) or m.group(2).upper(), t)
            for t in texts]


def ours(name: str, data: bytes) -> dict:
    from service.formats.documents import parse_upload

    def identity():
        doc = parse_upload(name, data, 10**7)
        return doc.rebuild(list(doc.texts))

    def translate():
        doc = parse_upload(name, data, 10**7)
        return doc.rebuild(upper_all(doc.texts))

    doc = parse_upload(name, data, 10**7)
    return {"untouched (identity translation)": identical(data, identity()),
            "texts": len(doc.texts),
            "ms parse+rebuild": timed(translate)}


def lxml_parse_serialize(data: bytes) -> dict:
    from lxml import etree

    from service.formats.office.xmlsafe import parse_xml, serialize
    a = parts(data)
    xml = {n: b for n, b in a.items() if n.endswith(".xml") or n.endswith(".rels")}
    same = sum(1 for n, b in xml.items() if serialize(parse_xml(b, n), b) == b)

    def work():
        for n, b in xml.items():
            serialize(parse_xml(b, n), b)
    del etree
    return {"XML parts identical after parse+serialize": f"{same}/{len(xml)}",
            "ms all XML parts": timed(work)}


def stdlib_parse_serialize(data: bytes, module) -> dict:
    a = parts(data)
    xml = {n: b for n, b in a.items() if n.endswith(".xml") or n.endswith(".rels")}

    def one(b):
        root = module.fromstring(b)
        return ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    same = sum(1 for b in xml.values() if one(b) == b)
    return {"XML parts identical after parse+serialize": f"{same}/{len(xml)}",
            "ms all XML parts": timed(lambda: [one(b) for b in xml.values()]),
            "note": "namespace prefixes renamed (ns0:, ns1:) and unused declarations dropped"}


def python_docx(data: bytes) -> dict:
    import docx

    def save(doc):
        out = io.BytesIO()
        doc.save(out)
        return out.getvalue()

    untouched = save(docx.Document(io.BytesIO(data)))
    doc = docx.Document(io.BytesIO(data))
    reachable = []
    for p in doc.paragraphs:
        reachable.append((len(p.runs), len(list(p.iter_inner_content()))))
    runs_before = sum(len(p.runs) for p in doc.paragraphs)
    for p in doc.paragraphs:
        for r in p.runs:
            r.text = r.text.upper()
    text = " ".join(p.text for p in docx.Document(io.BytesIO(save(doc))).paragraphs)

    def work():
        d = docx.Document(io.BytesIO(data))
        for p in d.paragraphs:
            for r in p.runs:
                r.text = r.text.upper()
        for t in d.tables:
            for row in t.rows:
                for c in row.cells:
                    for p in c.paragraphs:
                        for r in p.runs:
                            r.text = r.text.upper()
        save(d)
    return {"untouched": identical(data, untouched), "runs (body paragraphs)": runs_before,
            "hyperlink text in paragraph.runs": "nach Hause" not in " ".join(
                r.text for p in doc.paragraphs for r in p.runs) and "no" or "yes",
            "after upper-casing run texts": text[:120],
            "reaches": "body, tables, headers/footers; not footnotes, text boxes, alt text "
                       "(needs XML)",
            "ms open+edit+save": timed(work)}


def python_pptx(data: bytes) -> dict:
    import pptx

    def save(p):
        out = io.BytesIO()
        p.save(out)
        return out.getvalue()
    untouched = save(pptx.Presentation(io.BytesIO(data)))

    def work():
        p = pptx.Presentation(io.BytesIO(data))
        for slide in p.slides:
            for shape in slide.shapes:
                if shape.has_text_frame:
                    for para in shape.text_frame.paragraphs:
                        for r in para.runs:
                            r.text = r.text.upper()
            frame = slide.notes_slide.notes_text_frame if slide.has_notes_slide else None
            if frame is not None:
                for para in frame.paragraphs:
                    for r in para.runs:
                        r.text = r.text.upper()
        return save(p)
    return {"untouched": identical(data, untouched),
            "reaches": "shapes, tables (cell by cell), notes; runs kept; alt text via XML",
            "ms open+edit+save": timed(work)}


def odfpy(data: bytes) -> dict:
    from odf.opendocument import load

    def save(doc):
        out = io.BytesIO()
        doc.write(out)
        return out.getvalue()
    untouched = save(load(io.BytesIO(data)))
    return {"untouched": identical(data, untouched),
            "reaches": "whole DOM (own classes); text nodes are mixed content to walk by hand",
            "ms open+save": timed(lambda: save(load(io.BytesIO(data))), 5)}


def ebooklib_rt(data: bytes) -> dict:
    import warnings

    import ebooklib
    from ebooklib import epub
    warnings.simplefilter("ignore")
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "a.epub"
        source.write_bytes(data)
        book = epub.read_epub(str(source))
        target = Path(folder) / "b.epub"
        epub.write_epub(str(target), book)
        untouched = target.read_bytes()
        ms = timed(lambda: epub.write_epub(str(target), epub.read_epub(str(source))), 5)
    del ebooklib
    return {"untouched": identical(data, untouched), "ms read+write": ms,
            "note": "rewrites the package document, navigation and container"}


def main() -> None:
    folder = Path(sys.argv[1])
    import defusedxml.ElementTree as DET

    from tests import office_fixtures as fx
    files = {"docx": (folder / "doc.docx").read_bytes(),
             "pptx": (folder / "deck.pptx").read_bytes(),
             "odt": (folder / "doc.odt").read_bytes(),
             "odp": (folder / "deck.odp").read_bytes(),
             "epub": fx.epub(), "docx (fixture)": fx.docx(), "pptx (fixture)": fx.pptx()}
    results = {}
    for kind, data in files.items():
        ext = kind.split()[0]
        row = {"bytes": len(data), "this package (lxml)": ours(f"a.{ext}", data),
               "lxml parse+serialize": lxml_parse_serialize(data),
               "xml.etree": stdlib_parse_serialize(data, ET),
               "defusedxml.ElementTree": stdlib_parse_serialize(data, DET)}
        if ext == "docx":
            row["python-docx 1.2"] = python_docx(data)
        if ext == "pptx":
            row["python-pptx 1.0"] = python_pptx(data)
        if ext in ("odt", "odp"):
            row["odfpy 1.4"] = odfpy(data)
        if ext == "epub":
            row["ebooklib 0.20"] = ebooklib_rt(data)
        results[kind] = row
    json.dump(results, sys.stdout, indent=1, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
