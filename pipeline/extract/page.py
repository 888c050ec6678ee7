"""One page: parse, title, ``<base href>``, walk, select the main content, assemble the output.

``extract_html`` walks the page once with boilerplate-flagged subtrees collapsed and runs the
strict selection; with under 500 characters of result it walks again *into* those subtrees and
runs the relaxed attempts (``main_content.py``), keeping whichever result has more text. A result
still short and without article-like prose (fewer than two blocks of a dozen words or 80 characters
ending a sentence, or one of forty words) gives way to the whole page less its boilerplate-flagged parts when
that holds more: a listing, a table of figures, a page of link items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser

from pipeline.config import ExtractConfig
from pipeline.extract.assemble import _assemble
from pipeline.extract.images import ImageRef
from pipeline.extract.main_content import (
    _ATTEMPTS,
    _MIN_ARTICLE_CHARS,
    _drop_title_heading,
    _select,
    _whole_page,
)
from pipeline.extract.walk import _walk


@dataclass(frozen=True)
class Extraction:
    title: str
    nodes: list[str | ImageRef]  # text blocks and images, in reading order


def _text_of(node) -> str:
    return " ".join(node.text().split()) if node is not None else ""


def _title(tree: LexborHTMLParser) -> str:
    """<title> in <head>, else og:title, else a <title> that the parser moved into <body>."""
    head = tree.head
    title = _text_of(head.css_first("title")) if head is not None else ""
    if title:
        return title
    meta = tree.css_first('meta[property="og:title"], meta[name="og:title"], meta[name="twitter:title"]')
    if meta is not None:
        title = " ".join((meta.attributes.get("content") or "").split())
    if not title:
        for node in tree.css("title"):
            parent = node.parent
            if parent is not None and parent.tag in ("head", "body", "html"):
                return _text_of(node)
    return title


def _base(tree: LexborHTMLParser, base_url: str) -> str:
    """The page URL resolved by the first <base href>.

    Looked for in <head>; in the whole document only when <head> has no <title> either (the
    parser ended <head> early and moved what followed into <body>).
    """
    head = tree.head
    node = head.css_first("base[href]") if head is not None else None
    if node is None and (head is None or head.css_first("title") is None):
        node = tree.css_first("base[href]")
    href = (node.attributes.get("href") or "").strip() if node is not None else ""
    if not href:
        return base_url
    try:
        return urljoin(base_url, href)
    except ValueError:
        return base_url


def extract_html(html: str, base_url: str, config: ExtractConfig) -> Extraction:
    """Main-content text blocks and images, in reading order, from one HTML page.

    Any string is valid input: the HTML parser accepts everything (binary junk, lone surrogates,
    unclosed tags), and an empty or frameset page gives an Extraction with no nodes. Nothing here
    catches errors: an exception is a bug, and the caller (``HtmlToDocuments``) records it per page
    as an ``extract_error`` drop.
    """
    # UTF-8 bytes: selectolax parses them about 40% faster than a str (which it encodes on a slower
    # path); a lone surrogate cannot be encoded and is dropped, as the str path drops it too.
    tree = LexborHTMLParser(html.encode("utf-8", "ignore"))
    title = _title(tree)
    body = tree.body
    if body is None:
        return Extraction(title, [])
    doc = strict = _walk(body, collapse_bad=True)
    length, roots, keep = _select(doc, _ATTEMPTS[:1])
    if length < _MIN_ARTICLE_CHARS:
        # Too little outside the boilerplate-flagged parts: look inside them too (relaxed).
        full = _walk(body, collapse_bad=False)
        relaxed = _select(full, _ATTEMPTS[1:])
        if relaxed.length > length:
            doc, (length, roots, keep) = full, relaxed
    base = _base(tree, base_url)
    _drop_title_heading(doc, roots, keep, title)
    nodes = _assemble(doc, roots, keep, base, config)
    if length < _MIN_ARTICLE_CHARS and _prose_blocks(nodes) < 2:
        # Still short, and no article-like prose in it: a listing, a table of figures, a page of
        # link items. The page less its boilerplate-flagged parts says more.
        page = _whole_page(strict)
        if page.length > length:
            _drop_title_heading(strict, page.roots, page.keep, title)
            nodes = _assemble(strict, page.roots, page.keep, base, config)
    return Extraction(title, nodes)


_SENTENCE_END = re.compile(r"[.!?。！？…]['\"”’»)]*$")


def _prose_blocks(nodes: list[str | ImageRef]) -> int:
    """Text blocks that read like article prose: a sentence end, and at least 12 words or 80
    characters (a language written without spaces); one of 40 words or 250 characters counts twice."""
    count = 0
    for n in nodes:
        if isinstance(n, str) and _SENTENCE_END.search(n):
            words = n.count(" ") + 1
            count += (words >= 12 or len(n) >= 80) + (words >= 40 or len(n) >= 250)
    return count
