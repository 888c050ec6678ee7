"""Main-content selection: which elements of the walk hold the article.

Readability-like, and working on prefix sums over the event stream (``stats.py``), so "text /
link text / commas below element *i*" is O(1):

* every paragraph (p, pre, td, h2-h6, a div without block children, or the loose text of a
  div-like element) with ≥ 25 characters scores ``1 + commas + min(len/100, 3)`` and hands that
  to its parent (full), grandparent (half) and up to three more ancestors (less);
* a container starts from a tag prior (``div`` +5, lists −3, headings −5, …), a class/id weight
  (``article``/``content``/``post`` +25, ``comment``/``sidebar``/``share`` −25) and a bonus for an
  explicit article container (``<article>``, ``<main>``, ``role=main``, ``itemprop=articleBody``);
* scores are scaled by ``1 − link density``; the best container wins, is widened to a common
  ancestor when several near-equal candidates share one (and to the container of its list when
  it is an item of a list: a publication, a forum post), and its good siblings join it;
* inside the winner, containers are cleaned conditionally, innermost first (link-heavy blocks,
  link lists, image galleries without text, form-like blocks, embeds; see ``cleaning.py``), and a
  heading that repeats the title goes.

With under 500 characters of result, the page is walked again *into* the boilerplate-flagged
subtrees and selection is retried with the flags ignored, then without class weights, then
without cleaning (``_ATTEMPTS``); the first attempt with enough text wins, else the longest
(readability's retry loop: a site whose article wrapper is called ``post-sidebar-layout`` keeps
its article). ``extract_html`` (``page.py``) drives the two walks.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from pipeline.extract.cleaning import _removed
from pipeline.extract.stats import _Stats
from pipeline.extract.tags import _PARA_TAGS, _TAG_PRIOR, _TEXT_CONTAINERS
from pipeline.extract.walk import _children, _Doc, _own_text

#: A selection with less text than this is retried with relaxed flags (readability uses 500 too).
_MIN_ARTICLE_CHARS = 500
#: Score bonus of an explicit article container (<article>, <main>, role=main, articleBody).
_HINT_BONUS = 25


class Attempt(NamedTuple):
    """One selection attempt's settings."""

    strict: bool  # ignore boilerplate-flagged subtrees
    weights: bool  # use class/id weights
    clean: bool  # clean containers conditionally


_ATTEMPTS = (
    Attempt(strict=True, weights=True, clean=True),
    Attempt(strict=False, weights=True, clean=True),
    Attempt(strict=False, weights=False, clean=True),
    Attempt(strict=False, weights=False, clean=False),
)


class Selection(NamedTuple):
    """The main content of one walk."""

    length: int  # characters of text kept
    roots: list[int]  # the top candidate and the siblings that joined it, in document order
    keep: bytearray  # per element: 1 when its own events go to the output


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
    # An item of a list (a publication, a forum post, a listing's entry): the list is the content.
    top = _above_list(doc, top)
    # A lone child says nothing: take its parent.
    while top > 0 and parent[top] > 0 and len(_children(doc, parent[top])) == 1:
        top = parent[top]
    return top


def _above_list(doc: _Doc, top: int) -> int:
    """The container of the list when ``top`` is (inside) one of at least three items of a list."""
    tags, parent = doc.tag, doc.parent
    a, level = top, 0
    while a > 0 and level < 4:
        if tags[a] == "li":
            lst = parent[a]
            items = sum(1 for c in _children(doc, lst) if tags[c] == "li") if lst > 0 else 0
            if tags[lst] in ("ul", "ol") and items >= 3:
                return parent[lst] if parent[lst] > 0 else lst
            return top
        a = parent[a]
        level += 1
    return top


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


def _select(doc: _Doc, attempts: tuple[Attempt, ...]) -> Selection:
    """Main content as (text length, root elements, keep flag per element).

    Tries ``attempts`` in order and returns the first with enough text, else the longest one.
    """
    st = _Stats(doc)
    best: Selection | None = None
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
            return Selection(length, roots, keep)
        if best is None or length > best.length:
            best = Selection(length, roots, keep)
    assert best is not None
    return best


def _whole_page(doc: _Doc) -> Selection:
    """The page less its boilerplate-flagged parts (``doc`` from the strict walk): for pages whose
    main content is no article (a listing, a table of figures, a page of short link items)."""
    st = _Stats(doc)
    st.strict(True)
    last = doc.last
    removed = _removed(doc, st, [0], True, True, False)
    keep = bytearray(b"\x01" * len(last))
    for i in removed:
        keep[i : last[i] + 1] = bytes(last[i] + 1 - i)
    length = st.full_text_len(0) - sum(map(st.full_text_len, removed))
    return Selection(length, [0], keep)


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
