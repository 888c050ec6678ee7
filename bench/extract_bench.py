"""Benchmark: Loom's ``extract_html`` vs bare resiliparse vs trafilatura, quality per development set.

    .venv/bin/python bench/extract_bench.py [--quick] [--reps N] [--per-page] [--sets NAME ...]

The development sets (``bench/extract_sets.py``, all real pages from ``../shared/data``):

* ``readability`` — 130 Mozilla Readability test pages, gold ``expected.html`` (tuned on);
* ``articles`` — 181 news/article pages of the article-extraction benchmark, gold ``articleBody``;
* ``warc`` — pages of the real WARC captures, hand-labelled with main-text and boilerplate snippets.

Each set is split into a dev part (tuned on) and a held-out part (one page in three, by a hash of its
name); figures are printed for both, and the JSON line has ``<extractor>_<set>[_heldout]_{p,r,f1}``.

Every extractor gets the same input, the raw bytes, and its time includes the charset decode Loom's
WARC path does (``pipeline.sources.commoncrawl.decode_html``: HTTP charset, ``<meta>``, detection):

* loom        — decode, then ``extract_html(html, url, ExtractConfig())``;
* resiliparse — decode, then ``extract_plain_text(HTMLTree.parse(html), main_content=True)``;
* trafilatura — decode, then ``trafilatura.extract(html)`` (what datatrove / FineWeb run).

Speed is measured on all pages of all sets: each extractor does ``reps`` passes, interleaved with the
others so that background load hits all of them alike; docs/s is from the fastest pass (the least
disturbed). The whole WARC → document path (the pages written as a gzipped WARC, ``read_archive``,
the ``HtmlToDocuments`` stage) is timed in the same rounds: ``loom_warc_docs_s`` and its ratio to
trafilatura are the speed goal (≥ 10×).

Images (Loom only; the others return plain text): the image URLs Loom extracts from the Readability
pages are matched, in order (longest common subsequence), against the images of ``expected.html``
that Loom's rules allow (a usable non-data URL and no declared side below ``min_image_side``); an
expected image matches when the URL equals its src, any srcset candidate or any URL-valued lazy-load
attribute. The last line printed is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages, not another's
sys.path.insert(0, str(Path(__file__).resolve().parent))  # extract_sets

from extract_sets import (  # noqa: E402
    READABILITY_URL,
    DevSet,
    Page,
    decode,
    gold_text,
    load_all,
    load_readability,
    score,
    token_prf,
)

from pipeline.config import ExtractConfig  # noqa: E402
from pipeline.extract import Extraction, ImageRef, _best_from_srcset, _declared_too_small, extract_html  # noqa: E402

BASE_URL = READABILITY_URL
#: Shared with tests/pipeline/extract (they score the way the bench does).
__all__ = ["gold_text", "load_readability", "token_prf"]


def loom_text(extraction: Extraction) -> str:
    return "\n".join(n for n in extraction.nodes if isinstance(n, str))


def _url_set(attrs: dict, base: str) -> set[str]:
    """Every URL an <img> may be known by: src, all srcset candidates, URL-valued data-* values."""
    urls: set[str] = set()
    for key, value in attrs.items():
        if not value or value.lstrip().startswith("data:"):
            continue
        value = value.strip()
        if "srcset" in key:
            candidates = [c.strip().split()[0] for c in re.split(r",\s+", value) if c.strip()]
            candidates.append(_best_from_srcset(value) or "")
        elif key == "src" or (key.startswith("data") and "/" in value and len(value.split()) == 1):
            candidates = [value]
        else:
            continue
        for c in candidates:
            if c and not c.startswith("data:"):
                try:
                    urls.add(urljoin(base, c))
                except ValueError:
                    pass
    return urls


def expected_images(expected_html: str, config: ExtractConfig, base: str = BASE_URL) -> list[set[str]]:
    """Images of expected.html that Loom's rules allow, each as its set of URLs, in order.

    A repeat of an earlier image (a shared URL) is left out: Loom keeps one copy of an image.
    """
    out: list[set[str]] = []
    seen: set[str] = set()
    for img in LexborHTMLParser(expected_html).css("img"):
        attrs = img.attributes
        if _declared_too_small(attrs, config.min_image_side):
            continue
        urls = _url_set(attrs, base)
        if urls and not urls & seen:
            out.append(urls)
        seen |= urls
    return out


def ordered_matches(got: list[str], expected: list[set[str]]) -> int:
    """Length of the longest common subsequence of extracted URLs and expected images."""
    if not got or not expected:
        return 0
    prev = [0] * (len(expected) + 1)
    for url in got:
        cur = [0]
        for j, urls in enumerate(expected):
            cur.append(prev[j] + 1 if url in urls else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def image_urls(extraction: Extraction) -> list[str]:
    return [n.url for n in extraction.nodes if isinstance(n, ImageRef)]


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


def _extractors(config: ExtractConfig) -> dict[str, Callable[[Page], str]]:
    import trafilatura
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    def loom(page: Page) -> str:
        return loom_text(extract_html(decode(page), page.url, config))

    def resiliparse(page: Page) -> str:
        return extract_plain_text(HTMLTree.parse(decode(page)), main_content=True)

    def trafilatura_(page: Page) -> str:
        return trafilatura.extract(decode(page)) or ""

    return {"loom": loom, "resiliparse": resiliparse, "trafilatura": trafilatura_}


def write_warc(pages: list[Page], path: Path) -> None:
    """The pages as HTTP 200 response records of a gzipped WARC, one gzip member per record."""
    from fastwarc.stream_io import GzipWriter
    from fastwarc.warc import WarcRecord, WarcRecordType

    with open(path, "wb") as fh:
        writer = GzipWriter(fh)
        for i, page in enumerate(pages):
            rec = WarcRecord()
            rec.init_headers(WarcRecordType.response, f"urn:uuid:00000000-0000-0000-0000-{i:012d}".encode())
            rec.headers["WARC-Target-URI"] = page.url or BASE_URL
            rec.headers["Content-Type"] = "application/http; msgtype=response"
            ctype = f"text/html; charset={page.http_charset}" if page.http_charset else "text/html"
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(page.source)}\r\n\r\n"
            rec.set_bytes_content(head.encode() + page.source)
            rec.write(writer)
            writer.finish()
        writer.close()


def warc_pass(path: Path, config: ExtractConfig) -> tuple[float, int]:
    """Loom's WARC → document path: ``read_archive`` then the ``HtmlToDocuments`` stage in batches."""
    import itertools

    import pyarrow as pa

    from pipeline.sources.commoncrawl import RAW_SCHEMA, HtmlToDocuments, read_archive

    stage = HtmlToDocuments("bench", config)
    t0 = time.perf_counter()
    rows, docs = read_archive(str(path), config.max_page_bytes, Counter()), 0
    while batch := list(itertools.islice(rows, 256)):
        docs += stage(pa.Table.from_pylist(batch, schema=RAW_SCHEMA)).num_rows
    return time.perf_counter() - t0, docs


def _timed_pass(fn: Callable[[Page], str], pages: list[Page]) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    out = [fn(p) for p in pages]
    return time.perf_counter() - t0, out


def speed(pages: list[Page], config: ExtractConfig, reps: int, slow_reps: int) -> tuple[dict, dict]:
    """Timed passes over ``pages``: (docs/s per extractor and for the WARC path, texts per extractor)."""
    extractors = _extractors(config)
    times: dict[str, list[float]] = {name: [] for name in [*extractors, "loom_warc"]}
    texts: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        warc = Path(tmp) / "pages.warc.gz"
        write_warc(pages, warc)
        for fn in extractors.values():  # one untimed pass each: imports, caches, page cache
            _timed_pass(fn, pages[:20])
        warc_pass(warc, config)
        for rep in range(reps):
            for name, fn in extractors.items():
                if name == "trafilatura" and rep >= slow_reps:
                    continue
                dt, out = _timed_pass(fn, pages)
                times[name].append(dt)
                texts.setdefault(name, out)
            # The whole WARC → document path (WARC parsing, HTTP decoding, charset, extraction,
            # records), timed in the same rounds so background load hits it like the others.
            dt, docs = warc_pass(warc, config)
            assert docs == len(pages), f"{docs} documents from {len(pages)} pages"
            times["loom_warc"].append(dt)
    rates = {name: (len(pages) / min(t), len(pages) / statistics.median(t)) for name, t in times.items()}
    return rates, texts


def quality(sets: list[DevSet], texts: dict[str, list[str]], per_page: bool) -> dict[str, float]:
    """Per set, part and extractor: precision, recall, F1 (``texts`` follow the sets' pages in order)."""
    result: dict[str, float] = {}
    print(f"\n{'set':<22} {'pages':>5}  " + "  ".join(f"{n:>20}" for n in texts))
    print(f"{'':<22} {'':>5}  " + "  ".join(f"{'P':>6} {'R':>6} {'F1':>6}" for _ in texts))
    start = 0
    for dev_set in sets:
        mine = {name: out[start : start + len(dev_set.pages)] for name, out in texts.items()}
        start += len(dev_set.pages)
        for part, held in (("", False), ("_heldout", True)):
            chosen = [i for i, p in enumerate(dev_set.pages) if p.held_out == held]
            if not chosen:
                continue
            pages = [dev_set.pages[i] for i in chosen]
            row = []
            for name, out in mine.items():
                got = [out[i] for i in chosen]
                p, r, f = score(dev_set, pages, got)
                row.append(f"{p:6.3f} {r:6.3f} {f:6.3f}")
                key = f"{name}_{dev_set.name}{part}"
                result |= {f"{key}_p": round(p, 4), f"{key}_r": round(r, 4), f"{key}_f1": round(f, 4)}
                if per_page:
                    for page, text in zip(pages, got, strict=True):
                        pp, rr, ff = score(dev_set, [page], [text])
                        print(f"   {name:<12} {page.name[-60:]:<60} P={pp:.3f} R={rr:.3f} F1={ff:.3f}")
            label = f"{dev_set.name}{' held out' if held else ' dev'}"
            print(f"{label:<22} {len(pages):5d}  " + "  ".join(f"{x:>20}" for x in row))
    return result


def images(readability: DevSet, config: ExtractConfig) -> dict[str, float | None]:
    """Images in reading order on the Readability pages (Loom only)."""
    found = total = extracted = correct = 0
    for page in readability.pages:
        want = expected_images(page.expected_html, config)
        got = image_urls(extract_html(decode(page), BASE_URL, config))
        extracted += len(got)
        all_expected = set().union(*want) if want else set()
        correct += sum(1 for u in got if u in all_expected)
        if want:
            found, total = found + ordered_matches(got, want), total + len(want)
    print(f"images: {found}/{total} expected found in order; {correct}/{extracted} extracted are expected")
    return {
        "loom_images_in_order": round(found / total, 4) if total else None,
        "loom_images_precision": round(correct / extracted, 4) if extracted else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="fewer passes (under a minute)")
    ap.add_argument("--reps", type=int, default=None, help="timed passes per fast extractor")
    ap.add_argument("--sets", nargs="*", default=None, help="only these sets (readability articles warc)")
    ap.add_argument("--per-page", action="store_true", help="print per-page figures of every extractor")
    args = ap.parse_args(argv)
    import logging

    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)

    sets = [s for s in load_all() if s.pages and (not args.sets or s.name in args.sets)]
    if not sets:
        print("no development pages under ../shared/data (see ../shared/data/README.md)", file=sys.stderr)
        print(json.dumps({"bench": "extract", "skipped": "no test data"}))
        return 0
    config = ExtractConfig()
    pages = [p for s in sets for p in s.pages]
    reps = args.reps or (2 if args.quick else 6)
    rates, texts = speed(pages, config, reps, 1 if args.quick else 3)
    result: dict[str, object] = {"bench": "extract", "pages": len(pages), "reps": reps}
    result |= {f"{s.name}_pages": len(s.pages) for s in sets}
    print(f"{len(pages)} pages, {sum(len(p.source) for p in pages) / 1e6:.1f} MB of HTML")
    print(f"{'extractor':<12} {'docs/s':>8} {'median':>8}")
    for name, (best, median) in rates.items():
        print(f"{name:<12} {best:8.1f} {median:8.1f}")
        result[f"{name}_docs_s"] = round(best, 1)
    traf = rates["trafilatura"][0]
    result["ratio_vs_trafilatura"] = round(rates["loom"][0] / traf, 2)
    result["ratio_vs_resiliparse"] = round(rates["loom"][0] / rates["resiliparse"][0], 2)
    result["warc_ratio_vs_trafilatura"] = round(rates["loom_warc"][0] / traf, 2)
    result["warc_ratio_vs_resiliparse"] = round(rates["loom_warc"][0] / rates["resiliparse"][0], 2)
    result |= quality(sets, texts, args.per_page)
    readability = next((s for s in sets if s.name == "readability"), None)
    if readability is not None:
        result |= images(readability, config)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
