"""MinHash signatures of whole batches: shingling compiled with numba, permutations in rensa.

A document's text is lowercased (Arrow) and split into words in one compiled pass over its UTF-8:
punctuation, symbols and whitespace separate words, and each Han/Hiragana/Katakana character is a word
of its own, since those scripts do not put spaces between words (:func:`_char_class`). Each word is
hashed (FNV-1a over its bytes, then splitmix64), and each run of ``ngram`` words gives one 64-bit
shingle hash; a document with fewer words than ``ngram`` has one shingle of all its words. The
shingle hashes of a whole batch go to rensa's ``RMinHash`` in one flat buffer, so no Python code runs
per document, word or shingle (``bench/minhash_bench.py`` measures it against datasketch and rensa).

The signatures are not datasketch's bit for bit (datasketch hashes each shingle's text with SHA-1
and permutes with ``(a*h+b) mod 2**61-1``; rensa permutes 64-bit hashes with its own seeded
functions). What matters is the same estimate of Jaccard similarity: the tests compare precision
and recall of both against exact Jaccard on the same corpus, and datasketch's ``MinHashLSH`` stays
the in-memory reference.
"""

from __future__ import annotations

import functools
import itertools
import math

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import rensa

_SHINGLE_MULT = 0x9E3779B97F4A7C15
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3


@numba.njit(cache=True, inline="always")
def _mix64(x: np.uint64) -> np.uint64:
    """splitmix64's finalizer."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@numba.njit(cache=True, inline="always")
def _char_class(cp: int) -> int:
    """0: part of a word; 1: separator; 2: a word by itself (CJK ideographs and kana).

    Separators: ASCII punctuation, symbols and whitespace, and the common non-ASCII ones: U+00A0-00BF
    (no-break space, «», ©, °, ...), × and ÷, U+2000-2BFF (general punctuation — dashes, curly
    quotes, ellipsis —, currency, arrows, math, shapes), U+3000-303F (CJK punctuation), fullwidth
    punctuation and everything from U+10000 (emoji, mostly).
    """
    if cp < 128:
        if (97 <= cp <= 122) or (48 <= cp <= 57) or (65 <= cp <= 90):
            return 0
        return 1
    if (
        (0xA0 <= cp <= 0xBF)
        or cp == 0xD7
        or cp == 0xF7
        or (0x2000 <= cp <= 0x2BFF)
        or (0x3000 <= cp <= 0x303F)
    ):
        return 1
    if (0xFF01 <= cp <= 0xFF0F) or (0xFF1A <= cp <= 0xFF20) or cp >= 0x10000:
        return 1
    if (0x3040 <= cp <= 0x30FF) or (0x3400 <= cp <= 0x9FFF):
        return 2
    return 0


@numba.njit(cache=True, inline="always")
def _push(word, ring, n_words, ngram, out, written):
    """Add one finished word (its hash); emit the shingle it completes. Returns (n_words, written).

    ``ring`` holds the hashes of the last ``ngram`` words, oldest first (a shift register: no
    division per word)."""
    for k in range(ngram - 1):
        ring[k] = ring[k + 1]
    ring[ngram - 1] = _mix64(word)
    n_words += 1
    if n_words >= ngram:
        s = np.uint64(0)
        for k in range(ngram):
            s = s * np.uint64(_SHINGLE_MULT) ^ ring[k]
        out[written] = _mix64(s ^ np.uint64(ngram))
        written += 1
    return n_words, written


@numba.njit(cache=True)
def _shingle_kernel(data, doc_offsets, ngram, out, out_offsets, out_words):
    """Fill ``out`` with the shingle hashes of each document (words: FNV-1a over their bytes, mixed)
    and ``out_offsets`` with where each document's hashes start, ``out_words`` with its number of
    words; returns how many hashes were written."""
    ring = np.zeros(ngram, np.uint64)
    written = 0
    for d in range(len(doc_offsets) - 1):
        out_offsets[d] = written
        n_words = 0
        word = np.uint64(_FNV_OFFSET)
        in_word = False
        i, stop = doc_offsets[d], doc_offsets[d + 1]
        while i <= stop:
            width, kind = 1, 1  # past the last byte: a separator, which ends the last word
            if i < stop:  # decode one UTF-8 character (a malformed byte counts as one)
                b = data[i]
                cp = b
                if b >= 0xF0 and i + 3 < stop:
                    cp = ((b & 0x07) << 18) | ((data[i + 1] & 0x3F) << 12) | ((data[i + 2] & 0x3F) << 6)
                    cp, width = cp | (data[i + 3] & 0x3F), 4
                elif b >= 0xE0 and i + 2 < stop:
                    cp = ((b & 0x0F) << 12) | ((data[i + 1] & 0x3F) << 6) | (data[i + 2] & 0x3F)
                    width = 3
                elif b >= 0xC0 and i + 1 < stop:
                    cp, width = ((b & 0x1F) << 6) | (data[i + 1] & 0x3F), 2
                kind = _char_class(cp)
            if kind == 0:
                for k in range(width):
                    word = (word ^ np.uint64(data[i + k])) * np.uint64(_FNV_PRIME)
                in_word = True
            else:
                if in_word:
                    n_words, written = _push(word, ring, n_words, ngram, out, written)
                    word, in_word = np.uint64(_FNV_OFFSET), False
                if kind == 2:
                    single = np.uint64(_FNV_OFFSET)
                    for k in range(width):
                        single = (single ^ np.uint64(data[i + k])) * np.uint64(_FNV_PRIME)
                    n_words, written = _push(single, ring, n_words, ngram, out, written)
            i += width
        out_words[d] = n_words
        if 0 < n_words < ngram:  # a short document: one shingle of all its words
            s = np.uint64(0)
            for k in range(ngram - n_words, ngram):
                s = s * np.uint64(_SHINGLE_MULT) ^ ring[k]
            out[written] = _mix64(s ^ np.uint64(n_words))
            written += 1
    out_offsets[len(doc_offsets) - 1] = written
    return written


def shingle_hashes(texts: pa.Array, ngram: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 64-bit shingle hashes of every text, flat; where each text's hashes start (n+1); the number
    of words of each text."""
    low = pc.utf8_lower(texts).cast(pa.large_string())
    if isinstance(low, pa.ChunkedArray):
        low = low.combine_chunks()
    n_docs = len(low)
    offsets = (
        np.frombuffer(low.buffers()[1], np.int64, n_docs + 1, low.offset * 8)
        if n_docs
        else np.zeros(1, np.int64)
    )
    data = np.frombuffer(low.buffers()[2], np.uint8) if n_docs and low.buffers()[2] else np.zeros(0, np.uint8)
    out = np.empty(int(offsets[-1] - offsets[0]) + n_docs, np.uint64)
    out_offsets = np.empty(n_docs + 1, np.uint64)
    words = np.empty(n_docs, np.int64)
    written = _shingle_kernel(data, offsets, ngram, out, out_offsets, words)
    return out[:written], out_offsets, words


def signatures(texts: pa.Array, ngram: int, num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures of a batch of texts — a uint32 array (len(texts), num_perm) — and the number
    of words of each text (a text with no word has a signature of no meaning)."""
    if not len(texts):
        return np.zeros((0, num_perm), np.uint32), np.zeros(0, np.int64)
    hashes, offsets, words = shingle_hashes(texts, ngram)
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(hashes, offsets, num_perm, seed)
    rows = matrix.to_rows()
    sigs = np.fromiter(itertools.chain.from_iterable(rows), np.uint32, count=len(texts) * num_perm)
    return sigs.reshape(len(texts), num_perm), words


def _mix64_array(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, elementwise (numpy wraps uint64 arithmetic modulo 2**64)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per (document, band): the band's ``rows`` values hashed together (uint64 array
    (n, bands)). Two documents share a key when their signatures agree on the whole band."""
    n = sigs.shape[0]
    keys = np.zeros((n, bands), np.uint64)
    with np.errstate(over="ignore"):
        for b in range(bands):
            h = np.full(n, b + 1, np.uint64)
            for r in range(rows):
                h = _mix64_array(h * np.uint64(_SHINGLE_MULT) ^ sigs[:, b * rows + r].astype(np.uint64))
            keys[:, b] = h
    return keys


def collision_probability(similarity: float, bands: int, rows: int) -> float:
    """Chance that two documents of this Jaccard similarity share at least one band."""
    return 1.0 - (1.0 - similarity**rows) ** bands


@functools.lru_cache(maxsize=16)
def bands_for_threshold(threshold: float, num_perm: int) -> tuple[int, int]:
    """The (bands, rows), bands*rows <= num_perm, that minimize 0.1 x false positives + 0.9 x false
    negatives around ``threshold`` (the areas under the S-curve below and above it, as datasketch's
    ``MinHashLSH`` weighs them). Recall weighs more because every candidate pair is then verified
    against the threshold (:func:`estimate_jaccard`), which removes the false positives."""
    grid = np.linspace(0.0, 1.0, 1001)
    best, best_err = (1, num_perm), math.inf
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            p = 1.0 - (1.0 - grid**r) ** b
            fp = np.trapezoid(np.where(grid < threshold, p, 0.0), grid)
            fn = np.trapezoid(np.where(grid >= threshold, 1.0 - p, 0.0), grid)
            if 0.1 * fp + 0.9 * fn < best_err:
                best, best_err = (b, r), 0.1 * fp + 0.9 * fn
    return best


def sketch(sigs: np.ndarray) -> np.ndarray:
    """The lowest 8 bits of every signature value (b-bit minwise hashing, Li & König 2010): a copy of
    the signature four times smaller that still estimates Jaccard similarity."""
    return (sigs & 0xFF).astype(np.uint8)


def estimate_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Jaccard similarity estimated from two rows of 8-bit sketches (row by row): the fraction of
    equal values, less the 1/256 chance that different values agree in their lowest 8 bits."""
    equal = (a == b).mean(axis=-1)
    return np.clip((equal - 1 / 256) / (1 - 1 / 256), 0.0, 1.0)
