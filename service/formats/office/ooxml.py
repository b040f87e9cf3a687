"""Word (.docx) and PowerPoint (.pptx) packages, handled as XML with lxml.

Parts are found through ``[Content_Types].xml``.  Word: the main document, headers, footers,
footnotes, endnotes and comments (``w:p`` anywhere in them: body, tables, text boxes, content
controls), and DrawingML charts and SmartArt (``a:p``).  PowerPoint: slides, speaker notes,
charts and SmartArt (``a:p`` in shapes, tables, groups).  Alt text is the ``descr`` and ``title``
of ``wp:docPr`` and of ``cNvPr`` elements.

A paragraph is written for translation as HTML (see ``inline``): runs with the paragraph's most
common run properties are plain text, every other run (and hyperlinks, insertions, smart tags,
run-level content controls, and the result of HYPERLINK and REF fields) is an element.  Runs
next to each other with equal properties are one element.  The rebuilt paragraph gets a fresh
run per placed element, with a copy of the original run's properties and attributes; tabs,
breaks, drawings, footnote references, bookmarks and other fields are moved as they are."""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from functools import partial

from lxml import etree

from service.formats.documents import FileError
from service.formats.office import inline
from service.formats.office.common import Job, language_tag, local
from service.formats.office.inline import Atom, Placed, Shell

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
CT = "{http://schemas.openxmlformats.org/package/2006/content-types}"
DC = "{http://purl.org/dc/elements/1.1/}"
XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"

_OFFICE = "application/vnd.openxmlformats-officedocument."
WORD_MAIN = (_OFFICE + "wordprocessingml.document.main+xml",
             _OFFICE + "wordprocessingml.template.main+xml",
             "application/vnd.ms-word.document.macroEnabled.main+xml",
             "application/vnd.ms-word.template.macroEnabledTemplate.main+xml")
WORD_PARTS = WORD_MAIN + tuple(_OFFICE + "wordprocessingml." + kind + "+xml" for kind in (
    "header", "footer", "footnotes", "endnotes", "comments"))
SLIDES_MAIN = (_OFFICE + "presentationml.presentation.main+xml",
               _OFFICE + "presentationml.slideshow.main+xml",
               _OFFICE + "presentationml.template.main+xml",
               "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml")
SLIDE_PARTS = (_OFFICE + "presentationml.slide+xml", _OFFICE + "presentationml.notesSlide+xml")
DRAWING_PARTS = (_OFFICE + "drawingml.chart+xml", _OFFICE + "drawingml.diagramData+xml",
                 "application/vnd.ms-office.drawingml.diagramDrawing+xml")
CORE_PROPERTIES = "application/vnd.openxmlformats-package.core-properties+xml"
WORD_STYLES = _OFFICE + "wordprocessingml.styles+xml"

TRANSLATED_FIELDS = frozenset({"HYPERLINK", "REF"})  # fields whose shown result is text


@dataclass(frozen=True)
class Dialect:
    """Where a flavour of OOXML keeps its runs."""

    paragraph: str
    run: str
    props: str
    text: str
    head: frozenset[str]                       # kept first in the paragraph (pPr)
    tail: frozenset[str]                       # kept last (endParaRPr)
    run_breaks: frozenset[str] = frozenset()   # in a run, separate words (tab, br)
    breaks: frozenset[str] = frozenset()       # in a paragraph, separate words (a:br)
    containers: dict[str, tuple[frozenset[str], str | None]] = field(default_factory=dict)
    fields: bool = False
    one_text: bool = False                     # a run holds one text element and nothing else


WORD = Dialect(
    paragraph=W + "p", run=W + "r", props=W + "rPr", text=W + "t",
    head=frozenset({W + "pPr"}), tail=frozenset(),
    run_breaks=frozenset({W + "tab", W + "br", W + "cr", W + "ptab"}),
    containers={
        W + "hyperlink": (frozenset(), None),
        W + "ins": (frozenset(), None),
        W + "moveTo": (frozenset(), None),
        W + "dir": (frozenset(), None),
        W + "bdo": (frozenset(), None),
        W + "smartTag": (frozenset({W + "smartTagPr"}), None),
        W + "customXml": (frozenset({W + "customXmlPr"}), None),
        W + "sdt": (frozenset({W + "sdtPr", W + "sdtEndPr"}), W + "sdtContent"),
    },
    fields=True)

DRAWING = Dialect(
    paragraph=A + "p", run=A + "r", props=A + "rPr", text=A + "t",
    head=frozenset({A + "pPr"}), tail=frozenset({A + "endParaRPr"}),
    breaks=frozenset({A + "br"}), one_text=True)


# ------------------------------------------------------------------------- records


@dataclass(eq=False)
class _Run:
    element: etree._Element           # the original run: attributes and properties


@dataclass(eq=False)
class _Container:
    element: etree._Element
    keep: list[etree._Element]
    slot: str | None
    template: etree._Element | None


@dataclass(eq=False)
class _Field:
    prefix: list[etree._Element]
    suffix: list[etree._Element]
    template: etree._Element | None


@dataclass(eq=False)
class _Moved:
    elements: list[etree._Element]
    in_run: bool = False              # run content (a tab of a run): goes into a run again


# ------------------------------------------------------------------------- reading


def _has_text(run: etree._Element, d: Dialect) -> bool:
    return run.find(d.text) is not None


def _run_key(run: etree._Element, d: Dialect) -> bytes:
    props = run.find(d.props)
    return b"" if props is None else etree.tostring(props)


def _run_content(run: etree._Element, d: Dialect) -> list[inline.Item]:
    items: list[inline.Item] = []
    for child in run:
        if child.tag == d.props:
            continue
        if child.tag == d.text:
            items.append(child.text or "")
        else:
            items.append(Atom(_Moved([child], in_run=True), brk=child.tag in d.run_breaks))
    return items


def _field_chars(element: etree._Element) -> list[str]:
    if element.tag != W + "r":
        return []
    return [char.get(W + "fldCharType", "") for char in element.iter(W + "fldChar")]


def _instruction(elements: list[etree._Element]) -> str:
    return " ".join("".join(t.text or "" for t in el.iter(W + "instrText")) for el in elements)


def _entries(children: list[etree._Element], d: Dialect) -> list[tuple]:
    """Children with complete Word fields grouped: ("el", e), ("field", prefix, inner, suffix)
    or ("moved", elements)."""
    if not d.fields:
        return [("el", child) for child in children]
    entries: list[tuple] = []
    index = 0
    while index < len(children):
        if "begin" not in _field_chars(children[index])[:1]:
            entries.append(("el", children[index]))
            index += 1
            continue
        depth, end, separate = 0, None, None
        for position in range(index, len(children)):
            for kind in _field_chars(children[position]):
                depth += {"begin": 1, "end": -1}.get(kind, 0)
                if kind == "separate" and depth == 1 and separate is None:
                    separate = position
            if depth <= 0:
                end = position
                break
        if end is None:
            entries.append(("moved", children[index:]))
            break
        group = children[index:end + 1]
        words = _instruction(children[index:(separate if separate is not None else end) + 1])
        name = (words.split() or [""])[0].upper()
        if (separate is not None and name in TRANSLATED_FIELDS
                and _field_chars(children[separate])[-1:] == ["separate"]
                and _field_chars(children[end])[:1] == ["end"] and separate < end):
            entries.append(("field", children[index:separate + 1], children[separate + 1:end],
                            [children[end]]))
        else:
            entries.append(("moved", group))
        index = end + 1
    return entries


def _either(first: etree._Element | None, second: etree._Element | None
            ) -> etree._Element | None:
    return first if first is not None else second


def _first_text_run(elements: list[etree._Element], d: Dialect) -> etree._Element | None:
    for element in elements:
        for run in element.iter(d.run):
            if _has_text(run, d):
                return run
    return None


def _encode(children: list[etree._Element], d: Dialect
            ) -> tuple[list[inline.Item], etree._Element | None]:
    """A run container's children as an item tree, and the run new loose text is put in."""
    entries = _entries(children, d)
    weights: Counter[bytes] = Counter()
    first: dict[bytes, etree._Element] = {}
    for entry in entries:
        element = entry[1]
        if entry[0] == "el" and element.tag == d.run and _has_text(element, d):
            key = _run_key(element, d)
            weights[key] += sum(len(t.text or "") for t in element.iter(d.text)) + 1
            first.setdefault(key, element)
    base = weights.most_common(1)[0][0] if weights else None
    template = first[base] if base is not None else _first_text_run(children, d)
    items: list[inline.Item] = []
    for entry in entries:
        if entry[0] == "moved":
            items.append(Atom(_Moved(list(entry[1]))))
            continue
        if entry[0] == "field":
            inner, inner_template = _encode(list(entry[2]), d)
            if inline.plain_text(inner).strip():
                items.append(Shell(_Field(list(entry[1]), list(entry[3]),
                                          _either(inner_template, template)), inner))
            else:
                items.append(Atom(_Moved([*entry[1], *entry[2], *entry[3]])))
            continue
        element = entry[1]
        if element.tag == d.run and _has_text(element, d) and not (
                d.one_text and any(c.tag not in (d.props, d.text) for c in element)):
            content = _run_content(element, d)
            key = _run_key(element, d)
            if key == base:
                items.extend(content)
            else:
                items.append(Shell(_Run(element), content, key=key))
        elif element.tag in d.containers:
            keep_tags, slot = d.containers[element.tag]
            holder = element.find(slot) if slot else element
            inner, inner_template = (_encode(list(holder), d) if holder is not None
                                     else ([], None))
            if holder is None or not inline.plain_text(inner).strip() or any(
                    child.tag not in keep_tags and child is not holder
                    for child in element if slot):
                items.append(Atom(_Moved([element])))
            else:
                keep = [child for child in element if child.tag in keep_tags]
                items.append(Shell(_Container(element, keep, slot,
                                              _either(inner_template, template)), inner))
        elif element.tag == d.run:
            only_breaks = all(c.tag == d.props or c.tag in d.run_breaks for c in element)
            breaks = any(c.tag in d.run_breaks for c in element)
            items.append(Atom(_Moved([element]), brk=only_breaks and breaks))
        else:
            items.append(Atom(_Moved([element]), brk=element.tag in d.breaks))
    return inline.merge_adjacent(items), template


def encode_paragraph(paragraph: etree._Element, d: Dialect
                     ) -> tuple[list[inline.Item], etree._Element | None]:
    """A paragraph's content (its properties left out) as an item tree, and its run template."""
    content = [child for child in paragraph
               if child.tag not in d.head and child.tag not in d.tail
               and isinstance(child.tag, str)]
    return _encode(content, d)


# ------------------------------------------------------------------------- writing


class _Builder:
    """Writes a placed tree into a run container."""

    def __init__(self, d: Dialect):
        self.d = d

    def new_run(self, parent: etree._Element, template: etree._Element | None
                ) -> etree._Element:
        if template is None:
            return etree.SubElement(parent, self.d.run)
        run = etree.SubElement(parent, template.tag, attrib=dict(template.attrib))
        props = template.find(self.d.props)
        if props is not None:
            run.append(copy.deepcopy(props))
        return run

    def add_text(self, run: etree._Element, text: str) -> None:
        if not text:
            return
        last = run[-1] if len(run) else None
        if last is not None and last.tag == self.d.text:
            last.text = (last.text or "") + text
        else:
            last = etree.SubElement(run, self.d.text)
            last.text = text
        if self.d is WORD and last.text != last.text.strip():
            last.set(XML_SPACE, "preserve")

    def fill_run(self, run: etree._Element, children: list) -> None:
        for child in children:
            if isinstance(child, str):
                self.add_text(run, child)
            elif isinstance(child, Atom):
                for element in child.data.elements:
                    if self.d.one_text:
                        continue  # (never: such runs are moved whole)
                    run.append(element)
            else:  # a shell inside a run cannot happen; keep its content
                self.fill_run(run, child.children)

    def build(self, parent: etree._Element, placed: list, template: etree._Element | None
              ) -> None:
        run: etree._Element | None = None
        for item in placed:
            if isinstance(item, str):
                if not item:
                    continue
                if run is None:
                    run = self.new_run(parent, template)
                self.add_text(run, item)
            elif isinstance(item, Atom):
                moved: _Moved = item.data
                if moved.in_run and not self.d.one_text:
                    if run is None:
                        run = self.new_run(parent, template)
                    for element in moved.elements:
                        run.append(element)
                else:
                    run = None
                    for element in moved.elements:
                        parent.append(element)
            else:
                run = None
                self.build_shell(parent, item, template)

    def build_shell(self, parent: etree._Element, item: Placed,
                    template: etree._Element | None) -> None:
        data = item.shell.data
        if isinstance(data, _Run):
            self.fill_run(self.new_run(parent, data.element), item.children)
        elif isinstance(data, _Container):
            element = etree.SubElement(parent, data.element.tag,
                                       attrib=dict(data.element.attrib))
            for kept in data.keep:
                element.append(kept)
            holder = etree.SubElement(element, data.slot) if data.slot else element
            self.build(holder, item.children, data.template)
        else:  # a field: instruction, translated result, end
            for element in data.prefix:
                parent.append(element)
            self.build(parent, item.children, _either(data.template, template))
            for element in data.suffix:
                parent.append(element)


def rebuild_paragraph(paragraph: etree._Element, d: Dialect, placed: list,
                      template: etree._Element | None) -> None:
    """Replace a paragraph's content by the placed tree (properties kept first and last)."""
    tail = [child for child in paragraph if child.tag in d.tail]
    for child in list(paragraph):
        if child.tag not in d.head:
            paragraph.remove(child)
    _Builder(d).build(paragraph, placed, template)
    for child in tail:
        paragraph.append(child)


# ------------------------------------------------------------------------- packages


def content_types(job: Job) -> dict[str, str]:
    """Part name (no leading slash) -> content type."""
    tree = job.tree("[Content_Types].xml")
    defaults = {el.get("Extension", "").lower(): el.get("ContentType", "")
                for el in tree.getroot().iter(CT + "Default")}
    overrides = {el.get("PartName", "").lstrip("/"): el.get("ContentType", "")
                 for el in tree.getroot().iter(CT + "Override")}
    types = {}
    for name in job.package.names:
        if name in overrides:
            types[name] = overrides[name]
        else:
            types[name] = defaults.get(name.rsplit(".", 1)[-1].lower(), "")
    for name, kind in overrides.items():   # part names are case-insensitive
        for actual in job.package.names:
            if actual.lower() == name.lower():
                types[actual] = kind
    return types


def _paragraphs(job: Job, name: str, d: Dialect) -> None:
    root = job.tree(name).getroot()
    for paragraph in list(root.iter(d.paragraph)):
        items, template = encode_paragraph(paragraph, d)

        def build(placed, paragraph=paragraph, template=template):
            rebuild_paragraph(paragraph, d, placed, template)

        job.paragraph(items, build, name)


def _alt_texts(job: Job, name: str) -> None:
    for element in job.tree(name).getroot().iter():
        if local(element.tag) not in ("docPr", "cNvPr"):
            continue
        for attribute in ("descr", "title"):
            value = element.get(attribute)
            if value:
                job.plain(value, partial(element.set, attribute), name)


def _core_language(job: Job, types: dict[str, str]) -> None:
    for name, kind in types.items():
        if kind != CORE_PROPERTIES:
            continue
        language = job.tree(name).getroot().find(DC + "language")
        if language is not None:
            def finish(target, element=language, name=name):
                element.text = language_tag(target)
                job.touch(name)
            job.finishers.append(finish)


def _word_language(job: Job, name: str) -> None:
    def finish(target):
        for lang in job.tree(name).getroot().iter(W + "lang"):
            if lang.get(W + "val") is not None:
                lang.set(W + "val", language_tag(target))
                job.touch(name)
    job.finishers.append(finish)


def _slide_language(job: Job, name: str) -> None:
    def finish(target):
        for element in job.tree(name).getroot().iter(A + "rPr", A + "endParaRPr"):
            element.set("lang", language_tag(target))
        job.touch(name)
    job.finishers.append(finish)


def analyse_docx(job: Job) -> None:
    types = content_types(job)
    if not any(kind in WORD_MAIN for kind in types.values()):
        raise FileError("the file is not a Word document (.docx): it has no main document "
                        "part")
    for name in job.package.names:
        kind = types.get(name, "")
        if kind in WORD_PARTS:
            _paragraphs(job, name, WORD)
            _alt_texts(job, name)
            if name in job.changed:
                _word_language(job, name)
        elif kind in DRAWING_PARTS:
            _paragraphs(job, name, DRAWING)
        elif kind == WORD_STYLES:
            _word_language(job, name)
    _core_language(job, types)


def analyse_pptx(job: Job) -> None:
    types = content_types(job)
    if not any(kind in SLIDES_MAIN for kind in types.values()):
        raise FileError("the file is not a PowerPoint presentation (.pptx): it has no "
                        "presentation part")
    for name in job.package.names:
        kind = types.get(name, "")
        if kind in SLIDE_PARTS or kind in DRAWING_PARTS:
            _paragraphs(job, name, DRAWING)
            _alt_texts(job, name)
            if name in job.changed:
                _slide_language(job, name)
    _core_language(job, types)
