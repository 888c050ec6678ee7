"""Benchmark: Loom's training mixture (mix → shuffle → train) against a plain in-memory shuffle, and
decontamination against plain Python 13-gram sets.

    .venv/bin/python bench/mix_bench.py [--quick] [--sizes N,N] [--part-docs N] [--bucket-tokens N]
        [--shard-tokens N] [--decontam-docs N] [--no-baseline]

**Corpus.** ``shards.generate`` documents (the tokenized corpus of the mixture tests: text, pair and
interleaved documents with log-normal token counts, about 674 tokens a document on average; texts of
its default 32 characters, so the token ids are nearly all of a sample's bytes), written as parts
of ``--part-docs`` (10,000; quick 5,000) documents at ``OUT/work/tokens/<part>.parquet`` by two
spawned processes, before anything is timed. The largest size is written once; a smaller size is
its first parts (hard links), so 10x the documents is 10x the parts of the same size.

**Sizes** (``--sizes``): 100,000 and 1,000,000 documents; ``--quick``: 5,000 and 50,000 (parts of
5,000: the same 10x in parts, under a minute on 2 cores).

**Loom** (per size, in a fresh spawned process): ``MixStep`` → ``ShuffleStep`` → ``TrainStep`` as
``tests/shards/test_mix.py`` runs them, ``step.run(None)``: every part of a step runs in turn in this
one process, so the rates are per core. ``[mix]``: the weights are the corpus's own token shares
by kind, ``max_epochs`` 1, so the mixture takes (nearly) every document once; ``bucket_tokens``
(5M) and ``shard_tokens`` (1M) are fixed, so a train part (one shuffle bucket) holds the same
number of tokens at every size. Timed: the three ``run`` calls, driver-side merges included (the
mix step's histogram sum, the train step's manifest and subsets). ``docs_s`` / ``tokens_s`` are
the corpus's documents and tokens over that time; ``samples`` is what the train shards hold.

**Baseline** (per size, in a fresh spawned process): read every part into memory (one Arrow
table per part), shuffle the rows with a seeded ``numpy`` permutation, cut the shuffled order into
shards by the same token count (``shards.train.cut_by_tokens``) and write each as the same
webdataset samples (``document_dicts`` → ``to_sample`` → ``write_tar(by_key=False)``), taking one
shard's rows at a time from each part's table (:func:`take_rows`; ``Table.take`` on one table of
many chunks would concatenate the whole list column on every call: a copy of the corpus per
shard). Run only while three times the corpus's parquet bytes fit in the available memory
(``--no-baseline``: never).

**Memory.** Each process records ``VmHWM`` (its peak resident memory) right after its imports
(``after_import_mb``) and at its end (``peak_mb``); ``growth_mb`` is the difference: what the work
itself held at its peak. ``VmHWM`` rather than ``ru_maxrss``: Linux carries ``ru_maxrss`` across
``exec``, so a child's figure may be its parent's peak (``ru_maxrss_mb`` is reported beside it; the
parent here stays small, so they agree). Loom's process also resets ``VmHWM`` before each step
(``/proc/self/clear_refs``) to give each step's own peak. Loom's peak should stay flat as the corpus grows
10x, since no part holds more than one documents part or one bucket, while the baseline's grows with
the corpus. Compare ``steps.<step>.peak_mb`` across sizes (``docs/PERFORMANCE.md`` has a run).

**Decontamination** (``filters.decontaminate``, in a spawned process): ``--decontam-docs``
documents (20,000; quick 5,000) of 300 words drawn (Zipf) from a seeded vocabulary of 5,000 made-up
words, capitalised and punctuated here and there; an evaluation file (JSONL, 2,000 items: a
``question`` of 25-35 words and an ``answer`` of 3-8). 2 % of the documents quote 13-30
consecutive words of an item (case and punctuation changed), 1 % quote only 12 (no 13-gram,
unless a neighbouring word happens to complete one). Loom:
``Decontaminate(DecontaminateConfig(paths=[file]))`` on the documents table in
batches of 5,000 rows (the index is read first, timed apart as ``index_s``). Reference: the set of
13-word tuples of every item (its fields joined by a newline, lowercased, ``re.findall(r"\\w+")``),
and per document a loop over its 13-grams, looked up in the set. ``words_s``: the documents' words
(by the reference's split) over the matching time. Both must find the same documents (checked).

The last line printed is one JSON object with all figures; ``loom_docs_s`` & co. are the largest
size's.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's packages, not another's

from childproc import in_child  # noqa: E402  (bench/ is on sys.path: the script's folder)

TOKENS_PATTERN = "work/tokens/{part}.parquet"
SEED = 0

log = logging.getLogger("bench.mix")


# --------------------------------------------------------------------------------------------------
# Memory and child processes
# --------------------------------------------------------------------------------------------------


def _status_mb(field: str) -> float:
    """``VmHWM`` / ``VmRSS`` of this process in MB (``ru_maxrss`` where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _ru_maxrss_mb()


def _ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _reset_peak() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs`` 5); whether it could."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _memory(after_import_mb: float) -> dict[str, float]:
    peak = _status_mb("VmHWM")
    return {
        "after_import_mb": round(after_import_mb, 1),
        "peak_mb": round(peak, 1),
        "growth_mb": round(peak - after_import_mb, 1),
        "ru_maxrss_mb": round(_ru_maxrss_mb(), 1),
    }


# --------------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------------


def part_name(p: int) -> str:
    return f"gen-{p:05d}"  # as shards.generate.write_generated names them


def _gen_part(job: tuple[str, int, int]) -> dict[str, int]:
    """Write generated part ``p`` (as ``write_generated`` would); its tokens by kind and documents."""
    import pyarrow.compute as pc

    from pipeline.storage import Storage
    from shards.generate import generated_part

    root, p, docs = job
    table = generated_part(p, docs, SEED)
    Storage(root).write_parquet(TOKENS_PATTERN.format(part=part_name(p)), table)
    lengths = pc.list_value_length(table["tokens"]).to_numpy(zero_copy_only=False).astype(np.int64)
    kinds = np.array(table["kind"].to_pylist())
    return {k: int(lengths[kinds == k].sum()) for k in np.unique(kinds).tolist()} | {"_docs": len(kinds)}


def write_corpus(root: str, parts: int, part_docs: int) -> list[dict[str, int]]:
    """``parts`` generated parts under ``root``, by two processes; per part its tokens by kind."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(min(2, parts, os.cpu_count() or 1)) as pool:
        return pool.map(_gen_part, [(root, p, part_docs) for p in range(parts)], chunksize=1)


def link_parts(corpus: str, run: str, parts: int) -> None:
    """``run``'s ``work/tokens/`` holds the corpus's first ``parts`` parts (hard links)."""
    folder = os.path.dirname(TOKENS_PATTERN)
    os.makedirs(os.path.join(run, folder), exist_ok=True)
    for p in range(parts):
        rel = TOKENS_PATTERN.format(part=part_name(p))
        os.link(os.path.join(corpus, rel), os.path.join(run, rel))


# --------------------------------------------------------------------------------------------------
# Loom: mix → shuffle → train, in-process
# --------------------------------------------------------------------------------------------------


def loom_run(run: str, parts: int, weights: dict[str, float], mix: dict[str, Any]) -> dict[str, Any]:
    """The three steps on ``run``'s corpus, in this (fresh) process: times, counts and memory."""
    from pipeline.runner import Part
    from pipeline.step import Data
    from pipeline.storage import Storage
    from shards.config import MixConfig
    from shards.mix import MixStep
    from shards.shuffle import ShuffleStep
    from shards.train import TrainStep

    after_import = _status_mb("VmHWM")
    storage = Storage(run)
    tokens = Data("tokens", "documents", TOKENS_PATTERN)
    doc_parts = [Part(part_name(p)) for p in range(parts)]
    cfg = MixConfig(weights=weights, **mix)
    steps: dict[str, Any] = {}
    peaks = []

    def timed(step: Any) -> Any:
        reset = _reset_peak()
        t0 = time.perf_counter()
        res = step.run(None)
        wall = time.perf_counter() - t0
        peak = _status_mb("VmHWM")
        peaks.append(peak)
        steps[res.name] = {
            "wall_s": round(wall, 2),
            "parts": res.parts,
            "rows_in": res.stats.rows_in,
            "rows_out": res.stats.rows_out,
            "peak_mb": round(peak, 1) if reset else None,
        }
        return res

    start = time.perf_counter()
    mix_step = MixStep(storage, doc_parts, tokens, cfg)
    timed(mix_step)
    shuffle = ShuffleStep(storage, doc_parts, tokens, mix_step["plan"], mix_step["positions"], cfg)
    timed(shuffle)
    train = timed(TrainStep(storage, doc_parts, shuffle["documents"], mix_step["plan"], cfg))
    total_s = time.perf_counter() - start
    memory = _memory(after_import)
    memory["peak_mb"] = round(max([memory["peak_mb"], *peaks]), 1)
    memory["growth_mb"] = round(memory["peak_mb"] - after_import, 1)
    extra = train.stats.extra
    return {
        "total_s": round(total_s, 2),
        "steps": steps,
        "buckets": train.parts,
        "samples": extra["samples"],
        "samples_tokens": extra["tokens"],
        "shards": extra["shards"],
        **memory,
    }


# --------------------------------------------------------------------------------------------------
# Baseline: one table in memory, a numpy permutation, the same shards
# --------------------------------------------------------------------------------------------------


def take_rows(tables: list[Any], bounds: np.ndarray, rows: np.ndarray) -> list[dict[str, Any]]:
    """The documents at ``rows`` (of the tables one after another, ``bounds``: where each starts), in
    that order, as ``document_dicts`` gives them. Each table is taken from on its own: Arrow's
    ``take`` on a list column of many chunks concatenates all the chunks on every call."""
    import pyarrow as pa

    from shards.writer import document_dicts

    chunk = np.searchsorted(bounds, rows, side="right") - 1
    pieces = [tables[c].take(pa.array(rows[chunk == c] - bounds[c])) for c in np.unique(chunk).tolist()]
    docs = document_dicts(pa.concat_tables(pieces))
    by_chunk = np.argsort(chunk, kind="stable")  # docs[k] is rows[by_chunk[k]]
    return [docs[k] for k in np.argsort(by_chunk).tolist()]


def baseline_run(corpus: str, parts: int, out: str, shard_tokens: int) -> dict[str, Any]:
    """Read every part into memory, permute the rows, write the same samples into tars cut by the
    same token count, one shard's rows at a time."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from shards.train import cut_by_tokens
    from shards.writer import to_sample, write_tar

    after_import = _status_mb("VmHWM")
    os.makedirs(out, exist_ok=True)
    start = time.perf_counter()
    files = [os.path.join(corpus, TOKENS_PATTERN.format(part=part_name(p))) for p in range(parts)]
    tables = [pq.read_table(f) for f in files]
    bounds = np.cumsum([0, *(t.num_rows for t in tables)])
    rows = int(bounds[-1])
    order = np.random.default_rng(SEED).permutation(rows)
    lengths = np.concatenate(
        [pc.list_value_length(t["tokens"]).to_numpy(zero_copy_only=False) for t in tables]
    ).astype(np.int64)
    runs = cut_by_tokens(lengths[order].tolist(), shard_tokens)
    read_s = time.perf_counter() - start
    samples = 0
    for k, (a, b) in enumerate(runs):
        docs = take_rows(tables, bounds, order[a:b])
        write_tar([to_sample(d) for d in docs], os.path.join(out, f"{k:05d}.tar"), by_key=False)
        samples += len(docs)
    total_s = time.perf_counter() - start
    assert samples == rows, (samples, rows)
    return {
        "total_s": round(total_s, 2),
        "read_s": round(read_s, 2),
        "samples": samples,
        "samples_tokens": int(lengths.sum()),
        "shards": len(runs),
        **_memory(after_import),
    }


# --------------------------------------------------------------------------------------------------
# Decontamination
# --------------------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")
NGRAM = 13


def made_up_vocabulary(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct lowercase words of 2-10 letters."""
    words: set[str] = set()
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    while len(words) < n:
        for size in rng.integers(2, 11, n):
            words.add("".join(rng.choice(letters, size)))
    return sorted(words)[:n]


def decontam_corpus(
    docs: int, doc_words: int, items: int, vocab: int, seed: int
) -> tuple[list[str], list[dict[str, str]], set[int]]:
    """Documents, evaluation items, and the documents planted with a quote of 13+ words."""
    rng = np.random.default_rng(seed)
    words = made_up_vocabulary(rng, vocab)
    # variants: plain, "word,", "word.", "Word" — drawn Zipf-like, punctuation and capitals now and then
    table = np.array(words + [w + "," for w in words] + [w + "." for w in words] + [w.title() for w in words])
    p = 1 / np.arange(1, vocab + 1)
    p /= p.sum()

    def draw(n: int) -> np.ndarray:
        return rng.choice(vocab, n, p=p)

    eval_items = []
    for i in range(items):
        q, a = draw(int(rng.integers(25, 36))), draw(int(rng.integers(3, 9)))
        question = " ".join(table[q].tolist()).capitalize() + "?"
        eval_items.append({"id": f"item-{i}", "question": question, "answer": " ".join(table[a].tolist())})
    idx = draw(docs * doc_words).reshape(docs, doc_words)
    variant = rng.choice(4, idx.shape, p=[0.85, 0.07, 0.05, 0.03])
    texts = [" ".join(row.tolist()) for row in table[idx + variant * vocab]]
    planted: set[int] = set()
    for d in rng.choice(docs, int(docs * 0.03), replace=False).tolist():
        full = len(planted) < int(docs * 0.02)
        item = eval_items[int(rng.integers(items))]
        item_words = (item["question"] + "\n" + item["answer"]).split()
        n = int(rng.integers(NGRAM, min(30, len(item_words)) + 1)) if full else NGRAM - 1
        at = int(rng.integers(0, len(item_words) - n + 1))
        quote = [w.upper() if k % 5 == 0 else w for k, w in enumerate(item_words[at : at + n])]
        doc = texts[d].split(" ")
        pos = int(rng.integers(0, len(doc)))
        texts[d] = " ".join([*doc[:pos], "«" + " ".join(quote) + "»", *doc[pos:]])
        if full:
            planted.add(d)
    return texts, eval_items, planted


def reference_index(eval_items: list[dict[str, str]]) -> set[tuple[str, ...]]:
    grams: set[tuple[str, ...]] = set()
    for item in eval_items:
        w = _WORD.findall((item["question"] + "\n" + item["answer"]).lower())
        grams.update(zip(*(w[k:] for k in range(NGRAM)), strict=False))
    return grams


def reference_matches(texts: list[str], grams: set[tuple[str, ...]]) -> set[int]:
    found = set()
    for i, text in enumerate(texts):
        w = _WORD.findall(text.lower())
        for gram in zip(*(w[k:] for k in range(NGRAM)), strict=False):
            if gram in grams:
                found.add(i)
                break
    return found


def decontam_run(docs: int, batch: int, tmp: str) -> dict[str, Any]:
    """Loom's ``Decontaminate`` stage and the plain Python 13-gram loop on the same documents."""
    import pyarrow as pa

    from filters.config import DecontaminateConfig
    from filters.decontaminate import REASON, Decontaminate
    from pipeline.schema import DOC_SCHEMA

    t0 = time.perf_counter()
    texts, eval_items, planted = decontam_corpus(docs, 300, 2000, 5000, SEED)
    eval_path = os.path.join(tmp, "eval.jsonl")
    with open(eval_path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(item) + "\n" for item in eval_items)
    table = pa.Table.from_pydict(
        {
            "id": [f"d{i}" for i in range(docs)],
            "source": ["web"] * docs,
            "kind": ["text"] * docs,
            "url": [f"https://example.com/{i}" for i in range(docs)],
            "texts": [[t] for t in texts],
            "images": [[None]] * docs,
            "meta": [{"language": "en"}] * docs,
        },
        schema=DOC_SCHEMA,
    )
    words = sum(len(_WORD.findall(t)) for t in texts)
    gen_s = time.perf_counter() - t0

    # Loom: the index (read + hashed, numba kernel loaded), then the stage on batches.
    stage = Decontaminate(DecontaminateConfig(paths=[eval_path]))
    t0 = time.perf_counter()
    index = stage.index()
    loom_index_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    loom_found: set[int] = set()
    for start in range(0, docs, batch):
        out = stage(table.slice(start, batch))
        reasons = out["_drop_reason"].to_pylist() if "_drop_reason" in out.column_names else []
        loom_found.update(start + i for i, r in enumerate(reasons) if r == REASON)
    loom_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    grams = reference_index(eval_items)
    ref_index_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref_found = reference_matches(texts, grams)
    ref_s = time.perf_counter() - t0

    assert loom_found == ref_found, (
        f"Loom and the reference disagree: {len(loom_found - ref_found)} only Loom, "
        f"{len(ref_found - loom_found)} only the reference"
    )
    assert planted <= loom_found, f"{len(planted - loom_found)} planted quotes missed"
    return {
        "docs": docs,
        "words": words,
        "eval_items": len(eval_items),
        "eval_ngrams": len(index.hashes),
        "planted": len(planted),
        "found": len(loom_found),
        "gen_s": round(gen_s, 2),
        "loom_index_s": round(loom_index_s, 3),
        "loom_s": round(loom_s, 3),
        "loom_words_s": round(words / loom_s),
        "ref_index_s": round(ref_index_s, 3),
        "ref_s": round(ref_s, 3),
        "ref_words_s": round(words / ref_s),
        "ratio_vs_python_ngrams": round(ref_s / loom_s, 2),
    }


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


def mix_figures(args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    parts_of = {n: -(-n // args.part_docs) for n in args.sizes}
    for n in args.sizes:
        if n % args.part_docs:
            raise SystemExit(f"--sizes: {n} is not a multiple of --part-docs {args.part_docs}")
    corpus = os.path.join(tmp, "corpus")
    t0 = time.perf_counter()
    per_part = write_corpus(corpus, max(parts_of.values()), args.part_docs)
    log.info(
        "corpus: %d parts of %d documents written in %.1fs (not timed)",
        len(per_part),
        args.part_docs,
        time.perf_counter() - t0,
    )
    mix = {"shard_tokens": args.shard_tokens, "bucket_tokens": args.bucket_tokens, "seed": SEED}
    available = _mem_available()
    out: dict[str, Any] = {}
    for n in sorted(args.sizes):
        parts = parts_of[n]
        by_kind: dict[str, int] = {}
        for counts in per_part[:parts]:
            for k, v in counts.items():
                if k != "_docs":
                    by_kind[k] = by_kind.get(k, 0) + v
        tokens = sum(by_kind.values())
        weights = {k: v / tokens for k, v in by_kind.items()}  # the corpus's own shares: all taken once
        run = os.path.join(tmp, f"loom-{n}")
        link_parts(corpus, run, parts)
        loom = in_child(loom_run, run, parts, weights, mix)
        shutil.rmtree(run, ignore_errors=True)
        fig: dict[str, Any] = {"docs": n, "parts": parts, "tokens": tokens, "loom": loom}
        if "error" not in loom:
            loom["docs_s"] = round(n / loom["total_s"], 1)
            loom["tokens_s"] = round(tokens / loom["total_s"])
            log.info(
                "loom %d docs: %.1fs, %.0f docs/s, %.2fM tokens/s, %d buckets, peak %.0f MB (+%.0f)",
                n,
                loom["total_s"],
                loom["docs_s"],
                loom["tokens_s"] / 1e6,
                loom["buckets"],
                loom["peak_mb"],
                loom["growth_mb"],
            )
        parquet_bytes = sum(
            os.path.getsize(os.path.join(corpus, TOKENS_PATTERN.format(part=part_name(p))))
            for p in range(parts)
        )
        if args.no_baseline or (available and 3 * parquet_bytes > available):
            fig["baseline"] = {"skipped": f"{parquet_bytes / 1e6:.0f} MB of parquet: does not fit"}
        else:
            out_dir = os.path.join(tmp, f"baseline-{n}")
            base = in_child(baseline_run, corpus, parts, out_dir, args.shard_tokens)
            shutil.rmtree(out_dir, ignore_errors=True)
            fig["baseline"] = base
            if "error" not in base:
                base["docs_s"] = round(n / base["total_s"], 1)
                base["tokens_s"] = round(tokens / base["total_s"])
                log.info(
                    "baseline %d docs: %.1fs, %.0f docs/s, peak %.0f MB (+%.0f)",
                    n,
                    base["total_s"],
                    base["docs_s"],
                    base["peak_mb"],
                    base["growth_mb"],
                )
        out[str(n)] = fig
    return out


def _mem_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The headline figures: rates of the largest size, peaks by size, the ratios."""
    sizes = sorted(int(n) for n in result["runs"])
    runs = [result["runs"][str(n)] for n in sizes]
    loom = [r["loom"] for r in runs]
    base = [r["baseline"] for r in runs]
    out: dict[str, Any] = {"sizes": sizes}
    if all("error" not in f for f in loom):
        out |= {
            "loom_docs_s": loom[-1]["docs_s"],
            "loom_tokens_s": loom[-1]["tokens_s"],
            "loom_peak_mb": {str(n): f["peak_mb"] for n, f in zip(sizes, loom, strict=True)},
            "loom_growth_mb": {str(n): f["growth_mb"] for n, f in zip(sizes, loom, strict=True)},
        }
    if all("docs_s" in f for f in base):
        out |= {
            "baseline_docs_s": base[-1]["docs_s"],
            "baseline_peak_mb": {str(n): f["peak_mb"] for n, f in zip(sizes, base, strict=True)},
            "baseline_growth_mb": {str(n): f["growth_mb"] for n, f in zip(sizes, base, strict=True)},
        }
        if "loom_docs_s" in out:
            out["docs_s_ratio"] = round(out["loom_docs_s"] / out["baseline_docs_s"], 2)
            out["peak_growth_ratio"] = round(base[-1]["growth_mb"] / max(loom[-1]["growth_mb"], 1.0), 2)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (under a minute)")
    ap.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=None,
        help="corpus sizes in documents, comma-separated (default 100000,1000000; quick 5000,50000)",
    )
    ap.add_argument("--part-docs", type=int, default=None, help="documents per part (10000; quick 5000)")
    ap.add_argument("--bucket-tokens", type=int, default=5_000_000, help="[mix] bucket_tokens (5M)")
    ap.add_argument("--shard-tokens", type=int, default=1_000_000, help="[mix] shard_tokens (1M)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the in-memory shuffle")
    ap.add_argument(
        "--decontam-docs", type=int, default=None, help="decontamination documents (20000; quick 5000)"
    )
    ap.add_argument("--batch", type=int, default=5000, help="decontamination rows per stage call")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    args.sizes = args.sizes or ([5_000, 50_000] if args.quick else [100_000, 1_000_000])
    args.part_docs = args.part_docs or (5_000 if args.quick else 10_000)
    if args.decontam_docs is None:
        args.decontam_docs = 5000 if args.quick else 20_000

    start = time.perf_counter()
    result: dict[str, Any] = {"bench": "mix", "load_avg_start": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="loom-bench-mix-") as tmp:
        runs = mix_figures(args, tmp)
        result["runs"] = runs
        result = {**result, **summary(result)}
        if args.decontam_docs:
            dec = in_child(decontam_run, args.decontam_docs, args.batch, tmp)
            result["decontam"] = dec
            if "error" not in dec:
                result["decontam_words_s"] = dec["loom_words_s"]
                result["ref_words_s"] = dec["ref_words_s"]
                result["ratio_vs_python_ngrams"] = dec["ratio_vs_python_ngrams"]
                log.info(
                    "decontaminate: loom %.2fM words/s, python 13-grams %.2fM words/s (x%.1f); "
                    "%d documents found (%d planted)",
                    dec["loom_words_s"] / 1e6,
                    dec["ref_words_s"] / 1e6,
                    dec["ratio_vs_python_ngrams"],
                    dec["found"],
                    dec["planted"],
                )
    result["part_docs"] = args.part_docs
    result["bucket_tokens"] = args.bucket_tokens
    result["shard_tokens"] = args.shard_tokens
    result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["seconds"] = round(time.perf_counter() - start, 1)
    errors = [
        f"{what} {n}: {r[what]['error']}"
        for n, r in result["runs"].items()
        for what in ("loom", "baseline")
        if "error" in r[what]
    ]
    if "error" in result.get("decontam", {}):
        errors.append(f"decontam: {result['decontam']['error']}")
    for e in errors:
        log.error("%s", e)
    print(json.dumps(result))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
