"""Benchmark: Loom's MinHash signatures vs datasketch and rensa, then the whole dedup on local Ray.

    .venv/bin/python bench/minhash_bench.py [--quick] [--docs N] [--sizes N,N] [--part-docs N]
        [--data-dir DIR]

**Part 1 — signatures, one process (= one core).** Documents: the text of the 130 Mozilla
Readability pages (``../shared/data/html/readability/test-pages/*/expected.html``, tags stripped),
cut on word boundaries into chunks of about 2,000 characters, the list repeated to N documents
(20,000; ``--quick`` 5,000). Every contender starts from the same Python ``str`` documents, does its
own shingling (word 5-grams) and makes 112-permutation signatures, seed 1:

* ``loom_docs_s`` — ``pipeline.dedup.minhash.signatures(pa.array(batch), 5, 112, 1)`` over batches of
  ``--batch`` (5,000) documents, as ``dedup_keys`` calls it on a whole documents part (which holds
  25,000 by default here); the ``pa.array`` of the batch is timed too. One untimed warm-up call first
  (numba loads, or compiles, its kernel on first use). The result is a numpy ``uint32`` matrix.
* ``datasketch_docs_s`` — datasketch, one document at a time: lowercase, ``re.findall(r"\\w+")``, the
  5-gram strings encoded to UTF-8, ``MinHash(num_perm=112, permutations=…).update_batch(…)``. The
  permutations of one template ``MinHash`` are shared, datasketch's documented fast path (without it
  each ``MinHash`` draws its 112 permutations again). It is slow, so it runs on the first
  ``--datasketch-docs`` documents (1,000; quick 300).
* ``rensa_docs_s`` — the same Python shingles, then ``rensa.RMinHash.digest_matrix_from_token_sets(
  token_sets, 112, 1)`` on batches of ``--batch``; on the first ``--rensa-docs`` documents (all;
  quick 2,000). Its result (a rensa matrix) is not turned into numpy: Loom's figure includes that.

Each contender runs 3 times (``--reps``) over its documents, taking turns so that background load
hits all of them alike, and its figure is the best run (the least disturbed one). docs/s here is
docs/s per core. ``ratio_vs_datasketch`` = loom / datasketch and ``ratio_vs_rensa`` = loom / rensa
(above 1: Loom is faster). The signatures differ in their hash functions (see
``pipeline/dedup/minhash.py``), not in what they estimate.

**Part 2 — the whole dedup on local Ray, on this machine.** Synthetic ``text`` documents
(``DOC_SCHEMA``) are written as documents parts of ``--part-docs`` documents (25,000; quick 5,000) to
``OUT/work/documents/<part>.parquet`` under a temp dir (removed at the end). Then one child process
(a clean driver) starts local Ray with all CPUs through ``jobs.run.RaySession`` and, for each
corpus size of ``--sizes`` (250,000 and 1,000,000; quick 20,000), smallest first, in an
output root of its own, runs the four dedup steps of the job's graph as ``loom run`` builds it
(``jobs.graph.build_graph``) and runs them (``step.run``: ``DedupKeysStep``, ``BucketsStep``,
``ComponentsStep`` with its star rounds, ``DedupStep``; default ``[dedup]`` settings: 5-word
shingles, 14 bands x 8 rows = 112 permutations, no threshold, keep the earliest crawl date). Writing
the documents (2 processes, ``e2e.gen_s``) and starting Ray (``e2e.ray_start_s``) are not timed.

The corpus: document ``g`` is a function of ``g`` alone, so the largest corpus is written once and a
smaller size is its first parts (hard links). A document is about 2,000 characters: words drawn from
the real text's word stream (letters and digits; unspaced CJK runs left out, see ``word_stream``), so
word frequencies are real. About 10 % of the documents are near copies of an earlier original (its
words with ``--changes`` (3) of them replaced: Jaccard of the 5-gram sets about 0.92) and about 5 %
are exact copies under another URL; a copy is crawled later than its original. So the right result
is known: exactly the planted copies go, the near ones for ``minhash`` and the exact ones for
``exact_text``. ``missed``, ``wrongly_removed`` and ``wrong_reason`` compare the dedup ledger with
it (LSH at Jaccard 0.92 misses fewer than 1 pair in 10,000: ``missed`` may be a few).

Figures of ``e2e.<size>``:

* time: ``steps.<step>.wall_s``, the step's wall time (Ray Data start-up of the step's actors
  included: a few seconds per step here, and ``dedup_components`` runs one Ray Data execution per
  round, ``rounds`` of them); ``steps.<step>.parts_s``, the time its parts ran, summed over parts
  (``wall_s`` well above ``parts_s / cpus`` is scheduling overhead); ``total_s``, the four steps;
  ``docs_s`` = documents / ``total_s``, the whole dedup on all ``cpus`` of this machine;
  ``keys_signature_s``, the part of ``dedup_keys``'s ``parts_s`` spent in MinHash signatures and
  band keys (the rest: reading, rows to Python, exact keys, sorting and writing).
* what was removed: ``removed`` by reason (the ``dedup`` step's merged stats), ``planted``, and the
  check above.
* memory: ``steps.<step>.peak_rss_mb`` is the largest ``ru_maxrss`` of a Ray worker process that ran a
  part of the step (the runner records it per part; ``dedup_components`` has it per round in
  ``round_peak_rss_mb``, read from the rounds' part markers). ``ru_maxrss`` is a lifetime peak, so if
  Ray reused a worker process for a later step, that step's figure would carry the earlier peak.
  ``worker_peak_rss_mb`` is their maximum. ``driver_rss_mb`` is the driver's own peak after the
  size's four steps (a lifetime peak too; sizes run smallest first, and the ledger checks only after
  all sizes; ``e2e.driver_rss_mb_before``: after Ray started), from ``VmHWM``: the driver is a child
  process, and its ``ru_maxrss`` (``driver_ru_maxrss_mb``) still holds the peak of the benchmark
  process that started it. Parts have a fixed size and the shuffle partitions follow the number of
  parts, so memory per worker should not grow with the corpus: compare ``worker_peak_rss_mb`` (and
  each step's ``peak_rss_mb``) across sizes.

``load_avg_start`` / ``load_avg_end`` are the machine's load averages: other work on a 2-core machine
shows in every figure.

The last line printed is one JSON object with all figures. Without the test pages, it says so
(``"skipped"``) and the exit code is 0.
"""

from __future__ import annotations

import argparse
import itertools
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
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's packages, not another's
DATA_DIR = ROOT.parent / "shared" / "data"
PAGES = Path("html") / "readability" / "test-pages"
NGRAM, NUM_PERM, SEED = 5, 112, 1
CHUNK_CHARS = 2000
_WORD = re.compile(r"\w+")

from childproc import in_child  # noqa: E402  (bench/ is on sys.path: the script's folder)

log = logging.getLogger("bench.minhash")


# --------------------------------------------------------------------------------------------------
# Real text
# --------------------------------------------------------------------------------------------------


def load_chunks(pages_dir: Path, chars: int = CHUNK_CHARS) -> list[str]:
    """The text of every ``expected.html``, cut on word boundaries into chunks of about ``chars``
    characters (a page's last, shorter chunk is kept when it has at least half of that)."""
    from selectolax.lexbor import LexborHTMLParser

    chunks: list[str] = []
    for page in sorted(pages_dir.glob("*/expected.html")):
        tree = LexborHTMLParser(page.read_text(encoding="utf-8", errors="replace"))
        node = tree.body or tree.root
        words = (node.text(separator=" ") if node is not None else "").split()
        cur: list[str] = []
        size = 0
        for w in words:
            cur.append(w)
            size += len(w) + 1
            if size >= chars:
                chunks.append(" ".join(cur))
                cur, size = [], 0
        if size >= chars // 2:
            chunks.append(" ".join(cur))
    return chunks


# --------------------------------------------------------------------------------------------------
# Part 1: signatures
# --------------------------------------------------------------------------------------------------


def python_shingles(text: str) -> list[str]:
    """Word 5-grams as strings (lowercase, ``\\w+``); a short text is one shingle of all its words."""
    words = _WORD.findall(text.lower())
    if len(words) < NGRAM:
        return [" ".join(words)] if words else []
    return [" ".join(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1)]


def loom_pass(texts: list[str], batch: int) -> float:
    from pipeline.dedup.minhash import signatures

    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        sigs, _ = signatures(pa.array(texts[i : i + batch], pa.large_string()), NGRAM, NUM_PERM, SEED)
        assert sigs.shape == (len(texts[i : i + batch]), NUM_PERM)
    return time.perf_counter() - start


def datasketch_pass(texts: list[str]) -> float:
    from datasketch import MinHash

    template = MinHash(num_perm=NUM_PERM, seed=SEED)
    start = time.perf_counter()
    for text in texts:
        m = MinHash(NUM_PERM, SEED, permutations=template.permutations, scheme=template.scheme)
        m.update_batch([s.encode("utf-8") for s in python_shingles(text)])
        m.digest()
    return time.perf_counter() - start


def rensa_pass(texts: list[str], batch: int) -> float:
    import rensa

    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        token_sets = [python_shingles(t) for t in texts[i : i + batch]]
        matrix = rensa.RMinHash.digest_matrix_from_token_sets(token_sets, NUM_PERM, SEED)
        assert matrix.len() == len(token_sets)
    return time.perf_counter() - start


def signature_figures(chunks: list[str], args: argparse.Namespace) -> dict[str, Any]:
    texts = list(itertools.islice(itertools.cycle(chunks), args.docs))
    ds_texts = texts[: args.datasketch_docs]
    rensa_texts = texts[: args.rensa_docs] if args.rensa_docs else texts
    log.info(
        "part 1: %d documents of %.0f characters on average (%d distinct chunks); datasketch on %d, "
        "rensa on %d; batches of %d; best of %d runs",
        len(texts),
        sum(map(len, texts)) / len(texts),
        len(chunks),
        len(ds_texts),
        len(rensa_texts),
        args.batch,
        args.reps,
    )
    contenders: dict[str, tuple[Callable[[], float], int]] = {
        "loom": (lambda: loom_pass(texts, args.batch), len(texts)),
        "datasketch": (lambda: datasketch_pass(ds_texts), len(ds_texts)),
        "rensa": (lambda: rensa_pass(rensa_texts, args.batch), len(rensa_texts)),
    }
    t0 = time.perf_counter()
    loom_pass(texts[:100], args.batch)  # warm-up: numba loads its cached kernel (or compiles it)
    log.info("loom warm-up (numba) %.2fs", time.perf_counter() - t0)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for rep in range(args.reps):
        for name, (run, n) in contenders.items():
            dt = run()
            times[name].append(dt)
            log.info("run %d %-10s %6d docs %7.2fs %9.1f docs/s", rep + 1, name, n, dt, n / dt)
    result: dict[str, Any] = {
        "docs": len(texts),
        "doc_chars": round(sum(map(len, texts)) / len(texts)),
        "batch": args.batch,
        "reps": args.reps,
    }
    for name, (_, n) in contenders.items():
        result[f"{name}_docs_s"] = round(n / min(times[name]), 1)
    result["datasketch_docs"] = len(ds_texts)
    result["rensa_docs"] = len(rensa_texts)
    result["ratio_vs_datasketch"] = round(result["loom_docs_s"] / result["datasketch_docs_s"], 2)
    result["ratio_vs_rensa"] = round(result["loom_docs_s"] / result["rensa_docs_s"], 2)
    return result


# --------------------------------------------------------------------------------------------------
# Part 2: synthetic corpus
# --------------------------------------------------------------------------------------------------

NEAR, EXACT = 1, 2  # roles of a document (0: an original)
_SALT_ROLE, _SALT_SOURCE, _SALT_POS, _SALT_WORD = 0x51, 0x52, 0x53, 0x54
CRAWL_START = 1_700_000_000  # crawl date of document g: this + g seconds (a copy is later than its source)
#: Words of the stream: letters and digits below U+2E80. Han and kana characters are each a word of
#: their own for Loom, so one unspaced CJK run would give dozens of shingles that every document
#: drawing it shares (spurious near-duplicates), and one replaced run would change dozens.
_STREAM_WORD = re.compile(r"[^\W_]+")


def word_stream(chunks: list[str]) -> list[str]:
    """The real text as a stream of words, in order and with their real frequencies."""
    return [w for w in _STREAM_WORD.findall(" ".join(chunks)) if max(w) < "\u2e80"]


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 elementwise: a deterministic hash of the document index (no RNG state to share)."""
    with np.errstate(over="ignore"):
        x = np.asarray(x, np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _salted(g: np.ndarray, salt: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        return mix64(np.asarray(g, np.uint64) * np.uint64(0x100) + np.uint64(salt))


def roles(n: int) -> np.ndarray:
    """The role of every document: ~10 % near copies, ~5 % exact copies, the rest originals (and the
    first document, which has no earlier one to copy). Document g's role depends on g alone, so the
    first n documents of a larger corpus are the corpus of n documents."""
    r = _salted(np.arange(n), _SALT_ROLE) % np.uint64(1000)
    out = np.where(r < 100, NEAR, np.where(r < 150, EXACT, 0)).astype(np.int8)
    out[0] = 0
    return out


def sources_of(g: np.ndarray, role: np.ndarray) -> np.ndarray:
    """The original each document copies (itself for an original): one of the originals before it."""
    originals = np.flatnonzero(role == 0)
    before = np.searchsorted(originals, g)  # originals with a smaller index (>= 1 for a copy)
    pick = originals[_salted(g, _SALT_SOURCE) % np.maximum(before, 1).astype(np.uint64)]
    return np.where(role[g] == 0, g, pick)


def word_indices(g: np.ndarray, n_words: int, n_stream: int) -> np.ndarray:
    """The words (indices into the word stream) of original ``g``: one row per document."""
    with np.errstate(over="ignore"):
        cells = g.astype(np.uint64)[:, None] * np.uint64(n_words) + np.arange(n_words, dtype=np.uint64)
        return (mix64(cells) % np.uint64(n_stream)).astype(np.int64)


def doc_url(g: int) -> str:
    return f"https://site{g % 9973}.example/doc/{g}"


def corpus_part(
    index: int, part_docs: int, total: int, stream: np.ndarray, n_words: int, changes: int
) -> pa.Table:
    """Documents part ``index`` of the corpus (``stream``: an object array of words): documents
    ``index * part_docs`` up to the next part's first (or ``total``)."""
    from pipeline.schema import DOC_SCHEMA, IMAGE_TYPE, META_TYPE, doc_id

    role = roles(total)
    g = np.arange(index * part_docs, min(total, (index + 1) * part_docs), dtype=np.int64)
    words = word_indices(sources_of(g, role), n_words, len(stream))
    near = np.flatnonzero(role[g] == NEAR)
    for k in range(changes):  # a near copy: `changes` words of its source replaced
        pos = (_salted(g[near] * changes + k, _SALT_POS) % np.uint64(n_words)).astype(np.int64)
        new = (_salted(g[near] * changes + k, _SALT_WORD) % np.uint64(len(stream))).astype(np.int64)
        words[near, pos] = new
    n = len(g)
    urls = [doc_url(x) for x in g.tolist()]
    dates = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(CRAWL_START + x)) for x in g.tolist()]
    one_each = pa.array(np.arange(n + 1, dtype=np.int32))
    meta = [pa.array(dates, f.type) if f.name == "crawl_date" else pa.nulls(n, f.type) for f in META_TYPE]
    columns = {
        "id": pa.array([doc_id("bench", u, f"{index}:{i}") for i, u in enumerate(urls)]),
        "source": pa.array(["bench"] * n),
        "kind": pa.array(["text"] * n),
        "url": pa.array(urls),
        "texts": pa.ListArray.from_arrays(one_each, pa.array([" ".join(stream[row]) for row in words])),
        "images": pa.ListArray.from_arrays(one_each, pa.nulls(n, IMAGE_TYPE)),
        "meta": pa.StructArray.from_arrays(meta, fields=list(META_TYPE)),
    }
    return pa.table(columns).cast(DOC_SCHEMA)


def planted(total: int) -> dict[str, set[str]]:
    """The URLs of the planted copies, by the reason they should be removed for."""
    role = roles(total)
    return {
        reason: {doc_url(g) for g in np.flatnonzero(role == r).tolist()}
        for reason, r in (("minhash", NEAR), ("exact_text", EXACT))
    }


_GEN: dict[str, Any] = {}


def _gen_init(
    out: str, docs: str, stream: list[str], n_words: int, total: int, part_docs: int, changes: int
) -> None:
    """``docs``: the path pattern of a documents part (``Data.pattern``: ``{part}`` in it)."""
    from pipeline.storage import Storage

    _GEN.update(
        storage=Storage(out),
        docs=docs,
        stream=np.array(stream, dtype=object),
        n_words=n_words,
        total=total,
        part_docs=part_docs,
        changes=changes,
    )


def _gen_part(job: tuple[int, str]) -> int:
    index, name = job
    g = _GEN
    table = corpus_part(index, g["part_docs"], g["total"], g["stream"], g["n_words"], g["changes"])
    g["storage"].write_parquet(g["docs"].format(part=name), table)
    return table.num_rows


def write_corpus(
    out: str, names: list[str], total: int, args: argparse.Namespace, stream: list[str], n_words: int
) -> None:
    """Documents parts ``names`` of the corpus of ``total`` documents, under ``out``, by 2 processes."""
    from pipeline.documents import DOCUMENTS

    ctx = multiprocessing.get_context("spawn")
    docs = dedup_job(out, names)[2][DOCUMENTS]["documents"]
    init = (out, docs.pattern, stream, n_words, total, args.part_docs, args.changes)
    with ctx.Pool(min(2, len(names), os.cpu_count() or 1), _gen_init, init) as pool:
        written = sum(pool.imap_unordered(_gen_part, list(enumerate(names))))
    assert written == min(total, len(names) * args.part_docs), (written, total)


# --------------------------------------------------------------------------------------------------
# Part 2: the dedup steps on local Ray
# --------------------------------------------------------------------------------------------------


def _ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _peak_rss_mb() -> float:
    """This process's peak resident memory: ``VmHWM``, which unlike ``ru_maxrss`` does not carry the
    peak of the parent process that started it (Linux keeps ``ru_maxrss`` across ``exec``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _ru_maxrss_mb()


def dedup_spec(out: str) -> Any:
    """The job spec of the runs: one WARC source, dedup on, every other optional step off."""
    from jobs.spec import parse_job

    return parse_job(
        {
            "output": out,
            "sources": [{"paths": ["/nonexistent"]}],
            "images": {"fetch": False},
            "filters": {"enabled": False},  # dedup alone
            "tokenizer": {"enabled": False},
            "dedup": {},
        }
    )


def part_names(total: int, part_docs: int) -> list[str]:
    src = dedup_spec("/x").sources[0].name
    return [f"{src}-{j:05d}" for j in range(-(-total // part_docs))]


def dedup_job(out: str, names: list[str]) -> tuple[Any, list[Any], Any]:
    """(storage, documents parts, step graph) of the dedup job on the documents parts ``names``
    under ``out``: the graph as ``loom run`` builds it (``jobs.graph.build_graph``)."""
    from jobs.graph import build_graph
    from pipeline.runner import Part
    from pipeline.storage import Storage

    spec = dedup_spec(out)
    storage = Storage(spec.output)
    parts = [Part(name, {"source": 0, "path": f"/nonexistent/{name}.warc.gz"}) for name in names]
    return storage, parts, build_graph(spec, storage, parts, {})


def run_dedup(
    total: int, corpus: str, session: Any, tmp: str, args: argparse.Namespace, stream: list[str], n_words: int
) -> tuple[dict[str, Any], str]:
    """Run the dedup steps on the first ``total`` documents of the corpus: the figures of this size
    and its output root (checked and removed once every size ran)."""
    from pipeline.dedup.apply import DedupStep
    from pipeline.dedup.components import BucketsStep, ComponentsStep, StarRound
    from pipeline.dedup.keys import DedupKeysStep
    from pipeline.documents import DOCUMENTS
    from pipeline.runner import PartStats, StepResult, marker_path

    out = tempfile.mkdtemp(prefix=f"run-{total}-", dir=tmp)
    names = part_names(total, args.part_docs)
    storage, parts, graph = dedup_job(out, names)
    docs = graph[DOCUMENTS]["documents"]
    # The first parts of the largest corpus are this corpus (hard links); a last, shorter part is written.
    os.makedirs(os.path.join(out, docs.folder), exist_ok=True)
    full = total // args.part_docs
    for name in names[:full]:
        os.link(os.path.join(corpus, docs.path(name)), os.path.join(out, docs.path(name)))
    if full < len(names):
        _gen_init(out, docs.pattern, stream, n_words, total, args.part_docs, args.changes)
        _gen_part((full, names[full]))

    # The dedup steps of the job's graph, run as jobs.run.run_job runs them.
    order = [step.name for step in graph.steps]
    steps = graph.steps[order.index(DedupKeysStep.name) : order.index(DedupStep.name) + 1]
    buckets = graph[BucketsStep.name]

    results: dict[str, StepResult] = {}
    start = time.perf_counter()
    for step in steps:
        graph.start(storage, step)
        res = step.run(ray=session)
        graph.finish(storage, step)
        log.info(
            "e2e %d: step %s %d rows in, %d out, %d parts, %.1fs, worker peak %.0f MB",
            total,
            res.name,
            res.stats.rows_in,
            res.stats.rows_out,
            res.parts,
            res.wall_seconds,
            res.stats.peak_rss_mb,
        )
        results[res.name] = res
    total_s = time.perf_counter() - start
    driver_rss_mb = _peak_rss_mb()

    step_figures: dict[str, Any] = {}
    for name, res in results.items():
        step_figures[name] = {
            "wall_s": round(res.wall_seconds, 2),
            "parts_s": round(res.stats.seconds, 2),
            "parts": res.parts,
            "rows_in": res.stats.rows_in,
            "rows_out": res.stats.rows_out,
            "peak_rss_mb": round(res.stats.peak_rss_mb, 1),
        }
    # ComponentsStep's merged stats carry no peak_rss_mb: read it from each round's part markers.
    comp = results[ComponentsStep.name]
    rounds = comp.stats.extra.get("rounds", 0)
    round_peaks = []
    for index in range(rounds):
        rnd = StarRound(storage, index, index % 2 == 0, [], buckets.n)
        stats = [PartStats.from_json(storage.read_json(marker_path(rnd.name, p.name))) for p in rnd.parts()]
        round_peaks.append(round(max((s.peak_rss_mb for s in stats), default=0.0), 1))
    step_figures[ComponentsStep.name] |= {"rounds": rounds, "round_peak_rss_mb": round_peaks}
    step_figures[ComponentsStep.name]["peak_rss_mb"] = max([0.0, *round_peaks])

    keys_extra = results[DedupKeysStep.name].stats.extra
    figures = {
        "docs": total,
        "parts": len(parts),
        "part_docs": args.part_docs,
        "partitions": buckets.n,
        "steps": step_figures,
        "total_s": round(total_s, 2),
        "docs_s": round(total / total_s, 1),
        "keys_signature_s": round(keys_extra.get("signature_seconds", 0.0), 2),
        "removed": dict(sorted(Counter(results[DedupStep.name].stats.drops).items())),
        "worker_peak_rss_mb": max(s["peak_rss_mb"] for s in step_figures.values()),
        "driver_rss_mb": round(driver_rss_mb, 1),
        "driver_ru_maxrss_mb": round(_ru_maxrss_mb(), 1),
        "output_mb": round(sum(f.stat().st_size for f in Path(out).rglob("*") if f.is_file()) / 1e6, 1),
    }
    log.info(
        "e2e %d: %.1fs, %.0f docs/s, removed %s, worker peak %.0f MB, driver %.0f MB",
        total,
        figures["total_s"],
        figures["docs_s"],
        figures["removed"],
        figures["worker_peak_rss_mb"],
        figures["driver_rss_mb"],
    )
    return figures, out


def check_removed(total: int, out: str) -> dict[str, Any]:
    """The dedup ledger of one size against the planted copies (run after every size: the sets of
    URLs held here must not show in the driver's memory figures)."""
    from pipeline.dedup.apply import removed_ids
    from pipeline.storage import Storage

    ledger = removed_ids(Storage(out))
    by_url = dict(zip(ledger["url"].to_pylist(), ledger["reason"].to_pylist(), strict=True))
    want = planted(total)
    expected = set().union(*want.values())
    check = {
        "planted": {reason: len(urls) for reason, urls in sorted(want.items())},
        "missed": len(expected - by_url.keys()),
        "wrongly_removed": len(by_url.keys() - expected),
        "wrong_reason": sum(
            1 for reason, urls in want.items() for u in urls if u in by_url and by_url[u] != reason
        ),
        "ledger_rows": ledger.num_rows,
    }
    log.info("e2e %d: ledger vs planted copies: %s", total, check)
    return check


def run_sizes(
    args: argparse.Namespace, corpus: str, tmp: str, stream: list[str], n_words: int
) -> dict[str, Any]:
    """Every size, smallest first, on one local Ray (in the child process: a clean driver)."""
    from jobs.run import RaySession

    session = RaySession(dedup_spec(tmp), None)
    out: dict[str, Any] = {}
    try:
        t0 = time.perf_counter()
        out["cpus"] = session.parallelism()  # starts local Ray (not timed)
        out["ray_start_s"] = round(time.perf_counter() - t0, 1)
        out["driver_rss_mb_before"] = round(_peak_rss_mb(), 1)
        roots = {}
        for total in sorted(args.sizes):
            out[str(total)], roots[total] = run_dedup(total, corpus, session, tmp, args, stream, n_words)
    finally:
        session.close()
    for total, root in roots.items():
        out[str(total)] |= check_removed(total, root)
        shutil.rmtree(root, ignore_errors=True)
    return out


def dedup_figures(chunks: list[str], args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    """Write the largest corpus once (smaller sizes are its first parts), then run every size in a
    child process."""
    stream = word_stream(chunks)
    n_words = max(NGRAM, round(CHUNK_CHARS / (sum(len(w) + 1 for w in stream) / len(stream))))
    largest = max(args.sizes)
    corpus = os.path.join(tmp, "corpus")
    t0 = time.perf_counter()
    write_corpus(corpus, part_names(largest, args.part_docs), largest, args, stream, n_words)
    gen_s = time.perf_counter() - t0
    log.info(
        "part 2: %d documents of %d words (drawn from a stream of %d real words), parts of %d, "
        "written in %.1fs (not timed)",
        largest,
        n_words,
        len(stream),
        args.part_docs,
        gen_s,
    )
    out = in_child(run_sizes, args, corpus, tmp, stream, n_words)
    if "error" in out:
        log.error("e2e: %s", out["error"])
    return {"gen_s": round(gen_s, 1), "doc_words": n_words, **out}


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (under a minute)")
    ap.add_argument("--docs", type=int, default=None, help="part 1 documents (default 20000, quick 5000)")
    ap.add_argument("--batch", type=int, default=5000, help="part 1: documents per Loom / rensa call")
    ap.add_argument("--datasketch-docs", type=int, default=None, help="default 1000, quick 300")
    ap.add_argument("--rensa-docs", type=int, default=None, help="default all, quick 2000")
    ap.add_argument("--reps", type=int, default=3, help="part 1 runs per contender (best counts)")
    ap.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=None,
        help="part 2 corpus sizes, comma-separated (default 250000,1000000; quick 20000; '' skips)",
    )
    ap.add_argument(
        "--part-docs", type=int, default=None, help="documents per part (default 25000, quick 5000)"
    )
    ap.add_argument("--changes", type=int, default=3, help="words replaced in a near-duplicate")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    args.docs = args.docs or (5000 if args.quick else 20000)
    args.datasketch_docs = args.datasketch_docs or (300 if args.quick else 1000)
    args.rensa_docs = args.rensa_docs or (2000 if args.quick else None)
    args.sizes = args.sizes if args.sizes is not None else ([20000] if args.quick else [250000, 1000000])
    args.part_docs = args.part_docs or (5000 if args.quick else 25000)

    chunks = load_chunks(args.data_dir / PAGES)
    if not chunks:
        log.warning(
            "no test pages under %s (see ../shared/data/README.md): benchmark skipped", args.data_dir / PAGES
        )
        print(json.dumps({"bench": "minhash", "skipped": f"no test pages under {args.data_dir / PAGES}"}))
        return 0
    start = time.perf_counter()
    result: dict[str, Any] = {"bench": "minhash", "load_avg_start": [round(x, 2) for x in os.getloadavg()]}
    result |= signature_figures(chunks, args)
    log.info(
        "signatures per core: loom %.0f, datasketch %.0f, rensa %.0f docs/s (x%.1f, x%.2f)",
        result["loom_docs_s"],
        result["datasketch_docs_s"],
        result["rensa_docs_s"],
        result["ratio_vs_datasketch"],
        result["ratio_vs_rensa"],
    )
    if args.sizes:
        with tempfile.TemporaryDirectory(prefix="loom-bench-minhash-") as tmp:
            result["e2e"] = dedup_figures(chunks, args, tmp)
        for size in sorted(args.sizes):
            f = result["e2e"].get(str(size), {})
            if f:
                log.info(
                    "e2e %d: %.0f docs/s, worker peak %.0f MB", size, f["docs_s"], f["worker_peak_rss_mb"]
                )
    result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result))
    return 1 if "error" in result.get("e2e", {}) else 0


if __name__ == "__main__":
    sys.exit(main())
