"""The Common Crawl source: WARC/ARC records in, raw HTML rows (or counted reasons) out."""

import functools
import gzip
import threading
import urllib.error
from collections import Counter
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pytest
from fastwarc.stream_io import GzipWriter
from fastwarc.warc import WarcRecord, WarcRecordType

from pipeline.config import CommonCrawlSource, ExtractConfig
from pipeline.extract import Extraction, ImageRef
from pipeline.schema import DROP_REASON
from pipeline.sources import commoncrawl
from pipeline.sources.commoncrawl import RAW_SCHEMA, HtmlToDocuments, decode_html, list_files, read_archive


def read(path) -> tuple[list[dict], Counter]:
    counts: Counter = Counter()
    return list(read_archive(str(path), 5_000_000, counts)), counts


def responses(rows: list[dict]) -> list[dict]:
    """The response rows (revisit rows have no body and never reach the stage)."""
    return [r for r in rows if not r["revisit"]]


def reasons(rows: list[dict]) -> Counter:
    return Counter(r[DROP_REASON] for r in responses(rows))


def test_the_cc_excerpt_gives_sixteen_html_pages(shared_data):
    rows, counts = read(shared_data / "warc/resiliparse/warcfile.warc.gz")
    assert len(rows) == 16 and reasons(rows) == {None: 16}
    assert counts == {"records": 50, "record_warcinfo": 1, "record_request": 17, "record_metadata": 16}
    first = rows[0]
    assert first["warc_path"] == "warcfile.warc.gz" and first["crawl_date"].startswith("2020-08")
    assert first["payload_digest"].startswith("sha1:") and first["body"].lstrip().startswith(b"<")


def test_the_dolma_capture_unwraps_bracketed_target_uris(shared_data):
    rows, _ = read(shared_data / "warc/dolma/sample-0000.warc.gz")
    assert len(rows) == 22 and reasons(rows) == {None: 22}
    assert all(r["url"].startswith("http") and "<" not in r["url"] for r in rows)


def test_pywb_keeps_html_and_counts_the_rest(shared_data):
    rows, counts = read(shared_data / "warc/pywb/iana.warc.gz")
    assert counts["record_revisit"] == 123
    assert reasons(rows) == {None: 16, "not_html": 28, "http_status": 4}
    assert sum(r["revisit"] for r in rows) == 123  # all identical-payload-digest, all HTTP


def test_a_clipped_record_is_dropped_as_truncated(shared_data):
    rows, _ = read(shared_data / "warc/resiliparse/clipped.warc.gz")
    assert [r[DROP_REASON] for r in rows] == ["truncated_record"]


def test_an_arc_file_is_read(shared_data):
    rows, counts = read(shared_data / "warc/warcio/example.arc.gz")
    assert [r["url"] for r in rows] == ["http://example.com/"]
    assert rows[0][DROP_REASON] is None and b"Example Domain" in rows[0]["body"]
    assert counts["record_arc_filedesc"] == 1


def test_chunked_bodies_are_decoded_and_stored_dechunked_ones_kept(shared_data):
    rows, _ = read(shared_data / "warc/warcio/example-iana.org-chunked.warc")
    assert rows[0]["body"].startswith(b"<!doctype html>")
    rows, _ = read(shared_data / "warc/pywb/iana.warc.gz")  # headers say chunked, body is not
    assert all(r["body"].lstrip()[:1] == b"<" for r in responses(rows) if r[DROP_REASON] is None)


@pytest.mark.parametrize(
    ("name", "reasons", "corrupt"),
    [
        ("warcio/example-trunc.warc", {None: 1}, 1),  # one good page, then a cut-off record
        ("pywb/example-bad.warc.gz.bad", {None: 1, "http_status": 1}, 0),
        ("warcio/example-wrong-chunks.warc.gz", {None: 1}, 0),  # says chunked, is not
        ("pywb/missing-status-text.warc", {"http_status": 1}, 0),  # a 302 with no reason phrase
        ("warcio/example-bad-non-chunked.warc.gz", {None: 1}, 0),
        ("warcio/example-wget-bad-target-uri.warc.gz", {None: 1}, 0),
        ("warcio/post-test.warc.gz", {"not_html": 3}, 0),
        ("warcio/example-digest.warc", {}, 0),  # requests only
    ],
)
def test_edge_cases_give_their_reasons(shared_data, name, reasons, corrupt):
    rows, counts = read(shared_data / "warc" / name)
    assert dict(Counter(r[DROP_REASON] for r in responses(rows))) == reasons
    assert counts["corrupt_archive"] == corrupt


def test_garbage_is_a_corrupt_archive_not_a_crash(tmp_path):
    junk = tmp_path / "junk.warc.gz"
    junk.write_bytes(gzip.compress(b"this is not a warc file\r\n\r\n" * 10))
    rows, counts = read(junk)
    assert rows == [] and counts["corrupt_archive"] == 1


def test_charset_comes_from_the_header_then_meta_then_detection():
    body = "<html><head><meta charset='windows-1251'></head><body>Привет мир</body></html>".encode("cp1251")
    assert decode_html(body, None) == (body.decode("cp1251"), "cp1251")
    latin = "<p>café naïve</p>".encode("latin-1")
    text, enc = decode_html(latin, "iso-8859-1")
    assert text == "<p>café naïve</p>" and enc == "cp1252"  # HTML5 reads latin-1 as windows-1252


def test_a_listing_with_prefix_and_limit(tmp_path):
    listing = tmp_path / "warc.paths.gz"
    listing.write_bytes(gzip.compress(b"crawl/a.warc.gz\ncrawl/b.warc.gz\ncrawl/c.warc.gz\n"))
    src = CommonCrawlSource(listing=str(listing), prefix="/mnt/cc", limit=2)
    assert list_files(src) == ["/mnt/cc/crawl/a.warc.gz", "/mnt/cc/crawl/b.warc.gz"]
    s3 = CommonCrawlSource(listing=str(listing), prefix="s3://commoncrawl")
    assert list_files(s3)[0] == "s3://commoncrawl/crawl/a.warc.gz"


def raw_row(url: str, html: str, charset: str | None = "utf-8") -> dict:
    return {
        "url": url,
        "warc_path": "x.warc.gz",
        "warc_offset": 7,
        "crawl_date": "2024-05-01T00:00:00Z",
        "payload_digest": "sha1:AAAA",
        "http_charset": charset,
        "body": html.encode("utf-8"),
        DROP_REASON: None,
        "_drop_detail": None,
    }


def test_the_stage_builds_text_and_interleaved_documents_and_marks_the_rest():
    para = "<p>" + "A real paragraph of article text, long enough to count as content. " * 4 + "</p>"
    image = '<img src="/cat.jpg" width="640" height="480" alt="A cat">'
    rows = [
        raw_row("https://a.example/text", f"<html><body><article>{para}{para}</article></body></html>"),
        raw_row(
            "https://a.example/pics", f"<html><body><article>{para}{image}{para}</article></body></html>"
        ),
        raw_row(
            "https://a.example/empty",
            "<html><body><script>var x = 1;</script><img src='/a.png'></body></html>",
        ),
        raw_row("https://a.example/deep", "<div>" * 30_000 + "x" + "</div>" * 30_000),
    ]
    out = HtmlToDocuments("cc", ExtractConfig())(pa.Table.from_pylist(rows, schema=RAW_SCHEMA))
    docs = out.to_pylist()
    assert [d[DROP_REASON] for d in docs] == [None, None, "empty_text", "too_deeply_nested"]
    text, pics = docs[0], docs[1]
    assert text["kind"] == "text" and text["images"] == [None] and "\n\n" in text["texts"][0]
    assert pics["kind"] == "interleaved" and pics["texts"][1] is None
    assert pics["images"][1] == {
        "url": "https://a.example/cat.jpg",
        "sha256": None,
        "width": 640,
        "height": 480,
        "alt": "A cat",
    }
    assert pics["meta"]["warc_offset"] == 7 and pics["meta"]["charset"] == "utf-8"
    assert text["id"] != pics["id"] and len(text["id"]) == 32


@pytest.mark.parametrize(
    ("name", "pages", "kinds", "images"),
    [
        # 155 <img> on 16 pages; the kept ones are the main-content images of declared size ≥ 64 px
        # (19 of them on a job listing without prose, which comes out whole less its boilerplate)
        ("resiliparse/warcfile.warc.gz", 16, {"text": 9, "interleaved": 7}, 47),
        ("dolma/sample-0000.warc.gz", 22, {"text": 12, "interleaved": 10}, 60),
        ("pywb/iana.warc.gz", 16, {"text": 15, "interleaved": 1}, 1),
    ],
)
def test_real_captures_give_documents_and_images(shared_data, name, pages, kinds, images):
    rows, _ = read(shared_data / "warc" / name)
    table = pa.Table.from_pylist(responses(rows), schema=RAW_SCHEMA)
    out = HtmlToDocuments("cc", ExtractConfig())(table).to_pylist()
    docs = [d for d in out if d[DROP_REASON] is None]
    assert len(docs) == pages
    assert Counter(d["kind"] for d in docs) == kinds
    assert sum(i is not None for d in docs for i in d["images"]) == images


@pytest.fixture
def warc_server(shared_data):
    """``../shared/data/warc`` served over HTTP on 127.0.0.1, as Common Crawl serves its files."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(shared_data / "warc"))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def test_inputs_over_http_read_like_local_files(shared_data, warc_server, tmp_path):
    listing = tmp_path / "warc.paths"
    listing.write_text("resiliparse/warcfile.warc.gz\nwarcio/example.arc.gz\n")
    files = list_files(CommonCrawlSource(listing=str(listing), prefix=warc_server))
    assert files == [f"{warc_server}/resiliparse/warcfile.warc.gz", f"{warc_server}/warcio/example.arc.gz"]
    for url, local in zip(files, ["resiliparse/warcfile.warc.gz", "warcio/example.arc.gz"], strict=True):
        assert read(url)[0] == read(shared_data / "warc" / local)[0]


def test_a_missing_remote_file_fails_the_part_instead_of_counting_it(warc_server):
    with pytest.raises(urllib.error.HTTPError):
        read(f"{warc_server}/nope.warc.gz")


def test_a_page_that_breaks_extraction_is_a_counted_drop(monkeypatch):
    ok = raw_row(
        "https://a.example/ok",
        "<html><body><article><p>" + "Fine text. " * 20 + "</p></article></body></html>",
    )
    bad = raw_row("https://a.example/bad", "<html><body><p>boom</p></body></html>")
    wide = raw_row(
        "https://a.example/wide", '<article><p>Some text.</p><img src="/a.jpg" width="300"></article>'
    )
    real = commoncrawl.extract_html

    def flaky(html, url, config):
        if url.endswith("/bad"):
            raise RuntimeError("extractor bug")
        ex = real(html, url, config)
        if url.endswith("/wide"):  # a value that cannot be stored in the record
            ex = Extraction(
                ex.title, [n if isinstance(n, str) else ImageRef(n.url, n.alt, 2**40, 1) for n in ex.nodes]
            )
        return ex

    monkeypatch.setattr(commoncrawl, "extract_html", flaky)
    out = HtmlToDocuments("cc", ExtractConfig())(pa.Table.from_pylist([ok, bad, wide], schema=RAW_SCHEMA))
    reasons = out[DROP_REASON].to_pylist()
    assert reasons == [None, "extract_error", "extract_error"]
    assert out["_drop_detail"].to_pylist()[1] == "RuntimeError: extractor bug"


def write_warc(path, *responses: tuple[str, bytes]) -> None:
    """A gzipped WARC with these (url, raw HTTP response) records."""
    with open(path, "wb") as fh:
        writer = GzipWriter(fh)
        for i, (url, http) in enumerate(responses):
            rec = WarcRecord()
            rec.init_headers(WarcRecordType.response, f"urn:uuid:00000000-0000-0000-0000-{i:012d}".encode())
            rec.headers["WARC-Target-URI"] = url
            rec.headers["Content-Type"] = "application/http; msgtype=response"
            rec.set_bytes_content(http)
            rec.write(writer)
            writer.finish()
        writer.close()


def test_a_compression_bomb_is_dropped_after_reading_only_the_cap(tmp_path):
    bomb = gzip.compress(b"<html>" + b" " * 50_000_000)  # 50 MB of HTML in ~50 KB
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n\r\n" + bomb
    write_warc(tmp_path / "bomb.warc.gz", ("https://a.example/bomb", http))
    counts: Counter = Counter()
    (row,) = read_archive(str(tmp_path / "bomb.warc.gz"), 1_000_000, counts)
    assert row[DROP_REASON] == "page_too_large" and row["_drop_detail"] == "1000001"


def test_a_missing_local_input_fails_the_part():
    with pytest.raises(FileNotFoundError, match="input not found"):
        read("/nowhere/at/all.warc.gz")
