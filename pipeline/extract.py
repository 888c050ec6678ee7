"""HTML → main-content text blocks and images in reading order.

One lexbor parse (selectolax), one iterative walk in Python, then cheap arithmetic on what the
walk recorded. Runs at about the speed of resiliparse's C++ ``extract_plain_text`` and scores
higher than trafilatura against Readability's output (see ``bench/extract.py``).

**The walk** (``_walk``) records the elements of ``<body>`` in document order (tag, parent, last
descendant, a boilerplate verdict from tag/class/id/role) and a flat stream of *events*: text
runs, block boundaries, ``<br>`` and images. Inline tags (a, span, b, …) get no record of their
own; subtrees that are never content (script, style, svg, form controls, hidden nodes, …) are not
entered. Boilerplate-flagged subtrees (nav, aside, footer, class/id like ``sidebar``, ``comment``,
``share``, role=navigation, …) are recorded but not entered either: they hold about half of a
typical page, and the strict selection ignores them anyway.

**Main-content selection** (``_select``) is readability-like and works on prefix sums over the
event stream, so "text / link text / commas below element *i*" is O(1):

* every paragraph (p, pre, td, h2-h6, a div without block children, or the loose text of a
  div-like element) with ≥ 25 characters scores ``1 + commas + min(len/100, 3)`` and hands that
  to its parent (full), grandparent (half) and up to three more ancestors (less);
* a container starts from a tag prior (``div`` +5, lists −3, headings −5, …), a class/id weight
  (``article``/``content``/``post`` +25, ``comment``/``sidebar``/``share`` −25) and a bonus for an
  explicit article container (``<article>``, ``<main>``, ``role=main``, ``itemprop=articleBody``);
* scores are scaled by ``1 − link density``; the best container wins, is widened to a common
  ancestor when several near-equal candidates share one, and its good siblings join it;
* inside the winner, containers are cleaned conditionally, innermost first (link-heavy blocks,
  link lists, image galleries without text, form-like blocks, embeds), and a heading that
  repeats the title goes.

With under 500 characters of result, the page is walked again *into* the boilerplate-flagged
subtrees and selection is retried with the flags ignored, then without class weights, then
without cleaning; the first attempt with enough text wins, else the longest (readability's
retry loop: a site whose article wrapper is called ``post-sidebar-layout`` keeps its article).

**Images** keep their event position, so they come out interleaved with the text blocks around
them. The URL comes from ``srcset`` (largest candidate), lazy-load attributes (``data-src``,
``data-srcset``, …), ``src`` or a ``<picture><source>``, made absolute against ``<base href>``;
data URIs and images with a declared side below ``min_image_side`` (pixels, icons, rules) are
skipped, repeats are dropped, and a ``<noscript>`` fallback replaces the placeholder before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from operator import itemgetter
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser

from pipeline.config import ExtractConfig


@dataclass(frozen=True)
class ImageRef:
    url: str  # absolute, after <base href> and srcset resolution
    alt: str
    width: int | None  # declared in the HTML; None when absent, unparsable or implausible (0, > 65535)
    height: int | None


@dataclass(frozen=True)
class Extraction:
    title: str
    nodes: list[str | ImageRef]  # text blocks and images, in reading order


# --------------------------------------------------------------------------------------------------
# Tag tables
# --------------------------------------------------------------------------------------------------

#: Never content: not entered, not recorded.
_SKIP_TAGS = frozenset(
    """script style template svg head title meta link base canvas map area frameset frame noembed
    dialog datalist option optgroup param source track annotation annotation-xml""".split()
)
#: Recorded as leaf elements (counted by the conditional cleaner) but never entered.
_INPUT_TAGS = frozenset("input select textarea button".split())
_EMBED_TAGS = frozenset("iframe video audio object embed".split())
#: Tags that start and end a text block.
_BLOCK_TAGS = frozenset(
    """p div section article main header footer aside nav h1 h2 h3 h4 h5 h6 ul ol li dl dt dd table
    thead tbody tfoot tr caption blockquote pre figure figcaption form fieldset legend address hr
    details summary center body html noscript menu hgroup""".split()
)
#: Table cells: separated by a space inside their row's block.
_CELL_TAGS = frozenset(("td", "th"))
#: Boilerplate by tag alone (soft: relaxed if the strict pass finds too little).
_BOILER_TAGS = frozenset(("nav", "aside", "footer"))
#: Never boilerplate by class/id: media and explicit article containers.
_NEVER_BOILER = frozenset(("article", "main", "figure", "picture", "img"))
#: Explicit article containers.
_ARTICLE_TAGS = frozenset(("article", "main"))
#: Whose own inline text counts as a paragraph for scoring.
_PARA_TAGS = frozenset("p pre td h2 h3 h4 h5 h6".split())
_HEADINGS = frozenset("h1 h2 h3 h4 h5 h6".split())
_TEXT_CONTAINERS = frozenset(("div", "section", "article", "main", "center", "body"))
#: Containers the conditional cleaner looks at.
_CLEAN_TAGS = frozenset("div section table ul form fieldset".split())
_TAG_PRIOR = {
    "div": 5,
    "article": 5,
    "main": 5,
    "section": 2,
    "pre": 3,
    "td": 3,
    "blockquote": 3,
    "address": -3,
    "ol": -3,
    "ul": -3,
    "dl": -3,
    "dd": -3,
    "dt": -3,
    "li": -3,
    "form": -3,
    "h1": -5,
    "h2": -5,
    "h3": -5,
    "h4": -5,
    "h5": -5,
    "h6": -5,
    "th": -5,
}

# --------------------------------------------------------------------------------------------------
# Class / id heuristics
# --------------------------------------------------------------------------------------------------

#: Distinctive boilerplate words, matched as substrings of class/id ("comments-area", "mainNav").
_BOILER_SUBSTR = re.compile(
    r"sidebar|comment|breadcrumb|footer|navbar|navigation|advert|sponsor|cookie|social|sharedaddy"
    r"|related|newsletter|popup|disqus|masthead|pagination|subscribe|signup|skyscraper"
    r"|banner|outbrain|taboola|promo|recommend|consent|gdpr|toolbar|byline|author-info|community"
    r"|replies|shoutbox|supplemental|agegate|legends"
)
#: Short boilerplate words, matched as whole class/id tokens only ("nav", not "canvas").
_BOILER_TOKENS = frozenset(
    """nav menu ad ads adsbygoogle tags tag tools header topbar skip login modal rss print meta
    extra legal copyright jump share sharing pager remark""".split()
)
#: Words that mark a real content container; they veto the boilerplate verdict.
_CONTENT_WORDS = re.compile(r"article|content|main|body|entry|story|post-text|prose|blog-post|h-entry")
_POSITIVE = re.compile(r"article|content|entry|main|page|post|text|blog|story|body|prose")
_NEGATIVE = re.compile(
    r"comment|sidebar|share|social|sponsor|promo|related|footer|masthead|widget|banner|advert|meta"
    r"|shopping|tags|tool|nav|menu|outbrain|taboola|popup|subscribe|newsletter|breadcrumb|byline|foot"
)
_TOKEN_SPLIT = re.compile(r"[^a-z0-9]+")
_BOILER_ROLES = frozenset(
    "navigation menu menubar complementary banner contentinfo dialog alertdialog alert search".split()
)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden")


@lru_cache(maxsize=1 << 16)
def _class_verdict(cls: str, ident: str) -> tuple[bool, int, str]:
    """(looks like boilerplate, readability-style weight, lowercased names) for class and id.

    Weight: +25 for content-ish words, -25 for boilerplate-ish words (both can apply).
    Boilerplate: a distinctive word anywhere, or a short word as a whole token — unless a content
    word (article, content, main, entry, …) is present too, so "article-sidebar-layout" survives.
    An id that reads like a slugified heading ("sharing-with-a-single-developer") is not
    evidence either way.
    """
    names = f"{cls} {ident}".lower()
    if ident and ident.count("-") + ident.count("_") >= 3:
        names_for_verdict = cls.lower()
    else:
        names_for_verdict = names
    weight = 0
    if _POSITIVE.search(names_for_verdict):
        weight += 25
    if _NEGATIVE.search(names_for_verdict):
        weight -= 25
    if _CONTENT_WORDS.search(names_for_verdict):
        return False, weight, names
    boiler = bool(_BOILER_SUBSTR.search(names_for_verdict)) or not _BOILER_TOKENS.isdisjoint(
        _TOKEN_SPLIT.split(names_for_verdict)
    )
    return boiler, weight, names


def _verdict(tag: str, attrs: dict) -> tuple[bool, int, bool, str]:
    """(boilerplate, weight, explicit article container, names) of one element."""
    cls = attrs.get("class")
    ident = attrs.get("id")
    if cls or ident:
        bad, weight, names = _class_verdict(cls or "", ident or "")
    else:
        bad, weight, names = False, 0, ""
    hint = tag in _ARTICLE_TAGS
    role = attrs.get("role")
    if role:
        if role in _BOILER_ROLES:
            bad = True
        elif role == "main" or role == "article":
            hint = True
    if not hint and attrs.get("itemprop") == "articleBody":
        hint = True
    if tag in _BOILER_TAGS:
        bad = True
    elif hint or tag in _NEVER_BOILER:
        bad = False
    return bad, weight, hint, names


def _is_hidden(attrs: dict) -> bool:
    """Invisible: ``hidden``, ``aria-hidden="true"`` (bar readability's fallback images), or an
    inline style with ``display: none`` / ``visibility: hidden``."""
    if "hidden" in attrs:
        return True
    if attrs.get("aria-hidden") == "true" and "fallback-image" not in (attrs.get("class") or ""):
        return True
    style = attrs.get("style")
    return bool(style) and _HIDDEN_STYLE.search(style.lower()) is not None


# --------------------------------------------------------------------------------------------------
# The walk
# --------------------------------------------------------------------------------------------------

# Event kinds. Events are tuples (kind, element, data, text length, text length outside
# boilerplate, link text length, link text length outside boilerplate, commas, block element).
_TEXT, _PRE, _BREAK, _BR, _IMG, _NOSCRIPT_IMG = range(6)
_BREAK_EV = (_BREAK, 0, None, 0, 0, 0, 0, 0, 0)
_BR_EV = (_BR, 0, None, 0, 0, 0, 0, 0, 0)

#: Inline tags that get no element record: their text belongs to the enclosing element.
_TRANSPARENT = frozenset(
    """a span b strong i em u s small big font abbr cite code sup sub mark q time kbd var tt del ins
    label bdi bdo nobr dfn samp strike acronym wbr""".split()
)
#: Recorded, never entered.
_LEAF_TAGS = frozenset(("img", "br", "noscript", "hr")) | _INPUT_TAGS | _EMBED_TAGS

#: Form controls and embeds are recorded under one name each (the cleaner only counts them).
_ALIAS = {t: "input" for t in _INPUT_TAGS} | {t: "embed" for t in _EMBED_TAGS}

# How the walk treats a tag.
_K_NORMAL, _K_BLOCK, _K_CELL, _K_TRANSPARENT, _K_SKIP, _K_LEAF = range(6)
_LEXBOR_TEXT, _LEXBOR_COMMENT = 2, 4  # lexbor's tag ids of text and comment nodes
#: tag id → (name, kind) for lexbor's static tag ids (custom elements get per-document ids).
_BY_ID: dict[int, tuple[str, int]] = {}
_STATIC_IDS = 4096
# Undo flags of a stack entry (what closing the element must revert / emit).
_U_LINK, _U_PRE, _U_BAD, _U_BLOCK, _U_CELL, _U_RECORD = 1, 2, 4, 8, 16, 32


def _tag_kind(node, tid: int) -> tuple[str, int]:
    """(name, kind) of an element, memoised for lexbor's static tag ids."""
    name = node.tag or ""
    if name in _TRANSPARENT:
        kind = _K_TRANSPARENT
    elif not name or name[0] == "-" or name in _SKIP_TAGS:
        kind = _K_SKIP
    elif name in _LEAF_TAGS:
        kind = _K_LEAF
    elif name in _BLOCK_TAGS:
        kind = _K_BLOCK
    elif name in _CELL_TAGS:
        kind = _K_CELL
    else:
        kind = _K_NORMAL
    name = _ALIAS.get(name, name)
    if tid < _STATIC_IDS:
        _BY_ID[tid] = (name, kind)
    return name, kind


class _Doc:
    """What the walk records: elements (parallel tuples, document order) and the event stream."""

    __slots__ = (
        "tag",
        "parent",
        "names",
        "bad",
        "in_bad",
        "weight",
        "hint",
        "ev_start",
        "ev_end",
        "last",
        "events",
        "collapsed",
    )

    def __init__(self, info: list[tuple], closes: list[tuple], events: list[tuple], collapsed: bool) -> None:
        self.collapsed = collapsed
        (self.tag, self.parent, self.names, self.bad, self.in_bad, self.weight, self.hint, self.ev_start) = (
            zip(*info, strict=True)
        )
        last = list(range(len(info)))
        ev_end = list(self.ev_start)
        for rec, last_desc, end in closes:
            last[rec] = last_desc
            ev_end[rec] = end
        last[0] = len(info) - 1
        ev_end[0] = len(events)
        self.last = last
        self.ev_end = ev_end
        self.events = events


# Content nested deeper than this is not entered: real pages stay far below it (Chromium's parser
# caps the DOM at 512 levels), and selection cost grows with depth times text, so a page of 100,000
# nested <div>s would otherwise stall a worker for hours.
MAX_DEPTH = 512


_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)[^>]*?(/?)>")
# Void elements never nest; elements whose end tag HTML lets pages omit are not counted either.
_NOT_NESTING = frozenset(
    "area base br col embed hr img input link meta param source track wbr "
    "p li dt dd td th tr tbody thead tfoot colgroup option optgroup rb rt rp".split()
)


def nesting_exceeds(html: str, limit: int = 4 * MAX_DEPTH, scan_above_tags: int = 20_000) -> bool:
    """Whether tags nest deeper than ``limit`` — checked before parsing, since parse time grows with
    the square of the depth (100,000 nested <div>s take lexbor about 25 s). Pages with fewer tags
    than ``scan_above_tags`` cannot nest deep enough to matter and are not scanned."""
    if html.count("<") <= scan_above_tags:
        return False
    depth = 0
    for m in _TAG_RE.finditer(html):
        if m.group(1):
            if m.group(2).lower() not in _NOT_NESTING:
                depth = max(0, depth - 1)
        elif not m.group(3) and m.group(2).lower() not in _NOT_NESTING:
            depth += 1
            if depth > limit:
                return True
    return False


def _walk(body, collapse_bad: bool) -> _Doc:
    """Iterative walk of ``body`` recording elements and events (see the module docstring).

    With ``collapse_bad`` a boilerplate-flagged element is recorded but not entered: the strict
    selection ignores such subtrees anyway, and on typical pages they hold half of all nodes.

    Hot loop: whitespace-only text nodes produce no event (they set a pending space that the next
    text run inherits), inline tags get no record, and runs of block boundaries collapse.
    """
    info: list[tuple] = [("body", -1, "", False, False, 0, False, 0)]
    closes: list[tuple] = []  # (element, last descendant, end of its events) for entered elements
    events: list[tuple] = []
    ev = events.append
    info_append = info.append
    by_id = _BY_ID
    cur = block = 0  # nearest recorded element / nearest block-level element
    link = pre = bad_depth = 0
    space = False  # a whitespace text node was skipped since the last text event
    brk = -1  # len(events) right after the last block boundary
    stack: list[tuple] = []  # (next sibling to resume at, element, block, cur, undo flags)
    node = body.child
    while True:
        if node is None:
            if not stack:
                break
            node, rec, block, cur, undo = stack.pop()
            if undo:
                if undo & 7:
                    link -= undo & _U_LINK
                    pre -= (undo & _U_PRE) >> 1
                    bad_depth -= (undo & _U_BAD) >> 2
                if undo & _U_BLOCK:
                    if brk != len(events):
                        ev(_BREAK_EV)
                        brk = len(events)
                    space = False
                elif undo & _U_CELL:
                    space = True
                if undo & _U_RECORD:
                    closes.append((rec, len(info) - 1, len(events)))
            continue

        tid = node.tag_id
        if tid == _LEXBOR_TEXT:
            s = node.text_content
            t = s.strip()
            if not t:
                if pre:
                    ev((_PRE, cur, s, 0, 0, 0, 0, 0, block))
                else:
                    space = True
                node = node.next
                continue
            if pre:
                kind = _PRE
            else:
                kind = _TEXT
                if space:
                    s = " " + s
                    space = False
            # Lengths count normalised text (source indentation inflates link densities).
            n = len(" ".join(t.split())) if "\n" in t else len(t)
            if link:
                ev(
                    (
                        kind,
                        cur,
                        s,
                        n,
                        0 if bad_depth else n,
                        n,
                        0 if bad_depth else n,
                        s.count(",") + s.count("，"),
                        block,
                    )
                )
            else:
                ev((kind, cur, s, n, 0 if bad_depth else n, 0, 0, s.count(",") + s.count("，"), block))
            node = node.next
            continue
        if tid == _LEXBOR_COMMENT:
            node = node.next
            continue
        tag, kind = by_id.get(tid) or _tag_kind(node, tid)
        if kind == _K_TRANSPARENT:
            child = node.child
            if child is None or len(stack) >= MAX_DEPTH:
                node = node.next
                continue
            if tag == "span":  # the usual wrapper of visually hidden text (e.g. MathML fallbacks)
                attrs = node.attributes
                if ("style" in attrs or "hidden" in attrs or "aria-hidden" in attrs) and _is_hidden(attrs):
                    node = node.next
                    continue
            if tag == "a":
                link += 1
                stack.append((node.next, 0, block, cur, _U_LINK))
            else:
                stack.append((node.next, 0, block, cur, 0))
            node = child
            continue
        if kind == _K_SKIP:
            node = node.next
            continue

        attrs = node.attributes
        if attrs and ("hidden" in attrs or "style" in attrs or "aria-hidden" in attrs) and _is_hidden(attrs):
            node = node.next  # invisible: hidden attribute, aria-hidden, display:none
            continue
        if tag == "img" and info[cur][0] == "picture":
            _adopt_picture_source(node, attrs)
        if tag == "img" and not _has_source(attrs):
            node = node.next  # an empty lazy-load slot: not an image at all
            continue
        if attrs:
            bad, weight, hint, names = _verdict(tag, attrs)
        else:
            bad, weight, hint, names = tag in _BOILER_TAGS, 0, tag in _ARTICLE_TAGS, ""
        rec = len(info)
        info_append((tag, cur, names, bad, bad or bad_depth > 0, weight, hint, len(events)))
        if bad and collapse_bad:
            node = node.next
            continue
        if kind == _K_LEAF:
            if tag == "img":
                ev((_IMG, rec, attrs, 0, 0, 0, 0, 0, block))
                closes.append((rec, rec, len(events)))
            elif tag == "br":
                ev(_BR_EV)
            elif tag == "noscript":
                for img in node.css("img"):
                    ev((_NOSCRIPT_IMG, rec, img.attributes, 0, 0, 0, 0, 0, block))
                closes.append((rec, rec, len(events)))
            elif tag == "hr" and brk != len(events):
                ev(_BREAK_EV)
                brk = len(events)
            node = node.next
            continue
        child = node.child
        if child is None or len(stack) >= MAX_DEPTH:  # browsers stop nesting at 512 too
            node = node.next
            continue
        undo = _U_RECORD
        if bad:
            undo |= _U_BAD
            bad_depth += 1
        if tag == "pre":
            undo |= _U_PRE
            pre += 1
        stack.append(
            (
                node.next,
                rec,
                block,
                cur,
                undo | (_U_BLOCK if kind == _K_BLOCK else _U_CELL if kind == _K_CELL else 0),
            )
        )
        if kind == _K_BLOCK:
            if brk != len(events):
                ev(_BREAK_EV)
                brk = len(events)
            space = False
            block = rec
        elif kind == _K_CELL:
            space = True
            block = rec
        cur = rec
        node = child
    return _Doc(info, closes, events, collapse_bad)


# --------------------------------------------------------------------------------------------------
# Main-content selection
# --------------------------------------------------------------------------------------------------

#: A selection with less text than this is retried with relaxed flags (readability uses 500 too).
_MIN_ARTICLE_CHARS = 500
#: Score bonus of an explicit article container (<article>, <main>, role=main, articleBody).
_HINT_BONUS = 25
_ATTEMPTS = (  # (strip boilerplate-flagged subtrees, use class weights, clean containers)
    (True, True, True),
    (False, True, True),
    (False, False, True),
    (False, False, False),
)


class _Stats:
    """Prefix sums over the event stream (subtree totals in O(1)) and per-block own text."""

    def __init__(self, doc: _Doc) -> None:
        ev = doc.events
        self.doc = doc
        self.text_all = list(accumulate(map(itemgetter(3), ev), initial=0))
        self.link_all = list(accumulate(map(itemgetter(5), ev), initial=0))
        if doc.collapsed:  # nothing inside boilerplate was walked
            self.text_ok, self.link_ok = self.text_all, self.link_all
        else:
            self.text_ok = list(accumulate(map(itemgetter(4), ev), initial=0))
            self.link_ok = list(accumulate(map(itemgetter(6), ev), initial=0))
        self.commas = list(accumulate(map(itemgetter(7), ev), initial=0))
        self.blocks = list(accumulate(map(_BLOCK_TAGS.__contains__, doc.tag), initial=0))
        own_len: dict[int, int] = {}
        own_commas: dict[int, int] = {}
        for e in ev:
            if e[3]:  # text (or pre) with non-space characters
                b = e[8]
                own_len[b] = own_len.get(b, 0) + e[3]
                own_commas[b] = own_commas.get(b, 0) + e[7]
        self.own_len = own_len
        self.own_commas = own_commas
        self.text, self.link = self.text_ok, self.link_ok

    def strict(self, on: bool) -> None:
        """Count text inside boilerplate-flagged subtrees (off) or not (on)."""
        self.text, self.link = (self.text_ok, self.link_ok) if on else (self.text_all, self.link_all)

    def text_len(self, i: int) -> int:
        return self.text[self.doc.ev_end[i]] - self.text[self.doc.ev_start[i]]

    def full_text_len(self, i: int) -> int:
        return self.text_all[self.doc.ev_end[i]] - self.text_all[self.doc.ev_start[i]]

    def link_density(self, i: int) -> float:
        a, b = self.doc.ev_start[i], self.doc.ev_end[i]
        n = self.text[b] - self.text[a]
        return (self.link[b] - self.link[a]) / n if n else 0.0

    def comma_count(self, i: int) -> int:
        return self.commas[self.doc.ev_end[i]] - self.commas[self.doc.ev_start[i]]

    def has_block_below(self, i: int) -> bool:
        return self.blocks[self.doc.last[i] + 1] > self.blocks[i + 1]


def _score(doc: _Doc, st: _Stats, strict: bool, weights: bool) -> dict[int, float]:
    """Readability-style content scores of containers, already scaled by ``1 - link density``.

    A paragraph is a p/pre/td/h2-h6, a div-like element without block children, or the loose
    text of a div-like element that has block children (readability wraps that text in a <p>).
    """
    tags, parent, in_bad, weight, hint = doc.tag, doc.parent, doc.in_bad, doc.weight, doc.hint
    own_commas = st.own_commas
    scores: dict[int, float] = {}
    for i, n in st.own_len.items():
        if n < 25 or (strict and in_bad[i]):
            continue
        tag = tags[i]
        if tag in _PARA_TAGS:
            a = parent[i]
        elif tag in _TEXT_CONTAINERS:
            a = i if st.has_block_below(i) else parent[i]
        else:
            continue
        score = 1 + own_commas[i] + min(n // 100, 3)
        level = 0
        while a >= 0 and level < 5:
            if a not in scores:
                scores[a] = (
                    _TAG_PRIOR.get(tags[a], 0)
                    + (weight[a] if weights else 0)
                    + (_HINT_BONUS if hint[a] else 0)
                )
            scores[a] += score if level == 0 else score / 2 if level == 1 else score / (level * 3)
            a = parent[a]
            level += 1
    for a in scores:
        scores[a] *= 1.0 - st.link_density(a)
    return scores


def _children(doc: _Doc, p: int) -> list[int]:
    parent = doc.parent
    return [j for j in range(p + 1, doc.last[p] + 1) if parent[j] == p]


def _top_candidate(doc: _Doc, scores: dict[int, float]) -> int:
    """The best container, widened the way readability widens it."""
    if not scores:
        return 0
    ranked = sorted(scores, key=scores.__getitem__, reverse=True)[:5]
    top = ranked[0]
    best = scores[top]
    parent, last = doc.parent, doc.last
    # Several near-equal candidates under one ancestor: the article is split into parts.
    alts = [a for a in ranked[1:] if best > 0 and scores[a] / best >= 0.75]
    if len(alts) >= 3:
        p = parent[top]
        while p > 0:
            if sum(1 for a in alts if p < a <= last[p]) >= 3:
                top = p
                break
            p = parent[p]
    # Climb while the parent scores better (or not much worse).
    last_score = scores.get(top, 0.0)
    threshold = last_score / 3
    p = parent[top]
    while p > 0:
        if p not in scores:
            p = parent[p]
            continue
        if scores[p] < threshold:
            break
        if scores[p] > last_score:
            top = p
            break
        last_score = scores[p]
        p = parent[p]
    # A lone child says nothing: take its parent.
    while top > 0 and parent[top] > 0 and len(_children(doc, parent[top])) == 1:
        top = parent[top]
    return top


def _own_text(doc: _Doc, i: int) -> str:
    return "".join(e[2] for e in doc.events[doc.ev_start[i] : doc.ev_end[i]] if e[0] <= _PRE)


_SENTENCE_END = re.compile(r"\.( |$)")


def _roots(doc: _Doc, st: _Stats, scores: dict[int, float], top: int, strict: bool) -> list[int]:
    """The top candidate plus the siblings that look like more of the same article."""
    if top == 0:
        return [0]
    top_score = scores.get(top, 0.0)
    threshold = max(10.0, top_score * 0.2)
    top_names = doc.names[top]
    roots = []
    for s in _children(doc, doc.parent[top]):
        if s == top:
            roots.append(s)
            continue
        if strict and doc.in_bad[s]:
            continue
        bonus = top_score * 0.2 if top_names and doc.names[s] == top_names else 0.0
        if s in scores and scores[s] + bonus >= threshold:
            roots.append(s)
        elif doc.tag[s] == "p":
            n = st.text_len(s)
            ld = st.link_density(s)
            if n > 80 and ld < 0.25:
                roots.append(s)
            elif 0 < n <= 80 and ld == 0 and _SENTENCE_END.search(_own_text(doc, s).strip()):
                roots.append(s)
    return roots


def _has_ancestor(doc: _Doc, i: int, tag: str, depth: int = 3) -> bool:
    p = doc.parent[i]
    while p >= 0 and depth > 0:
        if doc.tag[p] == tag:
            return True
        p = doc.parent[p]
        depth -= 1
    return False


#: A list that is (nearly) all links is navigation or "more stories", even inside the article.
_LIST_LINK_DENSITY = 0.8
#: Per-container amounts the conditional cleaner looks at.
_TEXT_I, _LINK_I, _COMMAS_I, _P_I, _IMG_I, _LI_I, _INPUT_I, _EMBED_I = range(8)


def _amounts(doc: _Doc, st: _Stats, i: int) -> list[int]:
    """[text, link text, commas, p, img, li, inputs, embeds] below element ``i``."""
    a, b = doc.ev_start[i], doc.ev_end[i]
    sub = doc.tag[i + 1 : doc.last[i] + 1]
    return [
        st.text[b] - st.text[a],
        st.link[b] - st.link[a],
        st.commas[b] - st.commas[a],
        sub.count("p"),
        sub.count("img"),
        sub.count("li"),
        sub.count("input"),
        sub.count("embed"),
    ]


def _junk_container(doc: _Doc, st: _Stats, i: int, amounts: list[int], weights: bool) -> bool:
    """Readability-style conditional cleaning of one container inside the main content.

    Dropped: negative class weight; image galleries without paragraphs (outside <figure>);
    more list items than paragraphs (outside lists); form-like blocks; short blocks without
    images that are not headings; link-heavy blocks; blocks around embeds. A list whose every
    item is a lone image stays (a simple image list), and so does a data table.
    """
    tag = doc.tag[i]
    w = doc.weight[i] if weights else 0
    if w < 0:
        return True
    text_len, link_len, commas, p, img, li, inputs, embeds = amounts
    if commas >= 10:
        return False
    if tag == "table":
        sub = doc.tag[i + 1 : doc.last[i] + 1]
        if sub.count("th") or sub.count("caption") or sub.count("thead"):
            return False
    ld = link_len / text_len if text_len else 0.0
    is_list = tag == "ul" or tag == "ol"
    in_figure = img and _has_ancestor(doc, i, "figure")
    junk = (
        (img > 1 and p / img < 0.5 and not in_figure)
        or (not is_list and li - 100 > p)
        or (inputs > p // 3)
        or (
            not is_list
            and text_len < 25
            and (img == 0 or img > 2)
            and not in_figure
            and _heading_len(doc, st, i) < 0.9 * text_len
        )
        or (not is_list and w < 25 and ld > 0.2)
        or (w >= 25 and ld > 0.5)
        or (is_list and ld > _LIST_LINK_DENSITY)
        or ((embeds == 1 and text_len < 75) or embeds > 1)
    )
    if junk and is_list:
        items = _children(doc, i)
        if img == len(items) and all(len(_children(doc, c)) <= 1 for c in items):
            return False  # a simple list of images
    return junk


def _heading_len(doc: _Doc, st: _Stats, i: int) -> int:
    tags = doc.tag
    return sum(st.text_len(j) for j in range(i + 1, doc.last[i] + 1) if tags[j] in _HEADINGS)


def _removed(doc: _Doc, st: _Stats, roots: list[int], strict: bool, weights: bool, clean: bool) -> list[int]:
    """Elements inside the roots whose subtrees are dropped.

    Unconditionally: boilerplate-flagged subtrees (strict pass) and headers with a negative class
    weight. Then conditional cleaning, innermost containers first: once a container is dropped
    its content no longer counts for the containers around it (a figure whose link-heavy caption
    was dropped is an image block, not a link farm).
    """
    tags, bad, last, weight = doc.tag, doc.bad, doc.last, doc.weight
    out = []
    candidates = []
    for r in roots:
        i = r + 1
        end = last[r]
        while i <= end:
            tag = tags[i]
            if (strict and bad[i]) or (weights and weight[i] < 0 and (tag == "h1" or tag == "h2")):
                out.append(i)
                i = last[i] + 1
                continue
            if clean and tag in _CLEAN_TAGS:
                candidates.append(i)
            i += 1
    if not candidates:
        return out
    # Dropped containers with their amounts; indices decrease along the list, so the ones inside
    # the container at hand are always a suffix of it.
    dropped: list[tuple[int, list[int]]] = []
    for i in reversed(candidates):
        amounts = _amounts(doc, st, i)
        k = len(dropped)
        end = last[i]
        while k and dropped[k - 1][0] <= end:
            k -= 1
            inner = dropped[k][1]
            for j in range(8):
                amounts[j] -= inner[j]
        if _junk_container(doc, st, i, amounts, weights):
            for _, inner in dropped[k:]:
                for j in range(8):
                    amounts[j] += inner[j]
            del dropped[k:]
            dropped.append((i, amounts))
    out.extend(i for i, _ in dropped)
    return out


def _select(doc: _Doc, attempts: tuple[tuple[bool, bool, bool], ...]) -> tuple[int, list[int], bytearray]:
    """Main content as (text length, root elements, keep flag per element).

    Tries ``attempts`` in order and returns the first with enough text, else the longest one.
    """
    st = _Stats(doc)
    best: tuple[int, list[int], bytearray] | None = None
    last = doc.last
    for strict, weights, clean in attempts:
        st.strict(strict)
        scores = _score(doc, st, strict, weights)
        top = _top_candidate(doc, scores)
        roots = _roots(doc, st, scores, top, strict)
        removed = _removed(doc, st, roots, strict, weights, clean)
        keep = bytearray(len(last))
        for r in roots:
            keep[r : last[r] + 1] = b"\x01" * (last[r] + 1 - r)
        for i in removed:
            keep[i : last[i] + 1] = bytes(last[i] + 1 - i)
        length = sum(map(st.full_text_len, roots)) - sum(map(st.full_text_len, removed))
        if length >= _MIN_ARTICLE_CHARS:
            return length, roots, keep
        if best is None or length > best[0]:
            best = (length, roots, keep)
    assert best is not None
    return best


def _drop_title_heading(doc: _Doc, roots: list[int], keep: bytearray, title: str) -> None:
    """Drop the first kept <h1>/<h2> that repeats the page title (the title is returned apart)."""
    title = title.lower()
    if not title:
        return
    tags, last = doc.tag, doc.last
    for r in roots:
        for i in range(r, last[r] + 1):
            if keep[i] and (tags[i] == "h1" or tags[i] == "h2"):
                text = " ".join(_own_text(doc, i).split()).lower()
                if text and (text == title or (len(text) >= 15 and text in title)):
                    keep[i] = 0
                    return


# --------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------

_DIM = re.compile(r"\s*(\d+)(?:\.\d*)?\s*(?:px)?\s*$")
_LAZY_SRC = (
    "data-src",
    "data-original",
    "data-lazy-src",
    "data-url",
    "data-hi-res-src",
    "data-full-src",
    "datasrc",
    "data-lazy",
    "data-original-src",
    "data-actualsrc",
    "original-src",
)
_LAZY_SRCSET = ("srcset", "data-srcset", "data-lazy-srcset", "data-original-srcset", "data-picture-srcset")
_IMAGE_EXT = re.compile(r"\.(?:jpe?g|png|gif|webp|avif)", re.IGNORECASE)
_IMAGE_URL = re.compile(r"^\S+\.(?:jpe?g|png|gif|webp|avif|bmp)(?:[?#]\S*)?$", re.IGNORECASE)


#: The largest plausible declared width/height, in pixels (larger is junk; the record stores int32).
MAX_IMAGE_SIDE = 65_535


def _declared_dim(value: str | None) -> int | None:
    """A declared width/height as written ("300", "300px", "300.0"), any size; None for "auto",
    "50%", junk."""
    if not value:
        return None
    m = _DIM.match(value)
    return int(m.group(1)) if m else None


def _parse_dim(value: str | None) -> int | None:
    """A plausible declared width/height (1 to ``MAX_IMAGE_SIDE``), else None: "0" or
    "99999999999" say nothing about the image (and the latter would not fit the record)."""
    n = _declared_dim(value)
    return n if n is not None and 0 < n <= MAX_IMAGE_SIDE else None


def _declared_too_small(attrs: dict, min_side: int) -> bool:
    """A pixel, icon or rule: a declared side below ``min_side`` (``width="0"`` included)."""
    for key in ("width", "height"):
        n = _declared_dim(attrs.get(key))
        if n is not None and n < min_side:
            return True
    return False


def _best_from_srcset(srcset: str) -> str | None:
    """The candidate with the largest width descriptor (else highest density) of a srcset.

    URLs may contain commas (``c_fill,w_320``): a URL is a run of non-space characters, and only
    a comma that ends it or follows its descriptors separates candidates.
    """
    best, best_w, best_x = None, -1.0, -1.0
    pos, n = 0, len(srcset)
    while pos < n:
        while pos < n and (srcset[pos].isspace() or srcset[pos] == ","):
            pos += 1
        if pos >= n:
            break
        start = pos
        while pos < n and not srcset[pos].isspace():
            pos += 1
        url = srcset[start:pos]
        descriptor = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            end = srcset.find(",", pos)
            end = n if end < 0 else end
            descriptor = srcset[pos:end].strip().lower()
            pos = end + 1
        if not url or url.startswith("data:"):
            continue
        w = x = 0.0
        try:
            if descriptor.endswith("w"):
                w = float(descriptor[:-1])
            elif descriptor.endswith("x"):
                x = float(descriptor[:-1])
            else:
                x = 1.0
        except ValueError:
            x = 1.0
        if w > best_w or (w == best_w and x > best_x):
            best, best_w, best_x = url, w, x
    return best


def _usable(url: str | None) -> bool:
    return bool(url) and not url.lstrip().lower().startswith(("data:", "javascript:", "about:"))


def _image_source(attrs: dict) -> str | None:
    """srcset (largest) > lazy srcset > src > lazy src attributes > any image-looking data-* value."""
    for key in _LAZY_SRCSET:
        value = attrs.get(key)
        if value:
            url = _best_from_srcset(value)
            if _usable(url):
                return url
    src = attrs.get("src")
    if _usable(src):
        return src.strip()
    for key in _LAZY_SRC:
        value = attrs.get(key)
        if _usable(value):
            return value.strip()
    for key, value in attrs.items():
        if key.startswith("data-") and value and _IMAGE_URL.match(value.strip()) and _usable(value):
            return value.strip()
    return None


def _adopt_picture_source(img, attrs: dict) -> None:
    """An <img> of a <picture> with no usable src/srcset takes the srcset of the first <source>."""
    if attrs.get("srcset") or _usable(attrs.get("src")):
        return
    srcset = None
    node = img.prev
    while node is not None:
        if node.tag == "source":
            source = node.attributes
            srcset = source.get("srcset") or source.get("data-srcset") or srcset
        node = node.prev
    if srcset:
        attrs["data-picture-srcset"] = srcset


def _has_source(attrs: dict) -> bool:
    """Whether an <img> names any image at all (src, srcset or an image-looking data-* value)."""
    if attrs.get("src") or attrs.get("srcset") or attrs.get("data-picture-srcset"):
        return True
    return any(k.startswith("data") and v and _IMAGE_EXT.search(v) for k, v in attrs.items())


def _image(attrs: dict, base: str, min_side: int) -> ImageRef | None:
    """An ImageRef for one <img>'s attributes, or None when it is unusable or a pixel/icon."""
    if _declared_too_small(attrs, min_side):
        return None
    src = _image_source(attrs)
    if src is None:
        return None
    try:
        url = urljoin(base, src)
    except ValueError:
        return None
    if not url.startswith(("http://", "https://")):
        return None
    alt = attrs.get("alt") or ""
    width, height = _parse_dim(attrs.get("width")), _parse_dim(attrs.get("height"))
    return ImageRef(url=url, alt=" ".join(alt.split()), width=width, height=height)


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------

_BR_MARK = "\x00"


def _blocks(pieces: list[str], pre: bool) -> list[str]:
    """Whitespace-normalised blocks from one block's pieces; a blank line (``<br><br>``) splits."""
    raw = "".join(pieces)
    if pre:
        lines = [line.rstrip() for line in raw.replace(_BR_MARK, "\n").split("\n")]
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1]:
            lines.pop()
        return ["\n".join(lines)] if lines else []
    out: list[str] = []
    cur: list[str] = []
    for line in raw.split(_BR_MARK):
        line = " ".join(line.split())
        if line:
            cur.append(line)
        elif cur:
            out.append("\n".join(cur))
            cur = []
    if cur:
        out.append("\n".join(cur))
    return out


class _Output:
    """Collects text blocks and images, enforcing max_text_chars / max_images and de-duplication."""

    def __init__(self, base: str, config: ExtractConfig) -> None:
        self.nodes: list[str | ImageRef] = []
        self.pieces: list[str] = []  # text of the block being built
        self.pre = False  # the block being built is preformatted
        self.room = config.max_text_chars  # characters left
        self.full = False  # the text budget is spent: stop
        self.images_left = config.max_images
        self.min_side = config.min_image_side
        self.base = base
        self.seen: set[str] = set()

    def flush(self) -> None:
        """End the block being built."""
        if not self.pieces:
            return
        for block in _blocks(self.pieces, self.pre):
            if len(block) >= self.room:
                block = block[: self.room].rstrip()
                self.full = True
            if block:
                self.nodes.append(block)
                self.room -= len(block)
            if self.full:
                break
        self.pieces.clear()
        self.pre = False

    def image(self, attrs: dict, fallback: bool) -> None:
        """Add an <img>; a <noscript> ``fallback`` replaces an image right before it."""
        ref = _image(attrs, self.base, self.min_side)
        if ref is None or ref.url in self.seen:
            return
        nodes = self.nodes
        if (
            fallback
            and nodes
            and isinstance(nodes[-1], ImageRef)
            and not "".join(self.pieces).strip(_BR_MARK + " \n\t\r")
        ):
            nodes[-1] = ref
            self.seen.add(ref.url)
            return
        if self.images_left <= 0:
            return
        self.flush()
        if not self.full:
            nodes.append(ref)
            self.seen.add(ref.url)
            self.images_left -= 1


def _assemble(
    doc: _Doc, roots: list[int], keep: bytearray, base: str, config: ExtractConfig
) -> list[str | ImageRef]:
    """Kept events of the roots → text blocks and images, in order."""
    out = _Output(base, config)
    pieces = out.pieces
    events = doc.events
    for r in roots:
        for e in events[doc.ev_start[r] : doc.ev_end[r]]:
            kind = e[0]
            if kind == _BREAK:
                out.flush()
            elif kind == _BR:
                pieces.append(_BR_MARK)
            elif not keep[e[1]]:
                continue
            elif kind == _TEXT:
                pieces.append(e[2])
            elif kind == _PRE:
                pieces.append(e[2])
                out.pre = True
            else:
                out.image(e[2], kind == _NOSCRIPT_IMG)
            if out.full:
                return out.nodes
        out.flush()
        if out.full:
            break
    return out.nodes


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


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
    tree = LexborHTMLParser(html)
    title = _title(tree)
    body = tree.body
    if body is None:
        return Extraction(title, [])
    doc = _walk(body, collapse_bad=True)
    length, roots, keep = _select(doc, _ATTEMPTS[:1])
    if length < _MIN_ARTICLE_CHARS:
        # Too little outside the boilerplate-flagged parts: look inside them too (relaxed).
        full = _walk(body, collapse_bad=False)
        relaxed = _select(full, _ATTEMPTS[1:])
        if relaxed[0] > length:
            doc, (length, roots, keep) = full, relaxed
    _drop_title_heading(doc, roots, keep, title)
    nodes = _assemble(doc, roots, keep, _base(tree, base_url), config)
    return Extraction(title, nodes)
