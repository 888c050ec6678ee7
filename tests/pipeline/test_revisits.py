"""WARC revisit records (identical payload) become copies of their original's document, for dedup."""

from collections import Counter
from pathlib import Path

import pytest
from fastwarc.stream_io import GzipWriter
from fastwarc.warc import WarcRecord, WarcRecordType

from jobs.spec import parse_job
from pipeline.documents import DocumentsStep, plan_parts
from pipeline.runner import PartStats
from pipeline.schema import DROP_REASON, doc_id
from pipeline.sources.commoncrawl import read_archive
from pipeline.storage import Storage

DIGEST = "sha1:B2LTWWPUOYAH7UIPQ7ZUPQ4VMBSVC36A"  # example.com's page in pywb's captures


@pytest.fixture(scope="module")
def pywb(shared_data) -> Path:
    path = shared_data / "warc" / "pywb"
    if not (path / "dupes.warc.gz").is_file():
        pytest.skip(f"pywb's WARC captures not found at {path} (see the README, 'Test data')")
    return path


def run_documents(path: Path, out: Path) -> tuple[list[dict], list[dict], PartStats]:
    """The documents step on one file: (documents, ledger rows, stats)."""
    spec = parse_job(
        {"name": "t", "output": str(out), "sources": [{"paths": [str(path)]}], "images": {"fetch": False}}
    )
    storage = Storage(str(out))
    (part,) = plan_parts(spec.sources)
    step = DocumentsStep(storage, [part], spec.sources, spec.extract)
    stats = step.run_part(part)
    docs = storage.read_parquet(step["documents"].path(part.name)).to_pylist()
    ledger = storage.read_parquet(step["ledger"].path(part.name)).to_pylist()
    assert stats.rows_in == stats.rows_out + sum(stats.drops.values())  # revisit copies count in both
    assert stats.rows_out == len(docs) and sum(stats.drops.values()) == len(ledger)
    return docs, ledger, stats


def read(path) -> tuple[list[dict], Counter]:
    counts: Counter = Counter()
    return list(read_archive(str(path), 5_000_000, counts)), counts


def test_the_reader_yields_a_bodyless_row_per_identical_payload_revisit(pywb):
    rows, counts = read(pywb / "example.warc.gz")
    assert counts["record_revisit"] == 1  # counted as a record type, as before
    (rv,) = [r for r in rows if r["revisit"]]
    assert rv == {
        "url": "http://example.com?example=1",
        "warc_path": "example.warc.gz",
        "warc_offset": 1864,
        "crawl_date": "2014-01-03T03:03:41Z",
        "payload_digest": DIGEST,
        "http_charset": None,
        "body": None,
        DROP_REASON: None,
        "_drop_detail": None,
        "revisit": True,
    }
    assert [(r["warc_offset"], r["revisit"]) for r in rows] == [(333, False), (1864, True), (2907, False)]
    arc, _ = read(pywb.parent / "warcio" / "example.arc.gz")
    assert [r["revisit"] for r in arc] == [False]


def write_revisits(path: Path, *records: tuple[str, bytes]) -> None:
    """A gzipped WARC of revisit records, each given as (WARC-Profile, block)."""
    with open(path, "wb") as fh:
        writer = GzipWriter(fh)
        for i, (profile, block) in enumerate(records):
            rec = WarcRecord()
            rec.init_headers(WarcRecordType.revisit, f"urn:uuid:00000000-0000-0000-0000-{i:012d}".encode())
            rec.headers["WARC-Target-URI"] = f"<https://a.example/{i}>"
            rec.headers["WARC-Date"] = "2024-05-01T00:00:00Z"
            rec.headers["WARC-Payload-Digest"] = DIGEST
            rec.headers["WARC-Profile"] = profile
            if block:
                rec.headers["Content-Type"] = "application/http; msgtype=response"
            rec.set_bytes_content(block)
            rec.write(writer)
            writer.finish()
        writer.close()


def test_which_revisits_give_rows(tmp_path):
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
    base = "http://netpreserve.org/warc/"
    write_revisits(
        tmp_path / "r.warc.gz",
        (base + "1.0/revisit/identical-payload-digest", http),
        (base + "0.18/revisit/identical-payload-digest", http),
        (base + "1.1/revisit/uri-agnostic-identical-payload-digest", http),
        (base + "1.0/revisit/server-not-modified", http),  # no payload to copy
        (base + "1.0/revisit/identical-payload-digest", b""),  # no HTTP headers
    )
    rows, counts = read(tmp_path / "r.warc.gz")
    assert [r["url"] for r in rows] == ["https://a.example/0", "https://a.example/1", "https://a.example/2"]
    assert all(r["revisit"] and r["payload_digest"] == DIGEST for r in rows)
    assert counts == {
        "records": 5,
        "record_revisit": 5,
        "revisit_other_profile": 1,
        "revisit_not_http": 1,
    }


def test_a_revisit_becomes_a_copy_of_its_original(pywb, tmp_path):
    docs, ledger, stats = run_documents(pywb / "example.warc.gz", tmp_path / "out")
    assert len(docs) == 2 and stats.extra["revisit_copies"] == 1
    original, copy = docs  # the copy comes after the file's other documents
    assert original["meta"]["payload_digest"] == copy["meta"]["payload_digest"] == DIGEST
    assert copy["texts"] == original["texts"] and copy["texts"]
    assert (copy["kind"], copy["images"], copy["source"]) == (original["kind"], original["images"], "cc")
    assert copy["id"] != original["id"]
    assert copy["id"] == doc_id("cc", copy["url"], "example.warc.gz:1864")
    assert copy["meta"] == {
        **original["meta"],
        "crawl_date": "2014-01-03T03:03:41Z",
        "warc_offset": 1864,
        "target_uri": "http://example.com?example=1",
    }
    assert stats.rows_in == 3  # two responses through the stages, one revisit copy
    assert "revisit_unresolved" not in stats.skipped
    assert [r["reason"] for r in ledger] == ["http_status"]  # the revisit never reached the stage


def test_revisits_whose_original_is_elsewhere_are_counted_unresolved(pywb, tmp_path):
    docs, ledger, stats = run_documents(pywb / "dupes.warc.gz", tmp_path / "out")
    assert stats.skipped["record_revisit"] == 9
    assert stats.extra["revisit_copies"] == 1 and stats.skipped["revisit_unresolved"] == 8
    assert len(docs) == 2 and docs[0]["texts"] == docs[1]["texts"] and docs[0]["id"] != docs[1]["id"]
    assert len(ledger) == 2  # an http_status and a not_html response; no revisit in the ledger


def test_revisits_of_non_html_responses_are_all_unresolved(pywb, tmp_path):
    docs, ledger, stats = run_documents(pywb / "iana.warc.gz", tmp_path / "out")
    assert stats.skipped["record_revisit"] == stats.skipped["revisit_unresolved"] == 123
    assert stats.extra["revisit_copies"] == 0
    assert len(docs) == 16 and stats.rows_in == 48  # the responses only
    assert len(ledger) == 32


def test_a_revisit_sharing_a_gzip_member_with_its_original_still_gets_its_own_id(pywb, tmp_path):
    # warcio's file compresses several records in one gzip member, so they share its offset
    docs, _, stats = run_documents(pywb.parent / "warcio" / "example-bad-non-chunked.warc.gz", tmp_path / "o")
    original, copy = docs
    assert original["meta"]["warc_offset"] == copy["meta"]["warc_offset"] == 2113
    assert original["url"] == copy["url"] and original["id"] != copy["id"]
    assert copy["texts"] == original["texts"] and stats.extra["revisit_copies"] == 1
