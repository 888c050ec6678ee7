"""The demo corpus through the source: ``read_archive`` + ``HtmlToDocuments`` (no Ray), checked
capture by capture against ``demo_plan``, which knows every page's kind, URL, text and images.

The plan is exact ground truth, so the checks are exact: each article becomes one document whose
text blocks are its paragraphs, subheadings and captions (no cookie banner, nav, byline, related
links, sidebar or footer) and whose images are its content images in reading order (no logo, share
icons, tracking pixel, ``data:`` placeholder, thumbnails or ad); the rest is dropped with the
reason the source gives it.

One rule differs from the plan's own notion of an image URL: ``PlannedImage.url`` is the ``src``
resolved, while the extractor takes the largest ``srcset`` candidate when there is one (a bigger
copy of the same picture, what a training set wants; see ``pipeline/extract/images.py``). The expected
URL here is ``srcset_urls[-1]`` for such images (51 of the 200 images of the default corpus).
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from jobs.demo import (
    DOCUMENT_KINDS,
    DROPPED_KINDS,
    MIN_PAGES,
    Capture,
    DemoPlan,
    Heading,
    Kind,
    PlannedImage,
    build_demo_corpus,
    demo_plan,
)
from pipeline.config import ExtractConfig
from pipeline.schema import DROP_REASON
from pipeline.sources.commoncrawl import RAW_SCHEMA, HtmlToDocuments, read_archive

#: Why the source drops each kind of capture that is not a document.
DROP_REASONS = {
    Kind.NOT_FOUND: "http_status",
    Kind.REDIRECT: "http_status",
    Kind.NON_HTML: "not_html",
    Kind.EMPTY: "empty_body",
    Kind.IMAGE: "not_html",
}


def _rows(warc: Path, config: ExtractConfig) -> list[dict]:
    """Raw rows in batches through the stage, as the documents step does (pipeline/documents.py)."""
    stage = HtmlToDocuments("demo", config)
    rows = read_archive(str(warc), config.max_page_bytes, Counter())
    out: list[dict] = []
    while batch := list(itertools.islice(rows, 32)):
        out += stage(pa.Table.from_pylist(batch, schema=RAW_SCHEMA)).to_pylist()
    return out


@pytest.fixture(scope="module", params=[(120, 0), (MIN_PAGES, 7)], ids=lambda p: f"pages{p[0]}-seed{p[1]}")
def corpus(request, tmp_path_factory) -> tuple[DemoPlan, dict[str, dict]]:
    """The plan and the stage's output row per URL (documents and drops alike)."""
    pages, seed = request.param
    plan = demo_plan(pages, seed)
    warc = build_demo_corpus(tmp_path_factory.mktemp("demo"), pages, seed)
    rows = _rows(warc, ExtractConfig())
    by_url = {r["url"]: r for r in rows}
    assert len(by_url) == len(rows)  # capture URLs are unique
    return plan, by_url


def expected_url(image: PlannedImage) -> str:
    """The URL the extractor keeps: the largest srcset candidate, else the resolved src."""
    return image.srcset_urls[-1] if image.srcset_urls else image.url


def expected_texts(capture: Capture) -> list[str]:
    """The article's text blocks in reading order: paragraphs, subheadings, captions."""
    assert capture.article is not None
    out = []
    for block in capture.article.blocks:
        if isinstance(block, PlannedImage):
            if block.caption:
                out.append(block.caption)
        elif isinstance(block, Heading):
            out.append(block.text)
        else:
            out.append(block)
    return out


def text_blocks(doc: dict) -> list[str]:
    """The document's text blocks (``nodes_to_lists`` joins neighbouring blocks with a blank line)."""
    return "\n\n".join(t for t in doc["texts"] if t is not None).split("\n\n")


def test_every_capture_gives_one_row(corpus):
    plan, rows = corpus
    assert set(rows) == {c.url for c in plan.captures}


def test_documents_exist_with_the_right_kind(corpus):
    plan, rows = corpus
    documents = plan.documents()
    assert {c.kind for c in documents} == DOCUMENT_KINDS
    for capture in documents:
        doc = rows[capture.url]
        assert doc[DROP_REASON] is None, (capture.kind, capture.url, doc[DROP_REASON], doc["_drop_detail"])
        assert len(doc["texts"]) == len(doc["images"])
        assert all((t is None) != (i is None) for t, i in zip(doc["texts"], doc["images"], strict=True))
        want = "interleaved" if capture.images else "text"
        assert doc["kind"] == want, (capture.kind, capture.url)
        assert capture.site is not None and capture.article is not None
        assert doc["meta"]["title"] == f"{capture.article.title} | {capture.site.name}"


def test_images_are_the_content_images_in_reading_order(corpus):
    plan, rows = corpus
    n_images = 0
    for capture in plan.documents():
        images = [i for i in rows[capture.url]["images"] if i is not None]
        assert [i["url"] for i in images] == [expected_url(i) for i in capture.images], capture.url
        # Alt text as written (whitespace normalised) and the size declared in the HTML.
        assert [(i["alt"], i["width"], i["height"]) for i in images] == [
            (i.alt, i.width, i.height) for i in capture.images
        ], capture.url
        n_images += len(images)
    assert n_images > 0


def test_text_is_the_article_and_nothing_else(corpus):
    plan, rows = corpus
    for capture in plan.documents():
        blocks = text_blocks(rows[capture.url])
        assert blocks == expected_texts(capture), capture.url


def test_iso_8859_1_and_meta_charset_pages_decode(corpus):
    plan, rows = corpus
    pages = plan.by_kind(Kind.LATIN1) + plan.by_kind(Kind.META_CHARSET)
    assert plan.by_kind(Kind.LATIN1) and plan.by_kind(Kind.META_CHARSET)
    for capture in pages:
        text = "\n".join(text_blocks(rows[capture.url]))
        assert "At the café by the harbor" in text and "crème brûlée" in text, capture.url
        assert "Ã" not in text and "\ufffd" not in text, capture.url  # no mojibake, no replacement
    for capture in plan.by_kind(Kind.LATIN1):  # HTML5 reads iso-8859-1 as windows-1252, a superset
        assert rows[capture.url]["meta"]["charset"] == "cp1252", capture.url


def test_captures_to_drop_are_dropped_with_their_reason(corpus):
    plan, rows = corpus
    dropped = [c for c in plan.captures if c.kind in DROPPED_KINDS]
    assert {c.kind for c in dropped} == set(DROP_REASONS)
    for capture in dropped:
        row = rows[capture.url]
        assert row[DROP_REASON] == DROP_REASONS[capture.kind], (capture.kind, capture.url)
        assert row["texts"] == [] and row["images"] == []
        if capture.kind in (Kind.NOT_FOUND, Kind.REDIRECT):
            assert row["_drop_detail"] == str(capture.status)
        elif capture.kind in (Kind.NON_HTML, Kind.IMAGE):
            assert row["_drop_detail"] == capture.content_type.split(";")[0]
