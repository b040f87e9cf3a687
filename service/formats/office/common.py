"""What the format modules share: the texts of a package (deduplicated, counted against the
character limit) and the edits to make once they are translated."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lxml import etree

from service.formats.documents import FileTooLarge
from service.formats.office import inline
from service.formats.office.xmlsafe import parse_xml, serialize
from service.formats.office.zipsafe import Package


def worth_translating(text: str) -> bool:
    """Whether a text has a letter or a digit (else it is left as it is)."""
    return any(char.isalnum() for char in text)


@dataclass
class Job:
    """The texts (HTML) of a package and, per text, the edits that put a translation back."""

    package: Package
    max_chars: int
    texts: list[str] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)
    _chars: int = 0
    edits: list[tuple[int, Callable[[str], None]]] = field(default_factory=list)
    trees: dict[str, etree._ElementTree] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    finishers: list[Callable[[str], None]] = field(default_factory=list)
    raw: dict[str, bytes] = field(default_factory=dict)   # parts written as given
    after: list[Callable[[str | None], None]] = field(default_factory=list)

    def text(self, html: str, edit: Callable[[str], None], part: str) -> None:
        """Translate ``html``; ``edit(translation)`` puts it back into ``part``."""
        number = self._index.get(html)
        if number is None:
            number = len(self.texts)
            self._chars += len(html)
            if self._chars > self.max_chars:
                raise FileTooLarge(f"file is too large: more than {self.max_chars} characters "
                                   "of text")
            self._index[html] = number
            self.texts.append(html)
        self.edits.append((number, edit))
        self.changed.add(part)

    def plain(self, text: str, edit: Callable[[str], None], part: str) -> None:
        """Translate a plain text (alt text, a label) given and taken back as plain text."""
        if worth_translating(text):
            self.text(inline.escape_text(text),
                      lambda translated: edit(inline.unescape_text(translated)), part)

    def paragraph(self, items: list[inline.Item], build: Callable[[list], None],
                  part: str) -> None:
        """Translate a paragraph tree; ``build(placed)`` rewrites it from the placed tree."""
        if not worth_translating(inline.plain_text(items)):
            return
        encoded = inline.encode(items)
        self.text(encoded.html, lambda translated: build(inline.read_back(encoded, translated)),
                  part)

    def tree(self, name: str) -> etree._ElementTree:
        """A part's element tree (parsed once, safely)."""
        if name not in self.trees:
            self.trees[name] = parse_xml(self.package.read(name), name)
        return self.trees[name]

    def finish(self, translations: Sequence[str], target: str | None) -> bytes:
        """Apply the translations (and the language tag), write the package."""
        if len(translations) != len(self.texts):
            raise ValueError(f"{len(translations)} translations for {len(self.texts)} texts")
        for number, edit in self.edits:
            translation = translations[number]
            if not isinstance(translation, str):
                raise TypeError("translations must be strings")
            edit(translation)
        if target:
            for finisher in self.finishers:
                finisher(target)
        for step in self.after:
            step(target)
        replaced = {name: serialize(self.trees[name], self.package.read(name))
                    for name in self.changed if name in self.trees}
        replaced.update(self.raw)
        return self.package.rebuild(replaced)

    def touch(self, name: str) -> None:
        """Mark a part as changed (written back)."""
        self.changed.add(name)


def local(tag: object) -> str:
    """An element's local name ('' for comments and processing instructions)."""
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def language_parts(target: str) -> tuple[str, str]:
    """``("en", "US")`` from ``en-us``/``en_US``; the region is ``""`` when not given."""
    pieces = re.split(r"[-_]", target.strip())
    language = pieces[0].lower()
    region = next((p.upper() for p in pieces[1:] if len(p) == 2 and p.isalpha()), "")
    return language, region


def language_tag(target: str) -> str:
    """A BCP 47 tag for the target, e.g. ``en`` or ``pt-BR``."""
    language, region = language_parts(target)
    return f"{language}-{region}" if region else language
