"""Office documents and e-books for ``/translate_file``: .docx, .pptx, .odt, .odp and .epub.

``parse_office(kind, data, max_chars)`` opens the zip package with bounded work (``zipsafe``:
size, entry-count, ratio and name checks from the central directory, enforced again while
reading; encrypted, corrupt and mislabelled packages refused), parses the parts that hold text
without entities, DTDs or network access (``xmlsafe``), and gives a ``Document`` whose texts are
HTML fragments (``text_format`` "html"): one per paragraph, its runs, links and spans as inline
elements that formats.markup places on the translated words by the attention alignment
(``inline``), plus alt texts and labels as plain text.  ``rebuild(translations)`` parses the
package again, writes every translation back into its paragraph (a fresh run per placed
element, with the original run's properties; tabs, breaks, images, fields and notes moved as
they are) and writes the package: every part without translated text is unchanged, entry names,
order, dates and compression methods are kept.

Formats: ``ooxml`` (Word and PowerPoint), ``odf`` (OpenDocument text and presentation),
``epub``.  Libraries chosen by measurement: bench/office/README.md."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.formats.documents import Document
from service.formats.office import epub, odf, ooxml
from service.formats.office.common import Job
from service.formats.office.zipsafe import DEFAULT_LIMITS, Package, ZipLimits

OFFICE_KINDS = ("docx", "pptx", "odt", "odp", "epub")
LABELS = {"docx": "Word document", "pptx": "PowerPoint presentation",
          "odt": "OpenDocument text", "odp": "OpenDocument presentation", "epub": "EPUB book"}


def _analyse(kind: str, data: bytes, max_chars: int, limits: ZipLimits) -> Job:
    job = Job(Package(data, limits, label=f".{kind} file"), max_chars)
    if kind == "docx":
        ooxml.analyse_docx(job)
    elif kind == "pptx":
        ooxml.analyse_pptx(job)
    elif kind in ("odt", "odp"):
        odf.analyse(job, kind)
    elif kind == "epub":
        epub.analyse(job)
    else:
        raise ValueError(f"not an office format: {kind}")
    return job


@dataclass
class OfficeDocument(Document):
    """A parsed office package; ``target`` (a language code), when set before ``rebuild`` or
    given to it, becomes the document's language tag."""

    data: bytes = b""
    max_chars: int = 0
    limits: ZipLimits = DEFAULT_LIMITS
    target: str | None = None

    def rebuild(self, translations: Sequence[str], target: str | None = None) -> bytes:
        if len(translations) != len(self.texts):
            raise ValueError(f"{len(translations)} translations for {len(self.texts)} texts")
        job = _analyse(self.kind, self.data, self.max_chars, self.limits)  # a fresh tree
        if job.texts != self.texts:   # pragma: no cover - parsing is deterministic
            raise RuntimeError("the package parsed differently the second time")
        return job.finish(list(translations), target or self.target)


def parse_office(kind: str, data: bytes, max_chars: int,
                 limits: ZipLimits = DEFAULT_LIMITS) -> OfficeDocument:
    """The texts of an office package (``FileError``/``FileTooLarge`` for unusable ones)."""
    job = _analyse(kind, data, max_chars, limits)
    return OfficeDocument(kind, list(job.texts), "html", data=data, max_chars=max_chars,
                          limits=limits)


__all__ = ["OFFICE_KINDS", "OfficeDocument", "ZipLimits", "parse_office"]
