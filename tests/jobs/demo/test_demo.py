"""The demo corpus: a deterministic, Common Crawl-like WARC that matches its plan."""

from __future__ import annotations

import json
import struct
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import pytest
from fastwarc import ArchiveIterator, WarcRecordType
from selectolax.lexbor import LexborHTMLParser

from jobs.demo import (
    DEMO_BENCHMARK,
    DEMO_WARC_NAME,
    DOCUMENT_KINDS,
    MIN_PAGES,
    PNG_SIGNATURE,
    Kind,
    benchmark_id,
    build_demo_benchmark,
    build_demo_corpus,
    demo_plan,
    quoted_item,
)
from jobs.spec import load_job

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Record:
    type: str
    uri: str | None
    status: int | None
    content_type: str | None
    http_charset: str | None
    location: str | None
    payload_digest: str | None
    body: bytes


def read_records(path: Path) -> list[Record]:
    """Every record of a WARC, digests verified (fastwarc skips a record whose digest is missing or bad)."""
    records = []
    for rec in ArchiveIterator(str(path), verify_digests=True):
        http = rec.http_headers if rec.is_http else None
        records.append(
            Record(
                type=str(rec.record_type),
                uri=rec.headers.get("WARC-Target-URI"),
                status=http.status_code if http else None,
                content_type=http.get("Content-Type") if http else None,
                http_charset=rec.http_charset,
                location=http.get("Location") if http else None,
                payload_digest=rec.headers.get("WARC-Payload-Digest"),
                body=rec.reader.read(),
            )
        )
    return records


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, float]:
    started = time.perf_counter()
    path = build_demo_corpus(tmp_path_factory.mktemp("demo"))
    return path, time.perf_counter() - started


@pytest.fixture(scope="module")
def plan():
    return demo_plan()


@pytest.fixture(scope="module")
def responses(built) -> dict[str, Record]:
    return {r.uri: r for r in read_records(built[0]) if r.type == "response"}


def gzip_members(data: bytes) -> list[bytes]:
    members, pos = [], 0
    while pos < len(data):
        inflater = zlib.decompressobj(wbits=31)
        inflater.decompress(data[pos:])
        end = len(data) - len(inflater.unused_data)
        members.append(data[pos:end])
        pos = end
    return members


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, checking the signature and every chunk's CRC."""
    assert data[:8] == PNG_SIGNATURE
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(tag + body), tag
        chunks.append((tag, body))
        pos += 12 + length
    assert [t for t, _ in chunks][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    idat = zlib.decompress(b"".join(b for t, b in chunks if t == b"IDAT"))
    assert len(idat) == height * (1 + (width * depth + 7) // 8)  # a filter byte and packed pixels per row
    return width, height


# -- the file --------------------------------------------------------------------------------------


def test_the_same_pages_and_seed_give_the_same_bytes(tmp_path, built):
    again = build_demo_corpus(tmp_path / "again")
    assert again.name == DEMO_WARC_NAME
    assert again.read_bytes() == built[0].read_bytes()
    other = build_demo_corpus(tmp_path / "other", seed=1)
    assert other.read_bytes() != built[0].read_bytes()


def test_it_is_small(built):
    path, _ = built  # how fast it is built is no test's business (timed asserts flake under load)
    assert path.stat().st_size < 600_000


def test_each_record_is_its_own_gzip_member_without_a_timestamp(built, plan):
    members = gzip_members(built[0].read_bytes())
    assert len(members) == sum(plan.record_counts().values())
    assert all(m[:4] == b"\x1f\x8b\x08\x00" and m[4:8] == b"\x00\x00\x00\x00" for m in members)  # mtime 0


def test_fastwarc_reads_every_record_back(built, plan):
    records = read_records(built[0])
    assert Counter(r.type for r in records) == plan.record_counts()
    assert records[0].type == "warcinfo"
    pairs = list(zip(records[1::2], records[2::2], strict=True))
    assert all(req.type == "request" and resp.type == "response" for req, resp in pairs)
    assert all(req.uri == resp.uri for req, resp in pairs)
    assert [resp.uri for _, resp in pairs] == [c.url for c in plan.captures]


def test_request_and_response_are_linked_and_dated_like_common_crawl(built):
    wanted = WarcRecordType.request | WarcRecordType.response
    records = list(ArchiveIterator(str(built[0]), record_types=wanted))
    request, response = records[0], records[1]
    assert response.headers["WARC-Concurrent-To"] == request.record_id
    assert response.headers["WARC-Date"] == request.headers["WARC-Date"]
    assert response.headers["WARC-Date"].endswith("Z")
    assert response.headers["WARC-Payload-Digest"].startswith("sha1:")
    assert len({r.record_id for r in records}) == len(records)


# -- what the plan promised ------------------------------------------------------------------------


def test_the_mix_of_120_pages(plan):
    counts = plan.kind_counts()
    assert sum(n for k, n in counts.items() if k != Kind.IMAGE) == 120
    assert counts == {
        "article_with_images": 64,
        "article_text_only": 28,
        "latin1_http_charset": 6,
        "meta_charset_only": 4,
        "near_duplicate": 4,
        "exact_duplicate": 2,
        "http_404": 1,
        "http_301": 1,
        "non_html": 2,
        "empty_body": 1,
        "foreign_language": 1,
        "boilerplate": 1,
        "spam": 2,
        "contact_details": 1,
        "contaminated": 2,
        "image": counts["image"],
    }
    assert counts["image"] >= 20
    assert len(plan.documents()) == sum(counts[k] for k in DOCUMENT_KINDS)
    with_images = [c for c in plan.captures if c.kind != Kind.IMAGE and c.images]
    assert 0.55 <= len(with_images) / 120 <= 0.7


def test_statuses_and_content_types_match_the_plan(plan, responses):
    for capture in plan.captures:
        record = responses[capture.url]
        assert (record.status, record.content_type) == (capture.status, capture.content_type), capture.url
    assert Counter(r.status for r in responses.values()) == plan.status_counts()


def test_the_captures_to_drop(plan, responses):
    [redirect] = plan.by_kind(Kind.REDIRECT)
    assert responses[redirect.url].location == redirect.location
    assert redirect.location in responses  # it points at an article of the corpus
    [empty] = plan.by_kind(Kind.EMPTY)
    assert responses[empty.url].body == b"" and responses[empty.url].content_type.startswith("text/html")
    bodies = {c.content_type: responses[c.url].body for c in plan.by_kind(Kind.NON_HTML)}
    pdf = bodies["application/pdf"]
    assert pdf.startswith(b"%PDF-1.4") and pdf.endswith(b"%%EOF\n")
    assert bodies["text/plain; charset=utf-8"].decode("utf-8").count(".") >= 3
    [missing] = plan.by_kind(Kind.NOT_FOUND)
    assert b"Page not found" in responses[missing.url].body


def test_latin1_pages_are_encoded_as_the_http_header_says(plan, responses):
    for capture in plan.by_kind(Kind.LATIN1):
        record = responses[capture.url]
        assert record.http_charset == "iso-8859-1" and b"<meta charset" not in record.body
        text = record.body.decode("iso-8859-1")
        assert "café" in text and "naïve" in text
        with pytest.raises(UnicodeDecodeError):
            record.body.decode("utf-8")


def test_meta_charset_pages_declare_it_only_in_the_html(plan, responses):
    charsets = []
    for capture in plan.by_kind(Kind.META_CHARSET):
        record = responses[capture.url]
        assert record.http_charset is None
        assert f'<meta charset="{capture.charset}">'.encode() in record.body
        assert "café" in record.body.decode(capture.charset)
        charsets.append(capture.charset)
    assert sorted(set(charsets)) == ["utf-8", "windows-1252"]


def test_image_records_are_valid_pngs_of_the_planned_size(plan, responses):
    images = plan.by_kind(Kind.IMAGE)
    for capture in images:
        assert png_size(responses[capture.url].body) == (capture.png.width, capture.png.height)
    referenced = {u for c in plan.captures for i in c.images for u in (i.url, *i.srcset_urls)}
    assert {c.url for c in images} <= referenced
    assert len({c.url for c in images}) == len(images)


def test_duplicates(plan, responses):
    for capture in plan.by_kind(Kind.EXACT_DUPLICATE):
        source, copy = responses[capture.duplicate_of], responses[capture.url]
        assert capture.url != capture.duplicate_of and copy.body == source.body
        assert copy.payload_digest == source.payload_digest
    sources = {c.url: c for c in plan.captures}
    for capture in plan.by_kind(Kind.NEAR_DUPLICATE):
        source = sources[capture.duplicate_of]
        assert capture.site != source.site and responses[capture.url].body != responses[source.url].body
        same = set(capture.article.paragraphs) & set(source.article.paragraphs)
        assert 0 < len(same) < len(source.article.paragraphs)


# -- the HTML --------------------------------------------------------------------------------------


def article_images(html: str, page_url: str, min_side: int = 64) -> list[str]:
    """What an extractor should find: <article> images, resolved, without data:, pixels and icons."""
    tree = LexborHTMLParser(html)
    base = tree.css_first("base")
    base_url = urljoin(page_url, base.attributes["href"]) if base else page_url
    found = []
    for img in tree.css("article img"):
        src, width = img.attributes.get("src") or "", img.attributes.get("width")
        if src.startswith("data:") or (width is not None and int(width) < min_side):
            continue
        found.append(urljoin(base_url, src))
    return found


def test_article_images_in_reading_order_are_the_planned_ones(plan, responses):
    for capture in plan.documents():
        html = responses[capture.url].body.decode(capture.charset)
        assert article_images(html, capture.url) == [i.url for i in capture.images], capture.url


def test_a_page_carries_boilerplate_and_junk_images(plan, responses):
    capture = plan.by_kind(Kind.IMAGES)[0]
    tree = LexborHTMLParser(responses[capture.url].body.decode("utf-8"))
    assert tree.css_first("title").text().startswith(capture.article.title)
    assert tree.css_first("article h1").text() == capture.article.title
    for selector in ("nav.main-nav a", "#cookie-banner", "header.site-header", "aside .ad img", "footer"):
        assert tree.css(selector), selector
    sizes = {(i.attributes.get("width"), i.attributes.get("height")) for i in tree.css("article img")}
    assert ("1", "1") in sizes and ("16", "16") in sizes  # tracking pixel and share icons
    assert [p.text() for p in tree.css("article > p:not(.byline)")] == list(capture.article.paragraphs)


def test_images_use_every_url_style(plan):
    images = [i for c in plan.documents() for i in c.images]
    assert any(i.src.startswith("https://img.example/") for i in images)
    assert any(i.src.startswith("//") for i in images)
    assert any(i.src.startswith("/media/") for i in images)
    assert any(not i.src.startswith(("/", "https:")) for i in images)  # relative to the page or <base href>
    assert any(c.article.base_href for c in plan.documents() if c.images)
    assert any(i.srcset for i in images) and any(i.caption for i in images)
    assert any(i.width is None for i in images)
    declared = [i.width for i in images if i.width is not None]
    assert sum(w >= 200 for w in declared) / len(declared) > 0.8


def test_the_contaminated_pages_quote_a_benchmark_question_word_for_word(plan, responses, tmp_path):
    bench = build_demo_benchmark(tmp_path)
    items = [json.loads(line) for line in bench.read_text(encoding="utf-8").splitlines()]
    assert [i["id"] for i in items] == [benchmark_id(k) for k in range(len(DEMO_BENCHMARK))] and len(
        items
    ) == 20
    pages = plan.by_kind(Kind.CONTAMINATED)
    assert len(pages) == 2 and all(not c.images for c in pages)  # text-only articles
    for ordinal, capture in enumerate(pages):
        question = items[quoted_item(ordinal)]["question"]
        assert len(question.split()) >= 13
        tree = LexborHTMLParser(responses[capture.url].body.decode(capture.charset))
        assert any(question in p.text() for p in tree.css("article > p"))


def test_too_few_pages_is_an_error():
    with pytest.raises(ValueError, match="at least"):
        demo_plan(MIN_PAGES - 1)


def test_a_small_corpus_keeps_every_kind(tmp_path):
    plan = demo_plan(MIN_PAGES, seed=7)
    assert all(n > 0 for n in plan.kind_counts().values())
    records = read_records(build_demo_corpus(tmp_path, MIN_PAGES, seed=7))
    assert Counter(r.type for r in records) == plan.record_counts()


def test_the_demo_job_spec_is_valid():
    """``loom run jobs/demo.toml`` re-runs what ``loom demo`` ran (its default ``--out out/demo``)."""
    spec = load_job(REPO / "jobs" / "demo.toml")
    assert spec.sources[0].paths == [str((REPO / "out" / "demo" / "input" / DEMO_WARC_NAME).resolve())]
    assert spec.output == str((REPO / "out" / "demo" / "result").resolve())
    assert spec.shards.max_samples == 50
