"""A paragraph's inline content as an HTML fragment, and the translated fragment read back.

A paragraph is a tree of items: text, ``Shell`` (an element rebuilt around its translated
content: a run with its properties, a hyperlink, a span with its style) and ``Atom`` (content
that is moved as it is: tabs, breaks, images, fields, bookmarks, footnote references).  It is
written as ``<span data-r="N">...</span>`` per shell, ``<br data-a="N">`` per atom that
separates words (tab, line break, ODF's ``text:s``) and ``<img data-a="N">`` per other atom, and
translated with ``text_format`` html: formats.markup places every tag on the translated words by
the attention alignment and gives each tag back exactly once, nested as before.  ``read_back``
turns the placed fragment into the same kind of tree (shells with their new children), which
each format turns into XML again, so a run is never split into a broken structure or lost."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r'<span data-r="(\d+)">|</span>|<(br|img) data-a="(\d+)">')


@dataclass(eq=False)
class Shell:
    """An element rebuilt around new content; ``data`` is the format's own record."""

    data: Any
    children: list[Item] = field(default_factory=list)
    key: Any = None   # adjacent shells with equal (non-None) keys are merged


@dataclass(eq=False)
class Atom:
    """Content moved as it is; ``brk`` when it separates words (tab, line break, space)."""

    data: Any
    brk: bool = False


Item = str | Shell | Atom


def plain_text(items: list[Item]) -> str:
    """The text of a tree (shells' text included, atoms left out)."""
    out: list[str] = []
    stack = list(reversed(items))
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, Shell):
            stack.extend(reversed(item.children))
    return "".join(out)


def merge_adjacent(items: list[Item]) -> list[Item]:
    """Adjacent shells with the same key become one (their children joined)."""
    out: list[Item] = []
    for item in items:
        previous = out[-1] if out else None
        if (isinstance(item, Shell) and isinstance(previous, Shell) and item.key is not None
                and item.key == previous.key):
            previous.children.extend(item.children)
        else:
            out.append(item)
    return out


@dataclass
class Encoded:
    """A paragraph's fragment and the shells and atoms its tags number."""

    html: str
    shells: list[Shell]
    atoms: list[Atom]
    items: list[Item]


def encode(items: list[Item]) -> Encoded:
    """The HTML fragment of a tree (explicit stack: no recursion limit)."""
    out: list[str] = []
    shells: list[Shell] = []
    atoms: list[Atom] = []
    stack: list[Any] = [iter(items)]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            if stack:
                out.append("</span>")
            continue
        if isinstance(item, str):
            out.append(html.escape(item, quote=False))
        elif isinstance(item, Atom):
            out.append(f'<{"br" if item.brk else "img"} data-a="{len(atoms)}">')
            atoms.append(item)
        else:
            out.append(f'<span data-r="{len(shells)}">')
            shells.append(item)
            stack.append(iter(item.children))
    return Encoded("".join(out), shells, atoms, items)


@dataclass(eq=False)
class Placed:
    """A shell in the translation, with its translated children."""

    shell: Shell
    children: list[Placed | Atom | str] = field(default_factory=list)


def read_back(encoded: Encoded, translated: str) -> list[Placed | Atom | str]:
    """The translated fragment as a tree; every shell and atom exactly once (a placement that
    lost or repeated one, which formats.markup does not do, falls back to the plain text
    followed by the atoms)."""
    root: list[Placed | Atom | str] = []
    stack = [root]
    used_shells: set[int] = set()
    used_atoms: set[int] = set()
    position = 0
    ok = True
    for match in _TOKEN.finditer(translated):
        if match.start() > position:
            stack[-1].append(html.unescape(translated[position:match.start()]))
        position = match.end()
        if match.group(1) is not None:
            number = int(match.group(1))
            if number >= len(encoded.shells) or number in used_shells:
                ok = False
                break
            used_shells.add(number)
            placed = Placed(encoded.shells[number])
            stack[-1].append(placed)
            stack.append(placed.children)
        elif match.group(0) == "</span>":
            if len(stack) == 1:
                ok = False
                break
            stack.pop()
        else:
            number = int(match.group(3))
            if number >= len(encoded.atoms) or number in used_atoms:
                ok = False
                break
            used_atoms.add(number)
            stack[-1].append(encoded.atoms[number])
    if position < len(translated):
        stack[-1].append(html.unescape(translated[position:]))
    if ok and len(used_shells) == len(encoded.shells) and len(used_atoms) == len(encoded.atoms):
        return root
    text = html.unescape(_TOKEN.sub(" ", translated))
    return [" ".join(text.split()), *encoded.atoms]


def escape_text(text: str) -> str:
    """A plain text (alt text, a title) as an HTML text to translate."""
    return html.escape(text, quote=False)


def unescape_text(translated: str) -> str:
    """A translated plain text back from HTML (tags, if any, dropped)."""
    return html.unescape(re.sub(r"<[^>]*>", "", translated))
