"""XML parts parsed without entity expansion, external entities, DTDs or the network.

lxml (libxml2) with ``resolve_entities=False, no_network=True, load_dtd=False,
huge_tree=False``; on top of that a part that declares entities or carries an internal DTD
subset is refused before parsing (no office or EPUB part needs one), so the "billion laughs"
and external entity (XXE) attacks never reach the parser."""

from __future__ import annotations

import re

from lxml import etree

from service.formats.documents import FileError

_PARSER_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False,
                       dtd_validation=False, huge_tree=False, remove_blank_text=False,
                       remove_comments=False, remove_pis=False, strip_cdata=False,
                       recover=False, collect_ids=False)
_DOCTYPE_SUBSET = re.compile(rb"<!DOCTYPE[^>\[]*\[", re.IGNORECASE)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(**_PARSER_OPTIONS)


def parse_xml(data: bytes, name: str) -> etree._ElementTree:
    """A part's element tree; ``FileError`` for entity declarations, DTD subsets or bad XML."""
    head = data[:4096]
    if b"<!ENTITY" in data or _DOCTYPE_SUBSET.search(head):
        raise FileError(f"the part {name[:80]!r} declares XML entities (refused: entity "
                        "expansion and external entities are not allowed)")
    try:
        return etree.ElementTree(etree.fromstring(data, _parser()))
    except etree.XMLSyntaxError as error:
        raise FileError(f"the part {name[:80]!r} is not well-formed XML ({error})") from None
    except ValueError as error:  # e.g. unicode strings with an encoding declaration
        raise FileError(f"the part {name[:80]!r} cannot be read ({error})") from None


_DECLARATION = re.compile(rb"\s*<\?xml[^>]*\?>[ \t]*(\r?\n)?")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_STANDALONE = re.compile(rb"""standalone\s*=\s*["'](yes|no)["']""")


def serialize(tree: etree._ElementTree, original: bytes) -> bytes:
    """A changed part written back as UTF-8 after the original's XML declaration (kept as it
    was when it said UTF-8 or no encoding; else rewritten for UTF-8, ``standalone`` kept)."""
    body = etree.tostring(tree, encoding="UTF-8", xml_declaration=False)
    found = _DECLARATION.match(original)
    if found is None:
        return body
    declaration = found.group(0).lstrip()
    encoding = _ENCODING.search(declaration)
    if encoding is not None and encoding.group(1).lower().replace(b"_", b"-") not in (
            b"utf-8", b"utf8"):
        standalone = _STANDALONE.search(declaration)
        declaration = b'<?xml version="1.0" encoding="UTF-8"' + (
            b' standalone="' + standalone.group(1) + b'"' if standalone else b"") + b"?>\n"
    return declaration + body
