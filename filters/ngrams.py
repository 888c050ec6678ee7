"""Gopher's n-gram repetition measures of one token list: the most frequent 2-, 3- and 4-gram, and
the characters in repeated 5- to 10-grams, over 64-bit rolling hashes of the tokens.

:func:`_top_ngram_chars` and :func:`_dup_ngram_chars` are the definitions, in numpy;
:func:`_repetition_kernel` computes them all in one compiled pass per n (numba hash tables instead
of numpy's sorts), and a test checks that they agree.
"""

from __future__ import annotations

import numba
import numpy as np

TOP_NGRAMS = (2, 3, 4)
DUP_NGRAMS = (5, 6, 7, 8, 9, 10)

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_BASE = np.uint64(0x9E3779B97F4A7C15)


def _token_hashes(toks: list[str]) -> np.ndarray:
    """A pseudo-random 64-bit value per distinct token (its first-seen rank, bit-mixed)."""
    index = {t: i for i, t in enumerate(dict.fromkeys(toks))}
    x = np.fromiter(map(index.__getitem__, toks), dtype=np.uint64, count=len(toks)) + np.uint64(1)
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


class _NGrams:
    """The n-grams of one token list as 64-bit rolling hashes, n = 1, 2, 3, … in turn.

    Distinct n-grams collide with probability about 2^-64 per pair: counting hashes is counting
    n-grams, and numpy sorts them in C instead of building a tuple per position."""

    def __init__(self, toks: list[str]):
        self.n = 1
        self.hashes = _token_hashes(toks)
        self.token_hashes = self.hashes
        lengths = np.fromiter(map(len, toks), dtype=np.int64, count=len(toks))
        self.starts = np.concatenate(([0], np.cumsum(lengths)))

    def grow(self, n: int) -> np.ndarray:
        """Hashes of the n-grams (n ≥ the current n), one per start position."""
        while self.n < n and len(self.hashes):
            self.hashes = self.hashes[:-1] * _BASE + self.token_hashes[self.n :]
            self.n += 1
        return self.hashes if self.n == n else self.hashes[:0]

    def chars(self, idx: int | np.ndarray, n: int) -> int | np.ndarray:
        """Characters of the tokens of the n-gram(s) starting at ``idx``."""
        return self.starts[idx + n] - self.starts[idx]


def _top_ngram_chars(grams: _NGrams, n: int, sep: int) -> int:
    """(The definition, in numpy; :func:`_repetition_kernel` computes it, a test compares them.)
    Characters of the most frequent n-gram (joined by ``sep`` spaces) times its count; on a tie
    the one seen first."""
    hashes = grams.grow(n)
    if not len(hashes):
        return 0
    _, first, counts = np.unique(hashes, return_index=True, return_counts=True)
    top = counts.max()
    idx = int(first[counts == top].min())
    return int((grams.chars(idx, n) + sep * (n - 1)) * top)


def _dup_ngram_chars(grams: _NGrams, n: int) -> int:
    """(The definition, in numpy; :func:`_repetition_kernel` computes it, a test compares them.)
    Characters in n-grams that repeat an earlier one, scanning left to right; after a repeat
    the scan jumps past it (so overlapping repeats count once: Gopher's definition, as datatrove
    scans). Only n-grams that occur twice or more can be a repeat, so the scan visits those alone."""
    hashes = grams.grow(n)
    if not len(hashes):
        return 0
    uniq, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    if len(uniq) == len(hashes):
        return 0
    candidates = np.flatnonzero(counts[inverse] > 1)
    seen: set[int] = set()
    chars, resume = 0, 0
    for idx, gram in zip(candidates.tolist(), inverse[candidates].tolist(), strict=True):
        if idx < resume:
            continue
        if gram in seen:
            chars += int(grams.chars(idx, n))
            resume = idx + n
        else:
            seen.add(gram)
    return chars


@numba.njit(cache=True)
def _repetition_kernel(
    token_hashes: np.ndarray, starts: np.ndarray, sep: int, top_ns: np.ndarray, dup_ns: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_top_ngram_chars` for each n of ``top_ns`` and :func:`_dup_ngram_chars` for each n of
    ``dup_ns`` (increasing), in one compiled pass per n over the rolling n-gram hashes: a hash
    table instead of numpy's sorts (six of them per document, most of the filters' time)."""
    tops = np.zeros(top_ns.shape[0], np.int64)
    dups = np.zeros(dup_ns.shape[0], np.int64)
    hashes, n_now = token_hashes.copy(), 1
    for k in range(top_ns.shape[0] + dup_ns.shape[0]):
        top = k < top_ns.shape[0]
        n = top_ns[k] if top else dup_ns[k - top_ns.shape[0]]
        while n_now < n and hashes.shape[0] > 0:
            hashes = hashes[:-1] * _BASE + token_hashes[n_now:]
            n_now += 1
        if n_now != n or hashes.shape[0] == 0:
            continue
        if top:  # the most frequent n-gram; on a tie the one seen first
            counts = numba.typed.Dict.empty(numba.types.uint64, numba.types.int64)
            for i in range(hashes.shape[0]):
                counts[hashes[i]] = counts.get(hashes[i], 0) + 1
            best, at = 0, 0
            for i in range(hashes.shape[0]):
                if counts[hashes[i]] > best:
                    best, at = counts[hashes[i]], i
            tops[k] = (starts[at + n] - starts[at] + sep * (n - 1)) * best
        else:  # characters in n-grams that repeat an earlier one; after a repeat, jump past it
            j = k - top_ns.shape[0]
            if j > 0 and dups[j - 1] == 0:
                continue  # without a repeated n-gram there is no repeated longer one
            seen = numba.typed.Dict.empty(numba.types.uint64, numba.types.int64)
            chars, resume = 0, 0
            for i in range(hashes.shape[0]):
                if i < resume:
                    continue
                if hashes[i] in seen:
                    chars += starts[i + n] - starts[i]
                    resume = i + n
                else:
                    seen[hashes[i]] = 1
            dups[j] = chars
    return tops, dups


_TOP_NS = np.array(TOP_NGRAMS, np.int64)
_DUP_NS = np.array(DUP_NGRAMS, np.int64)


def ngram_repetition(toks: list[str], sep: int) -> tuple[list[int], list[int]]:
    """Characters of the top n-gram (times its count) for each n of ``TOP_NGRAMS`` (n-grams joined
    by ``sep`` spaces), and characters in repeated n-grams for each n of ``DUP_NGRAMS``."""
    grams = _NGrams(toks)
    tops, dups = _repetition_kernel(grams.token_hashes, grams.starts, sep, _TOP_NS, _DUP_NS)
    return tops.tolist(), dups.tolist()
