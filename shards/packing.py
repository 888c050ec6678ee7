"""Packing documents into fixed-length sequences: cut the long ones, then best-fit the pieces.

A document is its token ids with each image expanded to ``<image>``, ``k`` placeholders and
``</image>`` (an *image span*, never cut). :func:`cut` splits a document longer than the sequence
(or holding more images than a sequence may) at token boundaries outside image spans.
:func:`best_fit` places the pieces of a buffer into as few sequences as it can: longest first,
each into the open sequence it fills most tightly (best-fit decreasing), which leaves almost no
padding when the buffer holds many sequences' worth of documents.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Piece:
    """Tokens ``[start, stop)`` of document ``doc`` (an index into the buffer) holding ``images``
    image spans."""

    doc: int
    start: int
    stop: int
    images: int

    @property
    def length(self) -> int:
        return self.stop - self.start


def cut(
    doc: int, length: int, span_starts: np.ndarray, span_len: int, seq_len: int, max_images: int | None
) -> list[Piece]:
    """The pieces of a document of ``length`` tokens whose image spans (``span_len`` tokens each)
    start at ``span_starts`` (sorted): at most ``seq_len`` tokens and ``max_images`` images each,
    never cut inside a span. The caller guarantees ``span_len <= seq_len``."""
    cap = len(span_starts) + 1 if max_images is None else max_images
    if length <= seq_len and len(span_starts) <= cap:
        return [Piece(doc, 0, length, len(span_starts))]
    pieces, start, first = [], 0, 0  # first: the first span at or after start
    while start < length:
        stop = min(start + seq_len, length)
        inside = bisect.bisect_right(span_starts, stop - 1, lo=first) - 1  # last span starting before stop
        if inside >= first and span_starts[inside] + span_len > stop:
            stop = int(span_starts[inside])  # the cut would split that span: cut before it
        spans = bisect.bisect_left(span_starts, stop, lo=first) - first
        if spans > cap:
            stop, spans = int(span_starts[first + cap]), cap
        pieces.append(Piece(doc, start, stop, spans))
        start, first = stop, first + spans
    return pieces


def best_fit(pieces: list[Piece], seq_len: int, max_images: int | None) -> list[list[int]]:
    """Best-fit decreasing: the pieces (indexes into ``pieces``) of each sequence, in the order the
    sequences were opened. Each piece fits ``seq_len`` and ``max_images`` on its own."""
    order = sorted(range(len(pieces)), key=lambda i: -pieces[i].length)  # stable: ties keep buffer order
    bins: list[list[int]] = []
    images: list[int] = []
    free: list[tuple[int, int]] = []  # (room left, bin), sorted; full bins leave the list
    for i in order:
        piece = pieces[i]
        at = bisect.bisect_left(free, (piece.length, -1))
        if max_images is not None:
            while at < len(free) and images[free[at][1]] + piece.images > max_images:
                at += 1
        if at < len(free):
            room, b = free.pop(at)
        else:
            room, b = seq_len, len(bins)
            bins.append([])
            images.append(0)
        bins[b].append(i)
        images[b] += piece.images
        if room - piece.length > 0:
            bisect.insort(free, (room - piece.length, b))
    return bins


def greedy(pieces: list[Piece], seq_len: int, max_images: int | None) -> list[list[int]]:
    """The naive packer, for comparison: pieces in order, a new sequence whenever the next one does
    not fit in the current one."""
    bins: list[list[int]] = []
    room, images = 0, 0
    for i, piece in enumerate(pieces):
        full = max_images is not None and images + piece.images > max_images
        if not bins or piece.length > room or full:
            bins.append([])
            room, images = seq_len, 0
        bins[-1].append(i)
        room -= piece.length
        images += piece.images
    return bins
