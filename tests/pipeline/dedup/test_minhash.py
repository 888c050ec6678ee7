"""MinHash signatures: the compiled shingling equals plain Python, and estimates track real similarity."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
from datasketch import MinHash

from pipeline.dedup.minhash import (
    _FNV_OFFSET,
    _FNV_PRIME,
    _SHINGLE_MULT,
    _mix64,
    band_keys,
    bands_for_threshold,
    collision_probability,
    estimate_jaccard,
    shingle_hashes,
    signatures,
    sketch,
)
from tests.pipeline.dedup.planted import jaccard, shingles, words_of

MASK = (1 << 64) - 1


def reference_hashes(text: str, n: int = 5) -> list[int]:
    """The shingle hashes of one text, computed in plain Python from the documented recipe."""

    def mix(x: int) -> int:
        return int(_mix64.py_func(np.uint64(x)))

    def fnv(data: bytes) -> int:
        h = _FNV_OFFSET
        for byte in data:
            h = ((h ^ byte) * _FNV_PRIME) & MASK
        return h

    words = [mix(fnv(w.encode())) for w in words_of(text)]
    spans = [words[i : i + n] for i in range(len(words) - n + 1)] if len(words) >= n else [words]
    out = []
    for span in spans if words else []:
        h = 0
        for w in span:
            h = ((h * _SHINGLE_MULT) & MASK) ^ w
        out.append(mix(h ^ len(span)))
    return out


def lingua_sentences(shared_data) -> list[str]:
    texts = []
    for path in sorted((shared_data / "langid" / "lingua" / "sentences").iterdir())[:20]:
        texts.append(path.read_text(encoding="utf-8")[:3000])
    return texts


def test_shingle_hashes_equal_plain_python_on_real_multilingual_text(shared_data):
    texts = [*lingua_sentences(shared_data), "", "One two.", "日本語のテキストです。", "“Quotes” — dashes…"]
    hashes, offsets, words = shingle_hashes(pa.array(texts), 5)
    for i, text in enumerate(texts):
        assert hashes[offsets[i] : offsets[i + 1]].tolist() == reference_hashes(text)
        assert words[i] == len(words_of(text))


def test_words_split_on_punctuation_and_cjk_characters_stand_alone():
    assert words_of("Hello, World! “quoted”—dash… ÜBER café 2×3") == [
        "hello",
        "world",
        "quoted",
        "dash",
        "über",
        "café",
        "2",
        "3",
    ]
    assert words_of("日本語のテキスト") == list("日本語のテキスト")


def test_a_sliced_batch_gives_the_same_signatures():
    texts = pa.array([f"document number {i} " + "shared words repeat here " * 20 for i in range(10)])
    whole, _ = signatures(texts, 5, 64, 1)
    part, _ = signatures(texts[3:7], 5, 64, 1)
    assert (whole[3:7] == part).all()


def test_the_estimate_tracks_the_human_judged_copycat_pairs(shared_data):
    """125 pairs of real Common Crawl pages with their S3 similarity score (CopyCat)."""
    rows = [json.loads(line) for line in (shared_data / "dedup/copycat/pairs.jsonl").open()]
    a, _ = signatures(pa.array([r["src_doc"] for r in rows]), 5, 112, 1)
    b, _ = signatures(pa.array([r["target_doc"] for r in rows]), 5, 112, 1)
    estimate = (a == b).mean(axis=1)
    s3 = np.array([r["s3"] for r in rows])
    exact = np.array([jaccard(shingles(r["src_doc"]), shingles(r["target_doc"])) for r in rows])
    ranks = lambda x: np.argsort(np.argsort(x))  # noqa: E731
    assert np.corrcoef(estimate, s3)[0, 1] >= 0.9  # measured 0.966
    assert np.corrcoef(ranks(estimate), ranks(s3))[0, 1] >= 0.9  # Spearman, measured 0.962
    assert np.abs(estimate - exact).mean() <= 0.05  # measured 0.034 against exact Jaccard


def test_the_estimate_is_as_close_to_exact_jaccard_as_datasketch(shared_data):
    rows = [json.loads(line) for line in (shared_data / "dedup/copycat/pairs.jsonl").open()]
    exact, ours, theirs = [], [], []
    for r in rows[:60]:
        sa, sb = shingles(r["src_doc"]), shingles(r["target_doc"])
        exact.append(jaccard(sa, sb))
        sig, _ = signatures(pa.array([r["src_doc"], r["target_doc"]]), 5, 112, 1)
        ours.append(float((sig[0] == sig[1]).mean()))
        ma, mb = MinHash(num_perm=112), MinHash(num_perm=112)
        ma.update_batch([s.encode() for s in sa])
        mb.update_batch([s.encode() for s in sb])
        theirs.append(ma.jaccard(mb))
    err_ours = np.abs(np.array(ours) - exact).mean()
    err_theirs = np.abs(np.array(theirs) - exact).mean()
    assert err_ours <= err_theirs + 0.02


def test_sketches_estimate_like_the_full_signature():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2**32, (200, 112), dtype=np.uint64).astype(np.uint32)
    b = a.copy()
    b[:, :28] = rng.integers(0, 2**32, (200, 28), dtype=np.uint64).astype(np.uint32)  # 75% equal
    est = estimate_jaccard(sketch(a), sketch(b))
    assert abs(est.mean() - 0.75) < 0.01


def test_documents_that_agree_on_a_band_share_its_key():
    sigs = np.arange(2 * 16, dtype=np.uint32).reshape(2, 16)
    sigs[1, 4:8] = sigs[0, 4:8]  # band 1 (rows 4..7) equal
    keys = band_keys(sigs, 4, 4)
    assert keys[0, 1] == keys[1, 1] and (keys[0, [0, 2, 3]] != keys[1, [0, 2, 3]]).all()
    assert len(set(keys[0].tolist())) == 4  # the band number is part of the key


def test_threshold_mode_chooses_bands_that_favour_recall():
    bands, rows = bands_for_threshold(0.8, 112)
    assert bands * rows <= 112
    assert collision_probability(0.9, bands, rows) > 0.99
    assert collision_probability(0.85, bands, rows) > 0.95
    assert collision_probability(0.5, bands, rows) < 0.03  # the rest go at verification
