"""Gopher's n-gram repetition measures: the compiled kernel counts what the numpy definitions count."""

from __future__ import annotations

import numpy as np

from filters import ngrams as h


def test_the_compiled_repetition_kernel_counts_what_the_numpy_definitions_count():
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(40)]
    for case in range(600):
        words = vocab[: int(rng.integers(1, 40))]
        toks = [words[i] for i in rng.integers(0, len(words), int(rng.integers(0, 300)))]
        if case % 3 == 0:
            toks = toks[:12] * 4 + toks  # repeated runs: the dup n-gram scans have work
        grams = h._NGrams(toks)
        tops, dups = h._repetition_kernel(grams.token_hashes, grams.starts, case % 2, h._TOP_NS, h._DUP_NS)
        ref = h._NGrams(toks)
        assert tops.tolist() == [h._top_ngram_chars(ref, n, case % 2) for n in h.TOP_NGRAMS]
        expected, repeats = [], True
        for n in h.DUP_NGRAMS:
            expected.append(h._dup_ngram_chars(ref, n) if repeats else 0)
            repeats = expected[-1] > 0
        assert dups.tolist() == expected
