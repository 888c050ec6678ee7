"""Benchmark: Loom's ``extract_html`` vs bare resiliparse vs trafilatura on real article pages.

    .venv/bin/python bench/extract_bench.py [--quick] [--reps N] [--pages-dir DIR]

Pages: the 130 Mozilla Readability test pages (``../shared/data/html/readability/test-pages``);
ground truth is each page's ``expected.html`` (Readability's main content).

Every extractor gets the same input, the raw ``source.html`` bytes, and its time includes the
charset decode Loom's WARC path does (resiliparse ``detect_encoding`` + ``bytes_to_str``):

* loom        — decode, then ``extract_html(html, BASE_URL, ExtractConfig())``;
* resiliparse — decode, then ``extract_plain_text(HTMLTree.parse(html), main_content=True)``;
* trafilatura — decode, then ``trafilatura.extract(html)`` (what datatrove / FineWeb run).

Speed: each extractor does ``reps`` full passes over all pages, interleaved with the others so
that background load hits all of them alike; docs/s is from the fastest pass (the least
disturbed), the median pass is printed too.

Quality: token-level precision / recall / F1 of the extracted text against the text of
``expected.html``, macro-averaged over pages. Tokenizer: lowercase, ``\\w+`` (Unicode word
characters), compared as bags (multisets): overlap = Σ_token min(count_pred, count_gold).
For Loom, images are also checked: the image URLs it extracts are matched, in order (longest
common subsequence), against the images of ``expected.html`` that Loom's rules allow (a usable
non-data URL and no declared side below ``min_image_side``); an expected image matches when the
URL equals its src, any srcset candidate or any URL-valued lazy-load attribute.

The helpers below (``load_pages``, ``gold_text``, ``token_prf``, ``expected_images``,
``ordered_matches``, …) are also used by ``tests/pipeline/test_extract.py``.
The last line printed is one JSON object with all figures.
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
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages, not another's

from pipeline.config import ExtractConfig
from pipeline.extract import Extraction, ImageRef, _best_from_srcset, _declared_too_small, extract_html

ROOT = Path(__file__).resolve().parents[1]
PAGES_DIR = ROOT / ".." / "shared" / "data" / "html" / "readability" / "test-pages"
#: The page URL Readability's test-suite resolves relative links against.
BASE_URL = "http://fakehost/test/page.html"
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Page:
    name: str
    source: bytes  # raw source.html
    expected: str  # expected.html (Readability output)


def load_pages(pages_dir: Path = PAGES_DIR) -> list[Page]:
    """All test pages, sorted by name; empty when the data folder is absent."""
    if not pages_dir.is_dir():
        return []
    pages = []
    for d in sorted(p for p in pages_dir.iterdir() if (p / "source.html").is_file()):
        expected = (d / "expected.html").read_text(encoding="utf-8", errors="replace")
        pages.append(Page(d.name, (d / "source.html").read_bytes(), expected))
    return pages


# --------------------------------------------------------------------------------------------------
# Quality measures
# --------------------------------------------------------------------------------------------------


def decode(data: bytes) -> str:
    """Bytes → str the way Loom's WARC path does it."""
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    return bytes_to_str(data, detect_encoding(data))


_BLOCK_TAG = re.compile(
    r"(</?(?:p|div|section|article|li|ul|ol|dl|dt|dd|h[1-6]|br|hr|tr|td|th|table|pre|blockquote"
    r"|figure|figcaption|header|footer|aside|nav|main|details|summary|caption|address)\b)",
    re.IGNORECASE,
)


def gold_text(expected_html: str) -> str:
    """The text of Readability's expected.html.

    A space goes before every block-level tag, and inline boundaries add nothing, so that
    "<p>a</p><p>b</p>" gives two words and a drop cap "<span>Z</span>imbabwe" gives one.
    """
    tree = LexborHTMLParser(_BLOCK_TAG.sub(r" \1", expected_html))
    node = tree.body or tree.root
    return node.text(separator="") if node is not None else ""


def loom_text(extraction: Extraction) -> str:
    return "\n".join(n for n in extraction.nodes if isinstance(n, str))


def tokens(text: str) -> Counter:
    """Lowercase ``\\w+`` tokens as a bag."""
    return Counter(_WORD.findall(text.lower()))


def token_prf(pred: str, gold: str) -> tuple[float, float, float]:
    """Bag-of-tokens precision, recall and F1 of ``pred`` against ``gold``.

    Empty vs empty is a perfect score; empty vs non-empty scores 0.
    """
    p_tok, g_tok = tokens(pred), tokens(gold)
    n_pred, n_gold = sum(p_tok.values()), sum(g_tok.values())
    if not n_pred or not n_gold:
        same = float(n_pred == n_gold)
        return same, same, same
    overlap = sum((p_tok & g_tok).values())
    p, r = overlap / n_pred, overlap / n_gold
    return p, r, (2 * p * r / (p + r) if overlap else 0.0)


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


def _extractors(config: ExtractConfig) -> dict[str, Callable[[bytes], str]]:
    import trafilatura
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    def loom(data: bytes) -> str:
        return loom_text(extract_html(decode(data), BASE_URL, config))

    def resiliparse(data: bytes) -> str:
        return extract_plain_text(HTMLTree.parse(decode(data)), main_content=True)

    def trafilatura_(data: bytes) -> str:
        return trafilatura.extract(decode(data)) or ""

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
            rec.headers["WARC-Target-URI"] = BASE_URL
            rec.headers["Content-Type"] = "application/http; msgtype=response"
            head = f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(page.source)}\r\n\r\n"
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


def _timed_pass(fn: Callable[[bytes], str], pages: list[Page]) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    out = [fn(p.source) for p in pages]
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="fewer passes (under a minute)")
    ap.add_argument("--reps", type=int, default=None, help="timed passes per fast extractor")
    ap.add_argument("--pages-dir", type=Path, default=PAGES_DIR)
    ap.add_argument("--per-page", action="store_true", help="print per-page F1 of every extractor")
    args = ap.parse_args(argv)
    import logging

    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)

    pages = load_pages(args.pages_dir)
    if not pages:
        print(f"no test pages under {args.pages_dir} (see ../shared/data/README.md)", file=sys.stderr)
        print(json.dumps({"bench": "extract", "skipped": "no test data"}))
        return 0
    config = ExtractConfig()
    reps = args.reps or (3 if args.quick else 10)
    slow_reps = 1 if args.quick else 5
    extractors = _extractors(config)
    times: dict[str, list[float]] = {name: [] for name in extractors}
    texts: dict[str, list[str]] = {}
    tmp = tempfile.TemporaryDirectory()
    warc = Path(tmp.name) / "pages.warc.gz"
    write_warc(pages, warc)
    warc_times: list[float] = []
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
        # The whole WARC → document path (WARC parsing, HTTP decoding, charset, extraction, records),
        # timed in the same rounds so background load hits it like the others.
        dt, docs = warc_pass(warc, config)
        assert docs == len(pages), f"{docs} documents from {len(pages)} pages"
        warc_times.append(dt)
    tmp.cleanup()

    golds = [gold_text(p.expected) for p in pages]
    result: dict[str, object] = {"bench": "extract", "pages": len(pages), "reps": reps}
    print(f"{len(pages)} pages, {sum(len(p.source) for p in pages) / 1e6:.1f} MB of HTML")
    print(f"{'extractor':<12} {'docs/s':>8} {'median':>8} {'P':>6} {'R':>6} {'F1':>6}")
    for name in extractors:
        best = len(pages) / min(times[name])
        median = len(pages) / statistics.median(times[name])
        prf = [token_prf(t, g) for t, g in zip(texts[name], golds, strict=True)]
        p, r, f = (sum(x[k] for x in prf) / len(prf) for k in range(3))
        print(f"{name:<12} {best:8.1f} {median:8.1f} {p:6.3f} {r:6.3f} {f:6.3f}")
        result |= {
            f"{name}_docs_s": round(best, 1),
            f"{name}_precision": round(p, 4),
            f"{name}_recall": round(r, 4),
            f"{name}_f1": round(f, 4),
        }
        if args.per_page:
            for page, (pp, rr, ff) in zip(pages, prf, strict=True):
                print(f"   {name:<12} {page.name:<40} P={pp:.3f} R={rr:.3f} F1={ff:.3f}")
    result["ratio_vs_trafilatura"] = round(result["loom_docs_s"] / result["trafilatura_docs_s"], 2)
    result["ratio_vs_resiliparse"] = round(result["loom_docs_s"] / result["resiliparse_docs_s"], 2)

    result["loom_warc_docs_s"] = round(len(pages) / min(warc_times), 1)
    result["warc_ratio_vs_trafilatura"] = round(result["loom_warc_docs_s"] / result["trafilatura_docs_s"], 2)
    result["warc_ratio_vs_resiliparse"] = round(result["loom_warc_docs_s"] / result["resiliparse_docs_s"], 2)
    print(f"{'loom (WARC)':<12} {result['loom_warc_docs_s']:8.1f}   (read_archive + HtmlToDocuments stage)")

    # Images in reading order (Loom only: the others return plain text).
    found = total = extracted = correct = 0
    for page in pages:
        want = expected_images(page.expected, config)
        got = image_urls(extract_html(decode(page.source), BASE_URL, config))
        extracted += len(got)
        all_expected = set().union(*want) if want else set()
        correct += sum(1 for u in got if u in all_expected)
        if want:
            m = ordered_matches(got, want)
            found, total = found + m, total + len(want)
            print(
                f"   images {page.name:<36} expected {len(want):3d}  in order {m:3d}  extracted {len(got):3d}"
            )
    result["loom_images_in_order"] = round(found / total, 4) if total else None
    result["loom_images_precision"] = round(correct / extracted, 4) if extracted else None
    print(
        f"images: {found}/{total} expected images found in order; "
        f"{correct}/{extracted} extracted are expected"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
