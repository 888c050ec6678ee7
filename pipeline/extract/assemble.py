"""Output: the kept events of the main content → text blocks and images, in reading order.

The events of each root are replayed in order: a block boundary ends the text block being built,
``<br>`` marks a line break (two in a row, a blank line, split the block), text runs of kept
elements join the block, and an image of a kept element ends the block and follows it. Blocks are
whitespace-normalised (``<pre>`` text keeps its lines), images are deduplicated by URL, a
``<noscript>`` fallback replaces the placeholder image right before it, a text block that repeats
an earlier one word for word is dropped (a gallery's captions and credits, a mobile copy of a
teaser), and ``max_text_chars`` / ``max_images`` cap the result.
"""

from __future__ import annotations

from pipeline.config import ExtractConfig
from pipeline.extract.images import ImageRef, _image
from pipeline.extract.lines import is_furniture
from pipeline.extract.tags import _HEADINGS
from pipeline.extract.walk import (
    _BR,
    _BREAK,
    _NOSCRIPT_IMG,
    _PRE,
    _TEXT,
    _Doc,
)

_BR_MARK = "\x00"
#: Text blocks of these elements are never dropped as repeats (a poem's refrain, a repeated reply);
#: a block of any other element (a div's caption or credit, a heading) that repeats an earlier
#: block word for word is.
_PARAGRAPHS = frozenset("p pre li td th dd dt blockquote".split())
#: Blocks of table cells and list items are data: never dropped as datelines (``lines.py``).
_CELLS = frozenset("li td th dd dt".split())


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
        self.tag = ""  # the tag of the element whose text the block being built ends with
        self.room = config.max_text_chars  # characters left
        self.full = False  # the text budget is spent: stop
        self.images_left = config.max_images
        self.min_side = config.min_image_side
        self.base = base
        self.seen: set[str] = set()
        self.blocks_seen: set[str] = set()  # text blocks already output: a repeat is dropped
        self.ranks: dict[int, int] = {}  # node index → heading rank (1-6) of heading blocks

    def flush(self) -> None:
        """End the block being built."""
        if not self.pieces:
            return
        for block in _blocks(self.pieces, self.pre):
            if len(block) >= self.room:
                block = block[: self.room].rstrip()
                self.full = True
            if block in self.blocks_seen and self.tag not in _PARAGRAPHS:
                continue  # the same caption, credit or teaser again (galleries, mobile copies)
            if not self.pre and self.tag not in _CELLS and is_furniture(block):
                continue  # a dateline or a photo credit
            if block:
                self.blocks_seen.add(block)
                if self.tag in _HEADINGS:
                    self.ranks[len(self.nodes)] = int(self.tag[1])
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
    events, tags = doc.events, doc.tag
    for r in roots:
        # Literal field positions (e[0] kind, e[1] element, e[2] data): in a loop over every
        # event, global lookups of the _EV_* names cost a few percent.
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
                out.tag = tags[e[1]]
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
    return _without_orphan_headings(out.nodes, out.ranks)


def _without_orphan_headings(nodes: list[str | ImageRef], ranks: dict[int, int]) -> list[str | ImageRef]:
    """Drop the headings nothing follows: at the end, or right before a heading of the same or a
    higher rank. What they headed was boilerplate and went ("Related articles", "Trending",
    "You may also like"), or there never was anything under them."""
    if not ranks:
        return nodes
    out: list[str | ImageRef] = []
    next_rank = -1  # rank of the next kept node if it is a heading; 0: content; -1: the end
    for i in range(len(nodes) - 1, -1, -1):
        rank = ranks.get(i)
        if rank is not None and next_rank and next_rank <= rank:
            continue
        out.append(nodes[i])
        next_rank = rank or 0
    out.reverse()
    return out
