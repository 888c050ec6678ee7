"""The walk: one pass over ``<body>`` recording its elements and a flat stream of events.

``_walk`` records the elements of ``<body>`` in document order (tag, parent, last descendant, a
boilerplate verdict from tag/class/id/role) and a flat stream of *events*: text runs, block
boundaries, ``<br>`` and images. Everything after the walk is cheap arithmetic on these records:
selection (``main_content.py``) takes prefix sums over the events, output (``assemble.py``)
replays the events of the chosen elements.

Inline tags (a, span, b, …) get no record of their own; subtrees that are never content (script,
style, svg, form controls, hidden nodes, …) are not entered. Boilerplate-flagged subtrees (nav,
aside, footer, class/id like ``sidebar``, ``comment``, ``share``, role=navigation, …) are recorded
but not entered either when ``collapse_bad`` is set: they hold about half of a typical page, and
the strict selection ignores them anyway.

**Record layouts.** Events, element records and stack entries are plain tuples built by tuple
displays in the hot loop, with their layouts named below (``_Event``, ``_ElementRecord``,
``_StackEntry`` and the ``_EV_*`` field positions). NamedTuples would read better but cost: in
CPython 3.11 building one is ~8x a tuple display (a Python-level ``__new__``), and unpacking or
indexing one misses the bytecode specialisations for exact tuples (~4x / ~2x slower). The walk
builds some 200 events and 130 element records per page, so they stay plain tuples.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.extract.boilerplate import _is_hidden, _verdict
from pipeline.extract.images import _img_has_source
from pipeline.extract.tags import (
    _ALIAS,
    _ARTICLE_TAGS,
    _BLOCK_TAGS,
    _BOILER_TAGS,
    _CELL_TAGS,
    _LEAF_TAGS,
    _SKIP_TAGS,
    _TRANSPARENT,
)

# --------------------------------------------------------------------------------------------------
# Record layouts
# --------------------------------------------------------------------------------------------------

#: An event: (kind, element, data, text length, text length outside boilerplate, link text length,
#: link text length outside boilerplate, commas, block element). ``element`` is the nearest
#: recorded element, ``block`` the nearest block-level one; ``data`` is the text of a text event,
#: the attributes of an image event, None otherwise. Lengths count whitespace-normalised text.
_Event = tuple[int, int, Any, int, int, int, int, int, int]
#: Field positions in an ``_Event``. Loops over every event index with the literal numbers
#: instead (a global lookup per access costs a few percent there; see ``stats.py``).
_EV_KIND, _EV_ELEMENT, _EV_DATA = 0, 1, 2
_EV_TEXT, _EV_TEXT_OK, _EV_LINK, _EV_LINK_OK, _EV_COMMAS, _EV_BLOCK = 3, 4, 5, 6, 7, 8

#: Event kinds. ``_TEXT`` and ``_PRE`` (preformatted text) come first: ``kind <= _PRE`` is "text".
_TEXT, _PRE, _BREAK, _BR, _IMG, _NOSCRIPT_IMG = range(6)
_BREAK_EV: _Event = (_BREAK, 0, None, 0, 0, 0, 0, 0, 0)
_BR_EV: _Event = (_BR, 0, None, 0, 0, 0, 0, 0, 0)

#: An element record, as the walk appends it: (tag, parent, names, boilerplate, inside
#: boilerplate, class weight, explicit article container, first event). ``_Doc`` turns the
#: records into one tuple per field.
_ElementRecord = tuple[str, int, str, bool, bool, int, bool, int]
#: What closing an entered element fills in: (element, last descendant, end of its events).
_Close = tuple[int, int, int]
#: A walk stack entry: (next sibling to resume at, element, enclosing block, enclosing recorded
#: element, undo flags).
_StackEntry = tuple[Any, int, int, int, int]

# How the walk treats a tag.
_K_NORMAL, _K_BLOCK, _K_CELL, _K_TRANSPARENT, _K_SKIP, _K_LEAF = range(6)
_LEXBOR_TEXT, _LEXBOR_COMMENT = 2, 4  # lexbor's tag ids of text and comment nodes
#: tag id → (name, kind) for lexbor's static tag ids (custom elements get per-document ids).
_BY_ID: dict[int, tuple[str, int]] = {}
_STATIC_IDS = 4096
# Undo flags of a stack entry: what closing the element must revert / emit. The first three are
# depth counters (inside a link / <pre> / boilerplate), one bit each so that a single test of
# ``undo & _U_COUNTERS`` skips them all; ``_U_RECORD`` fills in the element's ``_Close``.
_U_LINK, _U_PRE, _U_BAD, _U_BLOCK, _U_CELL, _U_RECORD = 1, 2, 4, 8, 16, 32
_U_COUNTERS = _U_LINK | _U_PRE | _U_BAD


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
    """What the walk records: elements (one tuple per field, document order) and the event stream.

    Element 0 is ``<body>``. The elements below element ``i`` are ``i + 1 .. last[i]``, and its
    events are ``events[ev_start[i]:ev_end[i]]``. ``collapsed``: boilerplate-flagged subtrees were
    not entered (their text is not in the events).
    """

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

    def __init__(
        self, info: list[_ElementRecord], closes: list[_Close], events: list[_Event], collapsed: bool
    ) -> None:
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


def _children(doc: _Doc, p: int) -> list[int]:
    """The elements whose parent is ``p``."""
    parent = doc.parent
    return [j for j in range(p + 1, doc.last[p] + 1) if parent[j] == p]


def _own_text(doc: _Doc, i: int) -> str:
    """The raw text of element ``i``'s subtree (as walked): the data (e[2]) of its text events."""
    return "".join(e[2] for e in doc.events[doc.ev_start[i] : doc.ev_end[i]] if e[0] <= _PRE)


# --------------------------------------------------------------------------------------------------
# Depth
# --------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------
# The walk
# --------------------------------------------------------------------------------------------------


def _leaf_events(
    node, tag: str, rec: int, attrs: dict, block: int, events: list, closes: list, brk: int
) -> int:
    """Events of a leaf element (recorded, never entered); returns the new ``brk``.

    <img> → an image event; <br> → a line break; <noscript> → an image event for each <img> in
    its fallback markup; <hr> → a block boundary unless one was just emitted. Form controls and
    embeds give no event (their element records are what the cleaner counts).
    """
    if tag == "img":
        events.append((_IMG, rec, attrs, 0, 0, 0, 0, 0, block))
        closes.append((rec, rec, len(events)))
    elif tag == "br":
        events.append(_BR_EV)
    elif tag == "noscript":
        for img in node.css("img"):
            events.append((_NOSCRIPT_IMG, rec, img.attributes, 0, 0, 0, 0, 0, block))
        closes.append((rec, rec, len(events)))
    elif tag == "hr" and brk != len(events):
        events.append(_BREAK_EV)
        brk = len(events)
    return brk


def _walk(body, collapse_bad: bool) -> _Doc:
    """Iterative walk of ``body`` recording elements and events (see the module docstring).

    With ``collapse_bad`` a boilerplate-flagged element is recorded but not entered: the strict
    selection ignores such subtrees anyway, and on typical pages they hold half of all nodes.

    Hot loop: whitespace-only text nodes produce no event (they set a pending space that the next
    text run inherits), inline tags get no record, and runs of block boundaries collapse. The loop
    handles, in turn: the end of a child list (pop the stack and undo what entering the element
    did), a text node, an inline (transparent) element, and a recorded element (leaf or entered).
    Per-node work stays inline, since a function call per text node or element would be a
    measurable share of the walk; only leaves, <img> checks and verdicts go through functions.
    """
    info: list[_ElementRecord] = [("body", -1, "", False, False, 0, False, 0)]
    closes: list[_Close] = []  # for entered elements and image leaves
    events: list[_Event] = []
    ev = events.append
    info_append = info.append
    by_id = _BY_ID
    cur = block = 0  # nearest recorded element / nearest block-level element
    link = pre = bad_depth = 0  # depth inside <a> / <pre> / boilerplate-flagged elements
    space = False  # a whitespace text node was skipped since the last text event
    brk = -1  # len(events) right after the last block boundary
    stack: list[_StackEntry] = []
    node = body.child
    while True:
        # ---- end of a child list: resume at the parent's next sibling, undo what entering did
        if node is None:
            if not stack:
                break
            node, rec, block, cur, undo = stack.pop()
            if undo:
                if undo & _U_COUNTERS:
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

        # ---- text: one event per non-blank run, carrying its lengths
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
            ok = 0 if bad_depth else n
            if link:
                ev((kind, cur, s, n, ok, n, ok, s.count(",") + s.count("，"), block))
            else:
                ev((kind, cur, s, n, ok, 0, 0, s.count(",") + s.count("，"), block))
            node = node.next
            continue
        if tid == _LEXBOR_COMMENT:
            node = node.next
            continue

        # ---- inline markup: entered without a record (a link counts its text as link text)
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

        # ---- a recorded element: skip the invisible, record it, then emit (leaf) or enter it
        attrs = node.attributes
        if attrs and ("hidden" in attrs or "style" in attrs or "aria-hidden" in attrs) and _is_hidden(attrs):
            node = node.next  # invisible: hidden attribute, aria-hidden, display:none
            continue
        if tag == "img" and not _img_has_source(node, attrs, info[cur][0] == "picture"):
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
            brk = _leaf_events(node, tag, rec, attrs, block, events, closes, brk)
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
        if kind == _K_BLOCK:
            stack.append((node.next, rec, block, cur, undo | _U_BLOCK))
            if brk != len(events):
                ev(_BREAK_EV)
                brk = len(events)
            space = False
            block = rec
        elif kind == _K_CELL:
            stack.append((node.next, rec, block, cur, undo | _U_CELL))
            space = True
            block = rec
        else:
            stack.append((node.next, rec, block, cur, undo))
        cur = rec
        node = child
    return _Doc(info, closes, events, collapse_bad)
