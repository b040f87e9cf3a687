"""EPUB books: every XHTML document of the manifest (chapters and the EPUB 3 navigation
document) is one HTML text, translated by formats.markup like an uploaded .html; ``img`` alt
text and the EPUB 2 table of contents (``toc.ncx`` labels) are translated as plain texts.  The
language tag is ``dc:language`` in the package document and ``lang``/``xml:lang`` of each
translated XHTML document."""

from __future__ import annotations

import posixpath
import re
from functools import partial
from urllib.parse import unquote

from lxml import etree

from service.formats.documents import FileError
from service.formats.office.common import Job, language_tag, local
from service.formats.office.xmlsafe import parse_xml, serialize

CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
OPF = "{http://www.idpf.org/2007/opf}"
DC = "{http://purl.org/dc/elements/1.1/}"
NCX = "{http://www.daisy.org/z3986/2005/ncx/}"
ENC = "{http://www.w3.org/2001/04/xmlenc#}"
XHTML = "{http://www.w3.org/1999/xhtml}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
_NAMED_SPACE = re.compile(r"&nbsp;")


def _check(job: Job) -> str:
    package = job.package
    mimetype = package.read("mimetype", limit=200).strip() if package.has("mimetype") else b""
    if mimetype != b"application/epub+zip":
        raise FileError("the file is not an EPUB book: its mimetype is "
                        f"{mimetype[:60].decode('ascii', 'replace') or 'missing'}")
    if package.has("META-INF/encryption.xml"):
        root = job.tree("META-INF/encryption.xml").getroot()
        methods = {el.get("Algorithm", "") for el in root.iter(ENC + "EncryptionMethod")}
        if methods - FONT_OBFUSCATION:
            raise FileError("the book is encrypted (DRM); only unencrypted EPUB files can be "
                            "translated")
    if not package.has("META-INF/container.xml"):
        raise FileError("the file is not an EPUB book: it has no META-INF/container.xml")
    rootfile = next(job.tree("META-INF/container.xml").getroot().iter(CONTAINER + "rootfile"),
                    None)
    path = rootfile.get("full-path", "") if rootfile is not None else ""
    if not package.has(path):
        raise FileError("the EPUB book has no package document (.opf)")
    return path


def _xhtml(job: Job, name: str) -> None:
    data = job.package.read(name)
    tree = parse_xml(data, name)   # entities refused, well-formedness checked
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileError(f"the part {name[:80]!r} is not UTF-8") from None
    alts: dict[str, str] = {}
    for img in tree.getroot().iter(XHTML + "img", "img"):
        alt = img.get("alt")
        if alt:
            job.plain(alt, partial(alts.__setitem__, alt), name)
    translated: dict[str, str] = {}
    if any(char.isalnum() for char in "".join(tree.getroot().itertext())):
        job.text(text, lambda out: translated.__setitem__("html", out), name)

    def write(target: str | None) -> None:
        out = _NAMED_SPACE.sub("&#160;", translated.get("html", text))
        encoded = out.encode("utf-8")
        try:
            result = etree.ElementTree(etree.fromstring(
                encoded, etree.XMLParser(resolve_entities=False, no_network=True,
                                         load_dtd=False, huge_tree=False)))
        except etree.XMLSyntaxError:
            return  # never expected: the markup is copied; keep the original part
        if not alts and not target:
            job.raw[name] = encoded
            return
        for img in result.getroot().iter(XHTML + "img", "img"):
            if img.get("alt") in alts:
                img.set("alt", alts[img.get("alt")])
        root = result.getroot()
        if target and local(root.tag) == "html":
            root.set("lang", language_tag(target))
            root.set(XML_LANG, language_tag(target))
        job.raw[name] = serialize(result, encoded)

    job.after.append(write)


def _ncx(job: Job, name: str) -> None:
    for label in job.tree(name).getroot().iter(NCX + "navLabel"):
        for text in label.iter(NCX + "text"):
            if text.text and not len(text):
                job.plain(text.text, partial(setattr, text, "text"), name)


def analyse(job: Job) -> None:
    opf_name = _check(job)
    opf = job.tree(opf_name).getroot()
    folder = posixpath.dirname(opf_name)
    for item in opf.iter(OPF + "item"):
        href = unquote(item.get("href", "").split("#")[0])
        name = posixpath.normpath(posixpath.join(folder, href)) if href else ""
        if not name or not job.package.has(name):
            continue
        media = item.get("media-type", "")
        if media == "application/xhtml+xml":
            _xhtml(job, name)
        elif media == "application/x-dtbncx+xml":
            _ncx(job, name)
    languages = list(opf.iter(DC + "language"))
    if languages:
        def finish(target):
            for language in languages:
                language.text = language_tag(target)
            job.touch(opf_name)
        job.finishers.append(finish)
