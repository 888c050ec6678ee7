"""Conditional cleaning inside the main content: which subtrees of the chosen roots are dropped.

Unconditionally: boilerplate-flagged subtrees (strict pass) and h1/h2 headers with a negative
class weight. Then readability's conditional cleaning of div/section/table/ul/form/fieldset
containers, innermost first: link-heavy blocks, link lists, image galleries without text,
form-like blocks, short blocks without images, blocks around embeds. A list or table that the
text before it announces (it ends with a colon) is content, whatever its links.
"""

from __future__ import annotations

from pipeline.extract.stats import _Stats
from pipeline.extract.tags import _CLEAN_TAGS, _HEADINGS
from pipeline.extract.walk import _PRE, _children, _Doc

#: A list that is (nearly) all links is navigation or "more stories", even inside the article.
_LIST_LINK_DENSITY = 0.8
#: Per-container amounts the conditional cleaner looks at (positions in ``_amounts``' list).
_TEXT_I, _LINK_I, _COMMAS_I, _P_I, _IMG_I, _LI_I, _INPUT_I, _EMBED_I = range(8)


def _has_ancestor(doc: _Doc, i: int, tag: str, depth: int = 3) -> bool:
    p = doc.parent[i]
    while p >= 0 and depth > 0:
        if doc.tag[p] == tag:
            return True
        p = doc.parent[p]
        depth -= 1
    return False


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


def _heading_len(doc: _Doc, st: _Stats, i: int) -> int:
    tags = doc.tag
    return sum(st.text_len(j) for j in range(i + 1, doc.last[i] + 1) if tags[j] in _HEADINGS)


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
    if junk and (is_list or tag == "table") and _introduced(doc, i, tag == "table"):
        return False  # "We provide the database in three ways:" and the list of links to them
    return junk


def _introduced(doc: _Doc, i: int, by_heading: bool) -> bool:
    """Whether the element right before ``i`` (its previous sibling) announces it: its text ends
    with a colon, or (``by_heading``, for tables) it is a heading. A link list or a table there
    is content. (A heading before a list is no such sign: "Related articles" heads its links.)"""
    parent, p = doc.parent, doc.parent[i]
    j = i - 1
    while j > p and parent[j] != p and i - j < 4096:
        j -= 1
    if j <= p or parent[j] != p:
        return False
    if by_heading and doc.tag[j] in _HEADINGS:
        return True
    events = doc.events
    for k in range(doc.ev_end[j] - 1, doc.ev_start[j] - 1, -1):
        e = events[k]
        if e[0] <= _PRE:
            text = e[2].rstrip()
            if text:
                return text.endswith((":", "："))
    return False


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
    # Dropped containers as (element, amounts below it: what its ancestors discount); element
    # indices decrease along the list, so the ones inside the container at hand are always a
    # suffix of it. Plain pairs: the loop builds one per dropped container.
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
