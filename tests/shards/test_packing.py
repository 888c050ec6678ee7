"""Packing: long documents cut outside image spans, pieces best-fit into sequences."""

from __future__ import annotations

import numpy as np

from shards.packing import Piece, best_fit, cut, greedy


def test_a_short_document_is_one_piece():
    assert cut(7, 100, np.array([10]), 6, seq_len=128, max_images=None) == [Piece(7, 0, 100, 1)]


def test_a_long_document_is_cut_at_seq_len_but_never_inside_an_image_span():
    spans = np.array([5, 95, 300])  # span 95..100 straddles the first cut at 100
    pieces = cut(0, 350, spans, 6, seq_len=100, max_images=None)
    assert [(p.start, p.stop, p.images) for p in pieces] == [
        (0, 95, 1),
        (95, 195, 1),
        (195, 295, 0),
        (295, 350, 1),
    ]
    for p in pieces:
        assert p.length <= 100
        for s in spans:
            assert not p.start < s + 6 <= p.stop or p.start <= s  # a span inside a piece is whole


def test_the_image_cap_cuts_a_document_with_too_many_images():
    spans = np.arange(0, 60, 10)  # six images in 60 tokens
    pieces = cut(0, 60, spans, 4, seq_len=1000, max_images=2)
    assert [(p.start, p.stop, p.images) for p in pieces] == [(0, 20, 2), (20, 40, 2), (40, 60, 2)]


def test_best_fit_fills_sequences_that_the_greedy_packer_leaves_half_empty():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 600, size=2000)
    pieces = [Piece(i, 0, int(n), 0) for i, n in enumerate(lengths)]
    for pack in (best_fit, greedy):
        bins = pack(pieces, 1024, None)
        assert sorted(i for b in bins for i in b) == list(range(len(pieces)))  # each piece once
        assert all(sum(pieces[i].length for i in b) <= 1024 for b in bins)
    fill = lengths.sum() / (1024 * len(best_fit(pieces, 1024, None)))
    naive = lengths.sum() / (1024 * len(greedy(pieces, 1024, None)))
    assert fill > 0.99 > 0.9 > naive


def test_best_fit_respects_the_image_cap():
    pieces = [Piece(i, 0, 10, 1) for i in range(9)]
    bins = best_fit(pieces, 1000, max_images=4)
    assert [len(b) for b in bins] == [4, 4, 1]
