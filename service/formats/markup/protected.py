"""Protected spans of a segment made opaque atoms: their characters (and the inline elements
wholly inside them, e.g. Mastodon's ``<a class="mention">@<span>anna</span></a>``) leave the
text the model translates and come back verbatim, as one atom each, where the attention
alignment places them (as ``<code>`` does).

A span is cut at the edges of any element that crosses it (``<b>Hallo @an</b>na``: two atoms,
``@an`` inside ``b`` and ``na`` after it), so every tag stays in the tree exactly once. Where
a span is taken out, the whitespace left around it is tidied for the model (``Hallo @anna,
wie`` is seen as ``Hallo, wie``); the atom remembers the source's spacing and keeps it on the
translation (``Tag.word``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from service.formats.markup.segment import CLOSING, Node, Segment, Tag, escape_text


def _strictly_bigger(child: Node, start: int, end: int) -> bool:
    return (not child.atom and child.start <= start and end <= child.end
            and (child.start, child.end) != (start, end))


def _container(root: Node, start: int, end: int) -> Node:
    """The deepest element whose characters hold start..end with room to spare."""
    node = root
    while True:
        for child in node.children:
            if _strictly_bigger(child, start, end):
                node = child
                break
        else:
            return node


def _classify(child: Node, start: int, end: int) -> str:
    """inside, outside or crossing the span start..end."""
    if child.atom or child.start == child.end:
        return "inside" if start < child.start < end else "outside"
    if child.end <= start or child.start >= end:
        return "outside"
    if start <= child.start and child.end <= end:
        return "inside"
    return "crossing"


def _pieces(root: Node, spans: Sequence[tuple[int, int]]
            ) -> list[tuple[int, int, Node, list[Node]]]:
    """Each span as balanced pieces: (start, end, container, its children wholly inside)."""
    out: list[tuple[int, int, Node, list[Node]]] = []
    work = [tuple(span) for span in reversed(spans)]
    while work:
        start, end = work.pop()
        container = _container(root, start, end)
        inside: list[Node] = []
        cuts: set[int] = set()
        for child in container.children:
            where = _classify(child, start, end)
            if where == "inside":
                inside.append(child)
            elif where == "crossing":
                cuts.update(bound for bound in (child.start, child.end) if start < bound < end)
        if cuts:
            bounds = [start, *sorted(cuts), end]
            work += [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)][::-1]
            continue
        out.append((start, end, container, inside))
    return out


def _raw(segment: Segment, start: int, end: int, inside: list[Node],
         escape: Callable[[str], str]) -> str:
    """The span's text with the tags of the elements inside it, in document order."""
    out: list[str] = []
    text = segment.text
    cursor = start
    for top in inside:
        out.append(escape(text[cursor:top.start]))
        stack: list[list] = [[top, 0, top.start]]
        if top.open is not None:
            out.append(top.open.raw)
        while stack:
            frame = stack[-1]
            node, index, position = frame
            if index < len(node.children):
                child = node.children[index]
                out.append(escape(text[position:child.start]))
                frame[1], frame[2] = index + 1, child.end
                if child.open is not None:
                    out.append(child.open.raw)
                stack.append([child, 0, child.start])
                continue
            out.append(escape(text[position:node.end]))
            if node.close is not None and not node.atom:
                out.append(node.close.raw)
            stack.pop()
        cursor = max(cursor, top.end)
    out.append(escape(text[cursor:end]))
    return "".join(out)


def _kept(text: str, pieces: Sequence[tuple[int, int]]) -> list[int]:
    """Old index -> new index (len(text) + 1 entries) once the pieces are taken out and the
    spaces left at the text's edges, doubled, or before closing punctuation are dropped."""
    keep = [True] * len(text)
    for start, end in pieces:
        keep[start:end] = [False] * (end - start)
    kept = [index for index in range(len(text)) if keep[index]]
    last: int | None = None  # the last kept character so far
    for number, index in enumerate(kept):
        if text[index] != " ":
            last = index
            continue
        following = kept[number + 1] if number + 1 < len(kept) else None
        if (last is None or following is None or text[last] == " "
                or (following != index + 1 and text[following] in CLOSING)):
            keep[index] = False
        else:
            last = index
    kept = [index for index in range(len(text)) if keep[index]]
    while kept and text[kept[-1]] == " ":
        keep[kept.pop()] = False
    mapping = [0] * (len(text) + 1)
    count = 0
    for index in range(len(text)):
        mapping[index] = count
        count += keep[index]
    mapping[len(text)] = count
    return mapping


def protect_segment(segment: Segment, spans: Sequence[tuple[int, int]]) -> Segment | None:
    """The segment with each span (sorted, disjoint character ranges of its text) an atom;
    None when the text left has no letter or digit (the run then stays verbatim)."""
    spans = [(start, end) for start, end in spans if 0 <= start < end <= len(segment.text)]
    if not spans:
        return segment
    if segment.plain:
        def escape(chunk: str) -> str:
            return chunk
    else:
        def escape(chunk: str) -> str:
            return escape_text(chunk, segment.entities)
    text = segment.text
    pieces = _pieces(segment.root, spans)
    mapping = _kept(text, [(start, end) for start, end, _, _ in pieces])
    new_text = "".join(char for index, char in enumerate(text)
                       if mapping[index + 1] > mapping[index])
    if not any(char.isalnum() for char in new_text):
        return None
    removed: set[int] = set()
    for start, end, container, inside in pieces:
        tag = Tag(_raw(segment, start, end, inside, escape),
                  ws_before=start > 0 and text[start - 1] == " ",
                  ws_after=end < len(text) and text[end] == " ", word=True)
        atom = Node(0, start, start, open=tag, atom=True)
        for node in inside:
            removed.add(id(node))
        children = [child for child in container.children if id(child) not in removed]
        at = sum(1 for child in children if child.end <= start and child.start < end)
        children.insert(at, atom)
        container.children = children
    nodes: list[Node] = []
    stack = [segment.root]
    while stack:  # pre-order: document order, new positions
        node = stack.pop()
        node.order = len(nodes)
        nodes.append(node)
        node.start, node.end = mapping[node.start], mapping[node.end]
        stack.extend(reversed(node.children))
    segment.root.start, segment.root.end = 0, len(new_text)
    return Segment(new_text, segment.root, nodes, segment.leading, segment.trailing,
                   segment.entities, segment.plain)


def protector_of(find: Callable[[str], Sequence]) -> Callable[[Segment], Segment | None]:
    """protect_segment with the spans ``find(text)`` gives (objects with start and end)."""
    def protect(segment: Segment) -> Segment | None:
        found = find(segment.text)
        return protect_segment(segment, [(span.start, span.end) for span in found])
    return protect
