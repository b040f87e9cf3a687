"""Translate the text of HTML and keep its markup (``format: "html"``): ``parse_html`` cuts a
fragment into segments to translate and verbatim parts; ``HtmlFragment.render`` puts the
translated segments back, the inline tags placed by the attention alignment.


Parser
    Python's own ``html.parser`` used as a tokenizer only. Each token's raw text is the slice of
    the input from its position (``getpos()`` at the handler call) to the next token's, so the
    tokens partition the input and untouched markup is re-emitted byte for byte: attribute
    quoting, upper-case tags, ``&nbsp;``/``&hellip;``/``&#39;`` spellings, stray ``<`` and broken
    entities alike. Text runs up to the next ``<`` (``convert_charrefs=True``; with False the
    stdlib stops at a ``&#`` without digits and takes the rest of the input for text) and is
    decoded with ``html.unescape``. Chosen with bench/html_parsers.py (figures in
    bench/html_parsers.json, 13 realistic fragments incl. a Mastodon status, Python 3.11):
    only this tokenizer gives all 13 back exactly; selectolax 1.0 (Lexbor), lxml 6.1 and
    BeautifulSoup 4.15 with html5lib or html.parser build a DOM and serialize it again, which
    rewrites quoting and entities and repairs malformed input (2-3 of 13 exact; lxml also cuts
    nesting at 255 levels). They are faster (Mastodon status: lxml 23 us, selectolax 52 us,
    this tokenizer 118 us, parse_html + render 370 us) but that is small next to translating a
    sentence. We build the small per-segment element tree ourselves; no extra dependency.

Segments
    Tokens are sorted into runs of inline content (text, the inline elements in ``INLINE``,
    atoms) separated by everything else (block and unknown elements, doctype, processing
    instructions), which is copied verbatim. Atoms take no characters: empty elements (``br``,
    ``img``, ``wbr``, ``input``, ``embed``), comments, stray end tags and the untranslated
    elements in ``OPAQUE_INLINE`` (``code``, ``script``, ``style``, ``textarea``, ...), whose
    whole content is copied. ``pre`` is an untranslated block, and so is any element marked
    ``translate="no"`` or with the class ``notranslate`` (an inline one is an atom; what is
    under it is not translated, a nested ``translate="yes"`` included). A run's text (entities
    decoded, ASCII whitespace collapsed, stripped; ``br`` separates words) is a segment when it
    has a letter or digit; otherwise the run stays verbatim, and so does the whitespace around a
    segment. The inline elements of a run form a tree of character spans over the segment text.
    Malformed nesting is absorbed there: an end tag closes the nearest open element of its name
    (elements opened above it end there, without an end tag), an end tag with nothing to close
    is an atom, elements still open at the end of the run extend to its end. Nothing recurses:
    trees are walked with explicit stacks, so thousands of nesting levels are fine.

Protected spans
    ``parse_html(html, protect)``: each segment's protected spans (URLs, handles, hashtags,
    emoji, placeholders, ...: service.formats.protect) become atoms holding their text and
    the inline elements wholly inside them (markup.protected), so the model never sees them
    and they come back verbatim where the alignment places them. Plain texts go through the
    same segments, unescaped (markup.plain).

Placement
    Source pieces are mapped to character spans of the segment text (NFKC, case and whitespace
    ignored, mismatches tolerated). Each target piece is aligned to the source piece with the
    highest attention weight; a target piece that copies its source piece exactly is cut where
    markup cuts the source (``@<span>anna</span>`` survives). An element covers the smallest
    contiguous range of target pieces aligned into it, clamped to its parent's range;
    overlapping siblings are separated at the boundary that misplaces the fewest aligned
    pieces. Atoms and elements without aligned pieces sit before the target piece aligned to
    the first source piece after their position (an element with text then wraps that piece
    when no sibling holds it); an element without end tag comes last among its siblings, so
    that re-parsing gives the same tree. Every tag of the input comes out once, with its raw
    text. Spaces between words go where the source had whitespace next to the tags there, but
    never just inside an element's edge. When the alignment is unusable (no pieces, no or
    garbled attention, pieces that do not match the text) a proportional one is used.

Limitations
    Attribute values (``title``, ``alt``, ``placeholder``) are not translated. Text entities
    other than those the segment itself used (and ``&amp; &lt; &gt; &nbsp;``) come out as
    characters. An end tag that closes an element opened outside its run (``<b>`` before a
    block, ``</b>`` inside the next one) is an atom and may move with the words.

Time
    Linear (n log n where sorting) in the input: the stdlib tokenizer is quadratic on
    thousands of unclosed ``<!--``, ``</x``, ``<?``, ``<![CDATA[`` or start tags (it searches
    the rest of the input from each); here what follows the last ``>`` is one text token (no
    tag can end there), and a ``<!--`` or ``<![`` that no closer follows is "incomplete" at
    once (the tokens are the stdlib's). Spaces around runs of tags are placed in one pass,
    and the units each element looks at are bounded (``place.SCAN_PER_UNIT``): past the
    bound, deeply nested elements are placed by the positions of their first and last
    characters. An 80 KB ``<!--`` file took 4.0 s and a 96 KB run of spaced inline tags
    19.3 s of CPU before; both are well under 2 s now (tests/test_files_bounded.py).
"""

from service.formats.markup.place import MARK, AlignedText
from service.formats.markup.render import HtmlFragment, parse_html
from service.formats.markup.tokenize import MarkupError, Token, entity_refs, tokenize

__all__ = ["MARK", "AlignedText", "HtmlFragment", "MarkupError", "Token", "entity_refs",
           "parse_html", "tokenize"]
