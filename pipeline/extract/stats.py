"""Prefix sums over the walk's event stream: "text / link text / commas below element *i*" in O(1).

An element's events are a contiguous slice ``ev_start[i]:ev_end[i]`` of the stream, so each of
its totals is the difference of two prefix sums. Two variants of the text and link sums exist:
one counting everything walked, one leaving out text inside boilerplate-flagged subtrees (the
strict selection's view); ``_Stats.strict`` picks which ``text`` / ``link`` refer to.
"""

from __future__ import annotations

from itertools import accumulate
from operator import itemgetter

from pipeline.extract.tags import _BLOCK_TAGS
from pipeline.extract.walk import _EV_COMMAS, _EV_LINK, _EV_LINK_OK, _EV_TEXT, _EV_TEXT_OK, _Doc


class _Stats:
    """Prefix sums over the event stream (subtree totals in O(1)) and per-block own text."""

    def __init__(self, doc: _Doc) -> None:
        ev = doc.events
        self.doc = doc
        self.text_all = list(accumulate(map(itemgetter(_EV_TEXT), ev), initial=0))
        self.link_all = list(accumulate(map(itemgetter(_EV_LINK), ev), initial=0))
        if doc.collapsed:  # nothing inside boilerplate was walked
            self.text_ok, self.link_ok = self.text_all, self.link_all
        else:
            self.text_ok = list(accumulate(map(itemgetter(_EV_TEXT_OK), ev), initial=0))
            self.link_ok = list(accumulate(map(itemgetter(_EV_LINK_OK), ev), initial=0))
        self.commas = list(accumulate(map(itemgetter(_EV_COMMAS), ev), initial=0))
        self.blocks = list(accumulate(map(_BLOCK_TAGS.__contains__, doc.tag), initial=0))
        # Text directly in each block or cell element (not in a nested one): what scores as a paragraph.
        own_len: dict[int, int] = {}
        own_commas: dict[int, int] = {}
        # Literal field positions (e[3] text length, e[7] commas, e[8] block): in this loop over
        # every event, global lookups of the _EV_* names cost ~3% of the selection.
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
