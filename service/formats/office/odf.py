"""OpenDocument text (.odt) and presentations (.odp), handled as XML with lxml.

``content.xml`` (the body: paragraphs, headings, lists, tables, frames and text boxes, shapes,
footnotes and endnotes, annotations, speaker notes) and the master pages of ``styles.xml``
(headers and footers, text on master slides).  Every ``text:p`` and ``text:h`` is one text;
``text:span``, ``text:a``, ``text:meta`` and ``text:ruby-base`` are elements placed on the
translation, ``text:s``, ``text:tab`` and ``text:line-break`` separate words, anything else
(fields, bookmarks, notes, frames, annotations, soft page breaks) is moved as it is.  Alt text
is the ``svg:title`` and ``svg:desc`` of frames and shapes.  The language tag is ``fo:language``
and ``fo:country`` of the text properties that have one, and ``dc:language`` in meta.xml."""

from __future__ import annotations

from functools import partial

from lxml import etree

from service.formats.documents import FileError
from service.formats.office import inline
from service.formats.office.common import Job, language_parts, language_tag
from service.formats.office.inline import Atom, Placed, Shell

TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
SVG = "{urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0}"
FO = "{urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0}"
STYLE = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}"
MANIFEST = "{urn:oasis:names:tc:opendocument:xmlns:manifest:1.0}"
DC = "{http://purl.org/dc/elements/1.1/}"

MIMETYPES = {"odt": "application/vnd.oasis.opendocument.text",
             "odp": "application/vnd.oasis.opendocument.presentation"}
NAMES = {"odt": "an OpenDocument text (.odt)", "odp": "an OpenDocument presentation (.odp)"}
SHELLS = frozenset({TEXT + "span", TEXT + "a", TEXT + "meta"})
BREAKS = frozenset({TEXT + "s", TEXT + "tab", TEXT + "line-break"})
PARAGRAPHS = (TEXT + "p", TEXT + "h")


def encode_paragraph(element: etree._Element) -> list[inline.Item]:
    """A paragraph's mixed content as an item tree."""
    items: list[inline.Item] = []
    _fill(element, items)
    return items


def _fill(element: etree._Element, items: list[inline.Item]) -> None:
    """Each element's text, children and tails in order (explicit stack: each shell's list is
    filled by its own element only)."""
    stack = [(element, items)]
    while stack:
        node, out = stack.pop()
        if node.text:
            out.append(node.text)
        for child in node:
            if child.tag in SHELLS:
                shell = Shell(child)
                out.append(shell)
                stack.append((child, shell.children))
            else:
                out.append(Atom(child, brk=child.tag in BREAKS))
            if child.tail:
                out.append(child.tail)


def _append_text(parent: etree._Element, text: str) -> None:
    if not text:
        return
    if len(parent):
        last = parent[-1]
        last.tail = (last.tail or "") + text
    else:
        parent.text = (parent.text or "") + text


def rebuild_paragraph(paragraph: etree._Element, placed: list) -> None:
    """Replace a paragraph's mixed content by the placed tree (its attributes kept)."""
    paragraph.text = None
    for child in list(paragraph):
        paragraph.remove(child)
    stack: list[tuple[etree._Element, list, int]] = [(paragraph, placed, 0)]
    while stack:
        parent, items, index = stack.pop()
        while index < len(items):
            item = items[index]
            index += 1
            if isinstance(item, str):
                _append_text(parent, item)
            elif isinstance(item, Atom):
                item.data.tail = None
                parent.append(item.data)
            else:
                assert isinstance(item, Placed)
                original = item.shell.data
                element = etree.SubElement(parent, original.tag, attrib=dict(original.attrib))
                stack.append((parent, items, index))
                stack.append((element, item.children, 0))
                break


def _paragraphs(job: Job, name: str, roots: list[etree._Element]) -> None:
    for root in roots:
        for paragraph in list(root.iter(*PARAGRAPHS)):
            items = encode_paragraph(paragraph)
            job.paragraph(items, partial(rebuild_paragraph, paragraph), name)


def _alt_texts(job: Job, name: str, roots: list[etree._Element]) -> None:
    for root in roots:
        for element in root.iter(SVG + "title", SVG + "desc"):
            if element.text and not len(element):
                job.plain(element.text, partial(setattr, element, "text"), name)


def _language(job: Job, name: str) -> None:
    def finish(target):
        language, region = language_parts(target)
        for props in job.tree(name).getroot().iter(STYLE + "text-properties"):
            if props.get(FO + "language") is not None:
                props.set(FO + "language", language)
                props.set(FO + "country", region or "none")
                job.touch(name)
    job.finishers.append(finish)


def _check(job: Job, kind: str) -> None:
    package = job.package
    mimetype = package.read("mimetype", limit=200).strip() if package.has("mimetype") else b""
    if mimetype.decode("ascii", "replace") != MIMETYPES[kind]:
        raise FileError(f"the file is not {NAMES[kind]}: its mimetype is "
                        f"{mimetype[:60].decode('ascii', 'replace') or 'missing'}")
    if package.has("META-INF/manifest.xml"):
        manifest = job.tree("META-INF/manifest.xml").getroot()
        if next(manifest.iter(MANIFEST + "encryption-data"), None) is not None:
            raise FileError("the file is encrypted (password-protected); save it without a "
                            "password")
    if not package.has("content.xml"):
        raise FileError(f"the file is not {NAMES[kind]}: it has no content.xml")


def analyse(job: Job, kind: str) -> None:
    _check(job, kind)
    body = job.tree("content.xml").getroot()
    _paragraphs(job, "content.xml", [body])
    _alt_texts(job, "content.xml", [body])
    if job.package.has("styles.xml"):
        styles = job.tree("styles.xml").getroot()
        masters = list(styles.iter(OFFICE + "master-styles"))
        _paragraphs(job, "styles.xml", masters)
        _alt_texts(job, "styles.xml", masters)
        _language(job, "styles.xml")
    _language(job, "content.xml")
    if job.package.has("meta.xml"):
        meta = job.tree("meta.xml").getroot()
        language = next(meta.iter(DC + "language"), None)
        if language is not None:
            def finish(target, element=language):
                element.text = language_tag(target)
                job.touch("meta.xml")
            job.finishers.append(finish)
