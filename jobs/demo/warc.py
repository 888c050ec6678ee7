"""A small, deterministic, Common Crawl-like WARC for ``loom demo`` — no network, no outside files.

``build_demo_corpus(dest, pages, seed)`` renders the plan of ``jobs/demo/plan.py`` (``demo_plan``)
to ``dest/demo.warc.gz``: a ``warcinfo`` record, then a ``request`` and a ``response`` record per
capture, each record its own gzip member, as Common Crawl writes them.

The same ``(pages, seed)`` always gives a byte-identical file: dates derive from the seed and the
record's position, record ids are name-based UUIDs, every random choice comes from a
``random.Random`` seeded with a string, and gzip headers carry mtime 0.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
import uuid
import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit

from fastwarc import GzipWriter, WarcRecord, WarcRecordType

from jobs.demo.bodies import capture_body
from jobs.demo.pages import CRAWL_START, demo_rng
from jobs.demo.plan import Capture, DemoPlan, Kind, demo_plan

logger = logging.getLogger(__name__)

DEMO_WARC_NAME = "demo.warc.gz"

_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://loom.example/demo-corpus")
_USER_AGENT = "LoomDemoBot/1.0 (+https://loom.example/demo)"


_REASONS = {200: "OK", 301: "Moved Permanently", 404: "Not Found"}


def _http_request(url: str, accept: str) -> bytes:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [
        f"GET {target} HTTP/1.1",
        f"User-Agent: {_USER_AGENT}",
        f"Accept: {accept}",
        "Accept-Language: en-US,en;q=0.5",
        "Accept-Encoding: br,gzip",
        f"Host: {parts.netloc}",
        "Connection: Keep-Alive",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _http_response(capture: Capture, body: bytes, fetched: datetime) -> bytes:
    lines = [
        f"HTTP/1.1 {capture.status} {_REASONS[capture.status]}",
        f"Date: {format_datetime(fetched, usegmt=True)}",
        f"Server: {capture.site.server if capture.site else 'img-cdn'}",
        f"Content-Type: {capture.content_type}",
        f"Content-Length: {len(body)}",
    ]
    if capture.location:
        lines.append(f"Location: {capture.location}")
    if capture.kind == Kind.IMAGE:
        lines += ["Cache-Control: public, max-age=31536000", "Accept-Ranges: bytes"]
    else:
        lines += ["Cache-Control: max-age=600", "Vary: Accept-Encoding"]
    if capture.article:
        modified = datetime.combine(capture.article.published, datetime.min.time(), UTC)
        lines.append(f"Last-Modified: {format_datetime(modified, usegmt=True)}")
    lines.append("Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _sha1_b32(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


def _ip_address(url: str) -> str:
    """A stable documentation address (192.0.2.0/24) per host."""
    host = urlsplit(url).hostname or ""
    return f"192.0.2.{zlib.crc32(host.encode()) % 254 + 1}"


class _RecordFactory:
    """Makes WARC records with ids and dates that depend only on the seed and their position."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.serial = 0
        self.warcinfo_id = ""

    def record(
        self,
        record_type: WarcRecordType,
        date: datetime,
        headers: Sequence[tuple[str, str]],
        content: bytes,
        target: str = "",
    ) -> WarcRecord:
        self.serial += 1
        urn = uuid.uuid5(_UUID_NAMESPACE, f"{self.seed}/{self.serial}/{record_type}/{target}")
        record = WarcRecord()
        record.init_headers(record_type, f"uuid:{urn}".encode())
        record.headers["WARC-Date"] = date.strftime("%Y-%m-%dT%H:%M:%SZ")
        for key, value in headers:
            record.headers.append(key, value)
        record.set_bytes_content(content)
        return record


def _warcinfo(factory: _RecordFactory, plan: DemoPlan) -> WarcRecord:
    fields = [
        # the generator's old path, kept as it was: it is part of the WARC's bytes (and offsets)
        ("software", "loom-demo (pipeline/demo.py)"),
        ("isPartOf", f"LOOM-DEMO-{plan.seed}"),
        ("description", f"Synthetic Common Crawl-like corpus: {plan.pages} pages, seed {plan.seed}"),
        ("hostname", "demo.loom.example"),
        ("operator", "Loom"),
        ("robots", "checked via crawler-commons"),
        ("http-header-user-agent", _USER_AGENT),
        ("format", "WARC File Format 1.1"),
        ("conformsTo", "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"),
    ]
    content = "".join(f"{k}: {v}\r\n" for k, v in fields).encode("utf-8")
    headers = [
        ("Content-Type", "application/warc-fields"),
        ("WARC-Filename", DEMO_WARC_NAME),
        ("WARC-Block-Digest", _sha1_b32(content)),  # so that every record verifies
    ]
    record = factory.record(WarcRecordType.warcinfo, CRAWL_START, headers, content)
    factory.warcinfo_id = str(record.record_id)
    return record


def _capture_date(seed: int, position: int) -> datetime:
    jitter = demo_rng(seed, "date", position).randint(0, 3)
    return CRAWL_START + timedelta(hours=seed % 1000, seconds=4 * position + jitter)


def _capture_records(
    factory: _RecordFactory, capture: Capture, body: bytes, fetched: datetime
) -> list[WarcRecord]:
    """The request record and the response record of one capture."""
    accept = "text/html,application/xhtml+xml,*/*;q=0.8"
    if capture.kind == Kind.IMAGE:
        accept = "image/avif,image/webp,*/*"
    request = _http_request(capture.url, accept)
    common = [("WARC-Warcinfo-ID", factory.warcinfo_id), ("WARC-IP-Address", _ip_address(capture.url))]
    req = factory.record(
        WarcRecordType.request,
        fetched,
        [
            ("Content-Type", "application/http; msgtype=request"),
            *common,
            ("WARC-Target-URI", capture.url),
            ("WARC-Block-Digest", _sha1_b32(request)),
        ],
        request,
        capture.url,
    )
    response = _http_response(capture, body, fetched)
    resp = factory.record(
        WarcRecordType.response,
        fetched,
        [
            ("Content-Type", "application/http; msgtype=response"),
            *common,
            ("WARC-Concurrent-To", str(req.record_id)),
            ("WARC-Target-URI", capture.url),
            ("WARC-Payload-Digest", _sha1_b32(body)),
            ("WARC-Block-Digest", _sha1_b32(response)),
            ("WARC-Identified-Payload-Type", capture.content_type.split(";")[0]),
        ],
        response,
        capture.url,
    )
    return [req, resp]


def _records(plan: DemoPlan) -> Iterator[WarcRecord]:
    factory = _RecordFactory(plan.seed)
    yield _warcinfo(factory, plan)
    bodies: dict[str, bytes] = {}  # exact duplicates reuse their source's bytes
    for position, capture in enumerate(plan.captures):
        if capture.kind == Kind.EXACT_DUPLICATE and capture.duplicate_of in bodies:
            body = bodies[capture.duplicate_of]
        else:
            body = capture_body(capture, plan.seed)
        if capture.kind in (Kind.IMAGES, Kind.TEXT):
            bodies[capture.url] = body
        yield from _capture_records(factory, capture, body, _capture_date(plan.seed, position))


def build_demo_corpus(dest: Path, pages: int = 120, seed: int = 0) -> Path:
    """Write dest/demo.warc.gz (and return its path): a deterministic, realistic Common Crawl-like WARC.

    See ``demo_plan`` for what it holds. Each record is its own gzip member (mtime 0), so the same
    ``(pages, seed)`` gives the same bytes.
    """
    started = time.perf_counter()
    plan = demo_plan(pages, seed)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / DEMO_WARC_NAME
    partial = dest / f".{DEMO_WARC_NAME}.partial"
    with open(partial, "wb") as fh:
        writer = GzipWriter(fh)
        for record in _records(plan):
            record.write(writer)
            writer.finish()  # end the gzip member: one member per record, like Common Crawl
        writer.close()
    partial.replace(path)
    logger.info(
        "demo corpus: %s (%d bytes, %d captures: %s) in %.2fs",
        path,
        path.stat().st_size,
        len(plan.captures),
        ", ".join(f"{k}={n}" for k, n in plan.kind_counts().items() if n),
        time.perf_counter() - started,
    )
    return path
