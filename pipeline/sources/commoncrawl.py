"""Common Crawl source: WARC/ARC files → raw HTML responses → documents.

Reading (:func:`read_archive`) yields one raw row per HTTP response record, with the HTML bytes and
where it came from; rows that cannot become documents carry a ``_drop_reason`` (non-200, not HTML,
oversized, truncated, empty) so they reach the removal ledger. It also yields one body-less row with
``revisit`` set for each HTTP revisit record whose WARC-Profile ends in ``identical-payload-digest``
("same payload as an earlier response with this WARC-Payload-Digest"): the documents step turns it
into a copy of that response's document (see :mod:`pipeline.steps`), so dedup removes it as an exact
copy. Every record type is counted (``record_revisit`` counts all revisits, used or not); revisits
that give no row are also counted by why (``revisit_not_http``, ``revisit_other_profile``). Other
record types (requests, metadata, ...) are only counted. A file that breaks mid-way (bad gzip,
garbage) stops that file with a counted ``corrupt_archive``; what was read before stays.

:class:`HtmlToDocuments` is the stage that turns raw rows into documents: charset decoding
(:func:`pipeline.sources.charset.decode_html`: BOM, valid UTF-8, then the HTTP header's and the
``<meta>`` charset by the WHATWG label table, checked against the bytes, then detection), main-content
extraction with images in reading order.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import os
import posixpath
import re
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any, BinaryIO

import pyarrow as pa
from fastwarc.stream_io import BrotliReader, ChunkedReader, GzipReader
from fastwarc.warc import ArchiveIterator, WarcRecordType

from pipeline.config import CommonCrawlSource, ExtractConfig, is_remote
from pipeline.extract import ImageRef, extract_html, nesting_exceeds
from pipeline.schema import DOC_SCHEMA, DROP_REASON, doc_id, empty_meta
from pipeline.sources.charset import decode_html
from pipeline.sources.paths import expand_paths
from pipeline.stage import Resources
from pipeline.storage import filesystem_from_uri
from pipeline.watchdog import PartStalled, beat

log = logging.getLogger(__name__)

RAW_SCHEMA = pa.schema(
    [
        ("url", pa.string()),
        ("warc_path", pa.string()),
        ("warc_offset", pa.int64()),
        ("crawl_date", pa.string()),
        ("payload_digest", pa.string()),
        ("http_charset", pa.string()),
        ("body", pa.large_binary()),
        (DROP_REASON, pa.string()),
        ("_drop_detail", pa.string()),
        # A revisit record (no body): the documents step resolves it by ``payload_digest`` against
        # the documents of the same file; it never goes through the document stages.
        ("revisit", pa.bool_()),
    ]
)

HTML_TYPES = ("text/html", "application/xhtml+xml")


HTTP_TIMEOUT_S = 60
EMPTY_INPUT = "empty_input"  # an input file of 0 bytes: one drop of the documents step, in its ledger


def _open(path: str) -> Any:
    """A binary stream: local files, ``http(s)://`` (Common Crawl's public endpoint) and ``s3://``."""
    if path.startswith(("http://", "https://")):
        return urllib.request.urlopen(path, timeout=HTTP_TIMEOUT_S)
    if is_remote(path):
        fs, p = filesystem_from_uri(path)
        return fs.open_input_stream(p)
    return open(path, "rb")


class DownloadTimeout(OSError):
    """A remote input not downloaded within its deadline; the part fails and a rerun retries it."""


DOWNLOAD_SECONDS = 3600.0  # a remote input's whole download (``run.download_seconds``)
BEAT_BYTES = 1 << 16  # downloaded bytes that count as progress for the watchdog


def download(path: str, dst: BinaryIO, deadline_s: float = DOWNLOAD_SECONDS) -> int:
    """Copy the remote ``path`` to ``dst`` within ``deadline_s`` seconds in all (each read also has
    its own timeout), or raise :class:`DownloadTimeout` naming it: a server that sends a byte a
    minute cannot hold a part forever. Returns the bytes copied."""
    deadline = time.monotonic() + deadline_s
    copied = since_beat = 0
    with _open(path) as src:
        read = getattr(src, "read1", src.read)  # http: what has arrived, so the clock is checked often
        while chunk := read(1 << 20):
            dst.write(chunk)
            copied += len(chunk)
            since_beat += len(chunk)
            if since_beat >= BEAT_BYTES:
                beat()
                since_beat = 0
            if time.monotonic() > deadline:
                raise DownloadTimeout(
                    f"{path}: not downloaded within {deadline_s:g}s ({copied:,} bytes so far; "
                    "run.download_seconds); rerun the job to retry it"
                )
    return copied


@contextlib.contextmanager
def local_copy(path: str, deadline_s: float = DOWNLOAD_SECONDS) -> Iterator[str]:
    """A local, seekable file for ``path`` (the WARC parser needs one): remote inputs are downloaded
    to a temporary file first (:func:`download`). A download that fails or runs past its deadline
    raises, so the part fails and a rerun retries it; only what is wrong inside the file counts as
    ``corrupt_archive``."""
    if not is_remote(path):
        if not os.path.isfile(path):  # a missing mount is an error to fix, not a bad record
            raise FileNotFoundError(f"input not found: {path}")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="loom-input-") as tmp:
        local = os.path.join(tmp, os.path.basename(path.rstrip("/")) or "input")
        with open(local, "wb") as dst:
            download(path, dst, deadline_s)
        yield local


def list_files(src: CommonCrawlSource) -> list[str]:
    """Every input file of a source, once, in a stable order: globs sorted (``**`` recursive), then
    the listing in its own order; ``limit`` applies last."""
    files = expand_paths(src.paths)
    if src.listing:
        buf = io.BytesIO()
        download(src.listing, buf)
        data = buf.getvalue()
        if src.listing.endswith(".gz"):
            data = gzip.decompress(data)
        for line in data.decode("utf-8").splitlines():
            line = line.strip()
            if line:
                files.append(_join(src.prefix, line) if src.prefix else line)
    files = list(dict.fromkeys(files))
    if src.limit is not None:
        files = files[: src.limit]
    return files


def _join(prefix: str, rel: str) -> str:
    return posixpath.join(prefix, rel) if is_remote(prefix) else os.path.join(prefix, rel)


def _content_type(value: str | None) -> tuple[str, str | None]:
    """``text/html; charset=UTF-8`` → (``text/html``, ``utf-8``)."""
    if not value:
        return "", None
    mime, _, params = value.partition(";")
    m = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", params, re.I)
    return mime.strip().lower(), (m.group(1).lower() if m else None)


def _decode_transfer(body: bytes, transfer: str | None, encoding: str | None, limit: int) -> bytes:
    """Undo chunked transfer coding and gzip/deflate/br content coding, reading at most ``limit``
    bytes of output (so a compression bomb costs ``limit`` bytes, not gigabytes).

    Crawlers often store the body already decoded but keep the original headers (pywb's and
    warcio's captures do), so a body that is not chunked or not gzip is taken as it is.
    """
    if transfer and "chunked" in transfer.lower():
        try:
            body = ChunkedReader(io.BytesIO(body)).read(limit)
        except OSError:
            pass  # stored de-chunked
    enc = (encoding or "").strip().lower()
    if enc in ("gzip", "x-gzip") and body.startswith(b"\x1f\x8b"):
        body = GzipReader(io.BytesIO(body)).read(limit)
    elif enc == "deflate":
        body = GzipReader(io.BytesIO(body), zlib=True).read(limit)
    elif enc == "br":
        body = BrotliReader(io.BytesIO(body)).read(limit)
    return body


class _RawRows:
    """Builds raw rows and counts what is skipped."""

    def __init__(self, path: str, max_page_bytes: int, counts: Counter):
        self.name = os.path.basename(path)
        self.max_page_bytes = max_page_bytes
        self.counts = counts

    def make(
        self,
        *,
        url: str,
        offset: int,
        date: str | None,
        digest: str | None,
        status: int | None,
        content_type: str | None,
        raw: bytes,
        truncated: bool,
        transfer: str | None = None,
        encoding: str | None = None,
    ) -> dict[str, Any]:
        mime, charset = _content_type(content_type)
        row: dict[str, Any] = {
            "url": url,
            "warc_path": self.name,
            "warc_offset": offset,
            "crawl_date": date,
            "payload_digest": digest,
            "http_charset": charset,
            "body": None,
            DROP_REASON: None,
            "_drop_detail": None,
            "revisit": False,
        }
        reason, detail = None, None
        if status != 200:
            reason, detail = "http_status", str(status)
        elif mime not in HTML_TYPES:
            reason, detail = "not_html", mime or "missing content-type"
        elif truncated:
            reason, detail = "truncated_record", f"{len(raw)} bytes left"
        elif len(raw) > self.max_page_bytes:
            reason, detail = "page_too_large", str(len(raw))
        else:
            try:
                body = _decode_transfer(raw, transfer, encoding, self.max_page_bytes + 1)
            except Exception as err:  # a broken chunked/gzip body is a status, not a crash
                body, reason, detail = b"", "bad_content_encoding", str(err)[:200]
            if not reason and not body.strip():
                reason = "empty_body"
            elif not reason and len(body) > self.max_page_bytes:
                reason, detail = "page_too_large", str(len(body))
            elif not reason:
                row["body"] = body
        row[DROP_REASON], row["_drop_detail"] = reason, detail
        return row

    def revisit(self, *, url: str, offset: int, date: str | None, digest: str | None) -> dict[str, Any]:
        """A revisit row: where the record is and which payload it repeats; no body, no drop reason."""
        return {
            "url": url,
            "warc_path": self.name,
            "warc_offset": offset,
            "crawl_date": date,
            "payload_digest": digest,
            "http_charset": None,
            "body": None,
            DROP_REASON: None,
            "_drop_detail": None,
            "revisit": True,
        }


def read_archive(
    path: str, max_page_bytes: int, counts: Counter, deadline_s: float = DOWNLOAD_SECONDS
) -> Iterator[dict[str, Any]]:
    """Yield raw rows for the HTTP responses of one WARC or ARC file; count everything else."""
    rows = _RawRows(path, max_page_bytes, counts)
    base = path.lower().removesuffix(".gz")
    reader = _read_arc if base.endswith(".arc") else _read_warc
    with local_copy(path, deadline_s) as local:
        if os.path.getsize(local) == 0:  # a download that came back empty: nothing to read
            counts[EMPTY_INPUT] += 1
            return
        try:
            yield from reader(local, rows)
        except (GeneratorExit, KeyboardInterrupt, SystemExit, PartStalled):
            raise
        except BaseException as err:  # noqa: BLE001 - fastwarc panics are BaseExceptions
            counts["corrupt_archive"] += 1
            log.warning("%s: stopped reading: %s", path, err)


def _read_warc(path: str, rows: _RawRows) -> Iterator[dict[str, Any]]:
    with _open(path) as stream:
        for rec in ArchiveIterator(stream, parse_http=True, auto_decode="none"):
            rtype = rec.record_type
            rows.counts["records"] += 1
            beat()
            if rtype != WarcRecordType.response:
                rows.counts[f"record_{rtype}"] += 1
                if rtype == WarcRecordType.revisit:
                    row = _revisit_row(rec, rows)
                    if row is not None:
                        yield row
                continue
            if not rec.is_http:
                rows.counts["response_not_http"] += 1
                continue
            h = rec.headers
            http = rec.http_headers
            wanted = http.status_code == 200 and _content_type(http.get("Content-Type"))[0] in HTML_TYPES
            # Only the bodies of HTML pages are read, at most one byte past the cap.
            raw = rec.reader.read(rows.max_page_bytes + 1) if wanted else b""
            date = h.get("WARC-Date")
            yield rows.make(
                url=(h.get("WARC-Target-URI") or "").strip().strip("<>"),
                offset=rec.stream_pos,
                date=date,
                digest=h.get("WARC-Payload-Digest"),
                status=http.status_code,
                content_type=http.get("Content-Type"),
                raw=raw,
                # The file ended inside the record. (Common Crawl's own cut at 1 MiB, marked by
                # WARC-Truncated, leaves a usable page and is kept.)
                truncated=wanted
                and len(raw) < min(rec.content_length, rows.max_page_bytes + 1)
                and not h.get("WARC-Truncated"),
                transfer=http.get("Transfer-Encoding"),
                encoding=http.get("Content-Encoding"),
            )


# WARC 1.0 ``http://netpreserve.org/warc/1.0/revisit/identical-payload-digest``, WARC 0.18's
# ``.../0.18/revisit/identical-payload-digest`` and the ``uri-agnostic-`` variant (same payload, any URI).
REVISIT_PROFILE_SUFFIX = "identical-payload-digest"


def _revisit_row(rec: Any, rows: _RawRows) -> dict[str, Any] | None:
    """The row of a revisit that repeats an earlier payload, or None (counted by why)."""
    h = rec.headers
    if not (h.get("WARC-Profile") or "").strip().endswith(REVISIT_PROFILE_SUFFIX):
        rows.counts["revisit_other_profile"] += 1  # e.g. server-not-modified: no payload to copy
        return None
    if not rec.is_http:
        rows.counts["revisit_not_http"] += 1
        return None
    return rows.revisit(
        url=(h.get("WARC-Target-URI") or "").strip().strip("<>"),
        offset=rec.stream_pos,
        date=h.get("WARC-Date"),
        digest=h.get("WARC-Payload-Digest"),
    )


def _read_arc(path: str, rows: _RawRows) -> Iterator[dict[str, Any]]:
    """ARC v1/v2: a header line ``URL IP DATE MIME ... LENGTH`` followed by LENGTH bytes."""
    with _open(path) as raw_stream:
        stream = gzip.GzipFile(fileobj=raw_stream) if path.lower().endswith(".gz") else raw_stream
        offset = 0
        while True:
            line = stream.readline()
            if not line:
                return
            offset += len(line)
            if not line.strip():
                continue
            fields = line.decode("latin-1").split()
            beat()
            if len(fields) < 5 or not fields[-1].isdigit():
                raise ValueError(f"bad ARC header at byte {offset}")
            length = int(fields[-1])
            record_offset = offset - len(line)
            block = stream.read(length)
            offset += len(block)
            rows.counts["records"] += 1
            url = fields[0]
            if url.startswith("filedesc://"):
                rows.counts["record_arc_filedesc"] += 1
                continue
            status, headers, body = _parse_http(block)
            date = fields[2]
            iso = f"{date[:4]}-{date[4:6]}-{date[6:8]}T{date[8:10]}:{date[10:12]}:{date[12:14]}Z"
            yield rows.make(
                url=url,
                offset=record_offset,
                date=iso if len(date) >= 14 else None,
                digest=None,
                status=status,
                content_type=headers.get("content-type") or fields[3],
                raw=body,
                truncated=len(block) < length,
                transfer=headers.get("transfer-encoding"),
                encoding=headers.get("content-encoding"),
            )


def _parse_http(block: bytes) -> tuple[int | None, dict[str, str], bytes]:
    head, sep, body = block.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = block.partition(b"\n\n")
    lines = head.decode("latin-1").splitlines()
    status = None
    if lines and lines[0].startswith("HTTP/"):
        parts = lines[0].split()
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers = {}
    for hl in lines[1:]:
        k, _, v = hl.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


# --- decoding and documents -------------------------------------------------------------------------


def nodes_to_lists(nodes: list[str | ImageRef]) -> tuple[list[str | None], list[dict | None]]:
    """Extraction nodes → the record's parallel lists; consecutive text blocks join with a blank line."""
    texts: list[str | None] = []
    images: list[dict | None] = []
    for node in nodes:
        if isinstance(node, ImageRef):
            texts.append(None)
            images.append(
                {"url": node.url, "sha256": None, "width": node.width, "height": node.height, "alt": node.alt}
            )
        elif texts and texts[-1] is not None:
            texts[-1] = texts[-1] + "\n\n" + node
        else:
            texts.append(node)
            images.append(None)
    return texts, images


_MARKED_SCHEMA = DOC_SCHEMA.append(pa.field(DROP_REASON, pa.string())).append(
    pa.field("_drop_detail", pa.string())
)


class HtmlToDocuments:
    """Stage: raw HTML response rows → ``text`` / ``interleaved`` documents."""

    name = "html_to_documents"
    resources = Resources(cpus=1)

    def __init__(self, source: str, config: ExtractConfig):
        self.source = source
        self.config = config

    def __call__(self, batch: pa.Table) -> pa.Table:
        docs = [self._safe_document(r) for r in batch.to_pylist()]
        try:
            return pa.Table.from_pylist(docs, schema=_MARKED_SCHEMA)
        except (pa.ArrowException, OverflowError, TypeError, ValueError):  # a row does not fit the record
            return pa.Table.from_pylist([self._fitting(d) for d in docs], schema=_MARKED_SCHEMA)

    def _safe_document(self, raw: dict[str, Any]) -> dict[str, Any]:
        """One page; an unexpected failure on it is a counted ``extract_error``, not a failed part."""
        try:
            return self._document(raw)
        except Exception as err:  # noqa: BLE001
            doc_key = doc_id(self.source, raw["url"], f"{raw['warc_path']}:{raw['warc_offset']}")
            return self._failed(doc_key, raw["url"], err)

    def _fitting(self, doc: dict[str, Any]) -> dict[str, Any]:
        try:
            pa.Table.from_pylist([doc], schema=_MARKED_SCHEMA)
            return doc
        except (pa.ArrowException, OverflowError, TypeError, ValueError) as err:
            return self._failed(doc["id"], doc["url"], err)

    def _failed(self, key: str, url: str, err: Exception) -> dict[str, Any]:
        log.warning("%s: extraction failed: %s: %s", url, type(err).__name__, err)
        return {
            "id": key,
            "source": self.source,
            "kind": "text",
            "url": url,
            "texts": [],
            "images": [],
            "meta": empty_meta(),
            DROP_REASON: "extract_error",
            "_drop_detail": f"{type(err).__name__}: {err}"[:300],
        }

    def _document(self, raw: dict[str, Any]) -> dict[str, Any]:
        meta = empty_meta()
        meta.update(
            crawl_date=raw["crawl_date"],
            warc_path=raw["warc_path"],
            warc_offset=raw["warc_offset"],
            target_uri=raw["url"],
            payload_digest=raw["payload_digest"],
        )
        doc: dict[str, Any] = {
            "id": doc_id(self.source, raw["url"], f"{raw['warc_path']}:{raw['warc_offset']}"),
            "source": self.source,
            "kind": "text",
            "url": raw["url"],
            "texts": [],
            "images": [],
            "meta": meta,
            DROP_REASON: raw[DROP_REASON],
            "_drop_detail": raw["_drop_detail"],
        }
        if doc[DROP_REASON]:
            return doc
        try:
            html, charset = decode_html(raw["body"], raw["http_charset"])
        except Exception as err:  # noqa: BLE001
            doc[DROP_REASON], doc["_drop_detail"] = "undecodable", str(err)[:200]
            return doc
        meta["charset"] = charset
        if nesting_exceeds(html):
            doc[DROP_REASON] = "too_deeply_nested"
            return doc
        extraction = extract_html(html, raw["url"], self.config)
        meta["title"] = extraction.title or None
        texts, images = nodes_to_lists(extraction.nodes)
        text_chars = sum(len(t) for t in texts if t)
        if text_chars < max(self.config.min_text_chars, 1):
            doc[DROP_REASON] = "empty_text"
            return doc
        doc["texts"], doc["images"] = texts, images
        doc["kind"] = "interleaved" if any(im is not None for im in images) else "text"
        return doc
