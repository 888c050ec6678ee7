"""The output root: a local folder or an object store, through ``pyarrow.fs``.

Writes are atomic: local files go to a temporary name and are renamed; on S3 an object is published
only whole. Completion markers are always written last.

S3 under faults. pyarrow's S3 output stream starts a multipart upload when it opens and completes it
on ``close()``, and its ``with`` block closes on an exception too: a write that failed half-way
would publish the half it had written. So :meth:`Storage._upload` closes the stream only after the
last byte; when anything fails before that it aborts the upload first (pyarrow has no abort, so
through :class:`_S3Api`, a few signed requests of the S3 REST API), and the close then fails
(``NoSuchUpload``) instead of publishing. When a part upload fails, pyarrow itself never completes
the upload but leaves it open; the abort cleans it up, and :meth:`Storage.abort_stale_uploads`
aborts whatever a killed process left. Transient errors (503 SlowDown, resets, timeouts) are
retried by the AWS SDK with an exponential backoff, at most ``LOOM_S3_MAX_ATTEMPTS`` tries of a
request (:func:`s3_settings`), and a whole read or upload that still fails with one is tried again
(``OP_ATTEMPTS``); a response that stalls for ``LOOM_S3_REQUEST_TIMEOUT_S`` is an error (then
retried), so nothing waits forever. ``docs/OPERATIONS.md`` ("S3 faults") has the settings.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import itertools
import json
import logging
import os
import posixpath
import random
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.config import is_remote

log = logging.getLogger(__name__)

COPY_CHUNK = 8 << 20  # bytes per write into an upload stream
OP_ATTEMPTS = 3  # tries of a whole read or upload, over the AWS SDK's retries of each request
# pyarrow errors worth another try of the whole read or upload, some of them transient faults the SDK
# does not retry: a 503 to a GET of fewer bytes than its XML error body (a small object) overflows
# pyarrow's buffer and is an INTERNAL_FAILURE "Failed to flush response stream", as is a reset in
# the middle of some ranged GETs. Not refusals, missing keys or buckets.
TRANSIENT = re.compile(
    r"AWS Error (NETWORK_CONNECTION|SLOW_DOWN|THROTTLING|SERVICE_UNAVAILABLE|INTERNAL_FAILURE|"
    r"REQUEST_TIMEOUT)|HTTP status (5\d\d|429)|curlCode"
)
T = TypeVar("T")


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    try:
        return float(value) if value else default
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number") from None


def s3_settings() -> dict[str, Any]:
    """Retries and timeouts of S3 requests, from the environment (read where the filesystem is made,
    so on each Ray worker): ``LOOM_S3_MAX_ATTEMPTS`` (10) tries of one request, the nth retry after
    25 ms × 2^n (the AWS SDK's "default" retry: 12.75 s of waits in all for 10 tries);
    ``LOOM_S3_CONNECT_TIMEOUT_S`` (5); ``LOOM_S3_REQUEST_TIMEOUT_S`` (20): a response that sends no
    byte for this long fails (and is retried).

    Not the SDK's "standard" retry: through pyarrow its retry quota (500 tokens, 5 per retry) is
    spent and never refilled, so after about 100 retries a filesystem retries nothing more; a long job
    under throttling would then fail on every 503."""
    return {
        "max_attempts": max(1, int(_env_number("LOOM_S3_MAX_ATTEMPTS", 10))),
        "connect_timeout": _env_number("LOOM_S3_CONNECT_TIMEOUT_S", 5.0),
        "request_timeout": _env_number("LOOM_S3_REQUEST_TIMEOUT_S", 20.0),
    }


def _s3_filesystem(fs: pafs.S3FileSystem) -> pafs.S3FileSystem:
    """``fs`` (as ``from_uri`` made it) with Loom's retries and timeouts."""
    options = fs.__reduce__()[1][0]  # every constructor argument, as pyarrow pickles it
    settings = s3_settings()
    options.update(
        connect_timeout=settings["connect_timeout"],
        request_timeout=settings["request_timeout"],
        retry_strategy=pafs.AwsDefaultS3RetryStrategy(max_attempts=settings["max_attempts"]),
    )
    return pafs.S3FileSystem(**options)


def filesystem_from_uri(uri: str) -> tuple[pafs.FileSystem, str]:
    """``pafs.FileSystem.from_uri(uri)``, with Loom's S3 retries and timeouts on an ``s3://`` URI."""
    fs, path = pafs.FileSystem.from_uri(uri)
    return (_s3_filesystem(fs) if isinstance(fs, pafs.S3FileSystem) else fs), path


@dataclass(frozen=True)
class Storage:
    """Paths relative to one output root. Picklable, so Ray workers get it as an argument."""

    root: str

    def __reduce__(self) -> tuple[Any, ...]:
        # the root alone: each process makes its own filesystem, with its retry settings (pyarrow's
        # pickle of an S3FileSystem drops the retry strategy)
        return (type(self), (self.root,))

    @functools.cached_property
    def _fs_and_base(self) -> tuple[pafs.FileSystem, str]:
        if is_remote(self.root):
            return filesystem_from_uri(self.root)
        return pafs.LocalFileSystem(), os.path.abspath(self.root.removeprefix("file://"))

    @functools.cached_property
    def _s3(self) -> _S3Api:
        fs, _ = self._fs_and_base
        if not isinstance(fs, pafs.S3FileSystem):
            raise TypeError(f"{self.root}: not an S3 root")
        return _S3Api.for_filesystem(fs)

    @property
    def is_local(self) -> bool:
        return isinstance(self._fs_and_base[0], pafs.LocalFileSystem)

    def uri(self, rel: str = "") -> str:
        """A user-facing location for ``rel`` (a local path or a URI)."""
        if self.is_local:
            return os.path.join(self._fs_and_base[1], rel) if rel else self._fs_and_base[1]
        root, query = self.root.partition("?")[::2]  # s3://b/p?endpoint_override=… keeps its query last
        full = posixpath.join(root.rstrip("/"), rel) if rel else root
        return f"{full}?{query}" if query else full

    def _full(self, rel: str) -> str:
        return posixpath.join(self._fs_and_base[1], rel) if rel else self._fs_and_base[1]

    def exists(self, rel: str) -> bool:
        fs, _ = self._fs_and_base
        return fs.get_file_info(self._full(rel)).type != pafs.FileType.NotFound

    def is_empty(self) -> bool:
        fs, base = self._fs_and_base
        info = fs.get_file_info(base)
        if info.type == pafs.FileType.NotFound:
            return True
        return not fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))

    def list(self, rel_dir: str, suffix: str = "") -> list[str]:
        """Names (not paths) of the files directly in ``rel_dir`` ending in ``suffix``, sorted."""
        fs, _ = self._fs_and_base
        infos = fs.get_file_info(pafs.FileSelector(self._full(rel_dir), allow_not_found=True))
        names = [posixpath.basename(i.path) for i in infos if i.type == pafs.FileType.File]
        return sorted(n for n in names if n.endswith(suffix) and not n.startswith("."))

    def _again(self, what: str, op: Callable[[], T]) -> T:
        """``op()``, tried again (up to ``OP_ATTEMPTS`` in all, after 1 s, 2 s, … jittered) when it
        fails with a transient S3 error (:data:`TRANSIENT`)."""
        for attempt in range(1, OP_ATTEMPTS + 1):
            try:
                return op()
            except OSError as err:
                if attempt == OP_ATTEMPTS or self.is_local or not TRANSIENT.search(str(err)):
                    raise
                delay = (0.5 + random.random() / 2) * 2 ** (attempt - 1)
                log.warning("%s failed (%s); try %d in %.1f s", what, err, attempt + 1, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _publish(self, rel: str, fill: Callable[[BinaryIO], object]) -> None:
        """Write ``rel`` with ``fill(stream)``, all of it or nothing: via a temporary name and a rename
        on local disk, an upload that is aborted if ``fill`` fails on S3. On S3, ``fill`` is called
        again after a transient error, into a new upload."""
        fs, _ = self._fs_and_base
        full = self._full(rel)
        if self.is_local:  # object stores need no folders (pyarrow would write marker objects)
            fs.create_dir(posixpath.dirname(full), recursive=True)
            tmp = posixpath.join(posixpath.dirname(full), f".{posixpath.basename(full)}.tmp")
            with open(tmp, "wb") as f:
                fill(f)
            os.replace(tmp, full)
        else:
            self._again(f"upload of {full}", lambda: self._upload(full, fill))

    def _upload(self, full: str, fill: Callable[[BinaryIO], object]) -> None:
        """One S3 upload that publishes ``full`` only if ``fill`` and the close both succeed.

        Not ``with fs.open_output_stream(...)``: its ``__exit__`` closes the stream, which completes
        the multipart upload with the parts written so far. With the default ``allow_delayed_open``
        pyarrow creates the upload when the stream opens, so every object, however small, is one
        multipart upload, and aborting it leaves nothing to publish."""
        fs, _ = self._fs_and_base
        stream = fs.open_output_stream(full)
        try:
            fill(stream)
            stream.close()  # completes the upload: the object appears whole
        except BaseException:
            self._discard(stream, full)
            raise

    def _discard(self, stream: Any, full: str) -> None:
        """Abort ``stream``'s upload, then close it: the close fails (``NoSuchUpload``) instead of
        publishing a part-written object. Errors here are logged; the caller raises the first one."""
        close_failed = stream.closed  # then pyarrow did not complete the upload, and will not retry
        try:
            aborted = self._s3.abort_uploads(full, exact=True)
        except Exception as err:  # noqa: BLE001 - the write's own error is the one to raise
            aborted = -1
            log.warning("could not abort the upload of %s: %s", full, err)
        if close_failed:
            return
        try:
            stream.close()
        except Exception:  # noqa: BLE001 - expected: the upload is gone
            return
        # the close completed an upload the abort did not reach: that object may be partial
        log.error("a failed upload of %s was published (%d uploads aborted); deleting it", full, aborted)
        try:  # not fs.delete_file: pyarrow would leave an empty "folder/" marker object in its place
            self._s3.delete_object(full)
        except Exception as err:  # noqa: BLE001
            log.error("could not delete the partial object %s: %s", full, err)

    def abort_stale_uploads(self, older_than_s: float = 0.0) -> int:
        """Abort the multipart uploads left open under this root that started more than
        ``older_than_s`` seconds ago (by the server's clock); return how many. A process killed in
        the middle of an upload leaves one open: invisible, but billed for its parts. Call it when
        no write under this root is in flight (the start and the end of a run); a write it cuts off
        fails, and its part runs again. A local root has none: 0."""
        if self.is_local:
            return 0
        return self._s3.abort_uploads(self._full(""), older_than_s=older_than_s)

    def open_uploads(self) -> list[str]:
        """The keys (``bucket/key``) of the multipart uploads open under this root (S3 only)."""
        if self.is_local:
            return []
        bucket, prefix = _split(self._full(""))
        return [f"{bucket}/{u['Key']}" for u in self._s3.list_uploads(bucket, _dir_prefix(prefix))]

    def write_bytes(self, rel: str, data: bytes) -> None:
        self._publish(rel, lambda f: f.write(data))

    def put_file(self, local_path: str, rel: str) -> None:
        """Copy a finished local file to ``rel`` (atomically on local disk, an upload otherwise)."""

        def copy(dst: BinaryIO) -> None:
            with open(local_path, "rb") as src:
                shutil.copyfileobj(src, dst, COPY_CHUNK)

        self._publish(rel, copy)

    def read_bytes(self, rel: str) -> bytes:
        fs, _ = self._fs_and_base

        def read() -> bytes:
            with fs.open_input_stream(self._full(rel)) as f:
                return f.read()

        return self._again(f"read of {rel}", read)

    def write_json(self, rel: str, obj: Any) -> None:
        self.write_bytes(rel, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_bytes(rel))

    def write_parquet(self, rel: str, table: pa.Table) -> None:
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        self.write_bytes(rel, buf.getvalue())

    def write_parquet_groups(self, rel: str, table: pa.Table, column: str) -> None:
        """Write ``table`` (sorted by ``column``) with one row group per value of ``column``, so that a
        reader filtering on it reads only that group."""
        buf = io.BytesIO()
        with pq.ParquetWriter(buf, table.schema, compression="zstd") as writer:
            if not table.num_rows:
                writer.write_table(table)
            values = table[column].to_numpy()
            if len(values) < 2 or bool(np.all(values[1:] >= values[:-1])):  # sorted: slice the runs
                starts = [0, *(np.flatnonzero(values[1:] != values[:-1]) + 1).tolist(), len(values)]
                for start, stop in itertools.pairwise(starts):
                    if stop > start:
                        writer.write_table(table.slice(start, stop - start))
            else:
                for value in pc.unique(table[column]).to_pylist():
                    writer.write_table(table.filter(pc.equal(table[column], value)))
        self.write_bytes(rel, buf.getvalue())

    def read_parquet(self, rel: str, columns: list[str] | None = None) -> pa.Table:
        fs, _ = self._fs_and_base
        return self._again(
            f"read of {rel}", lambda: pq.read_table(self._full(rel), filesystem=fs, columns=columns)
        )

    def parquet_schema(self, rel: str) -> pa.Schema:
        """The schema of one parquet file (its footer only)."""
        fs, _ = self._fs_and_base
        with fs.open_input_file(self._full(rel)) as f:
            return pq.read_schema(f)

    def iter_parquet(
        self, rel: str, columns: list[str] | None = None, batch_rows: int = 65_536
    ) -> Iterator[pa.RecordBatch]:
        """The rows of one parquet file in batches of ``columns``, holding one batch at a time."""
        fs, _ = self._fs_and_base
        with fs.open_input_file(self._full(rel)) as f:
            yield from pq.ParquetFile(f).iter_batches(batch_size=batch_rows, columns=columns)

    def read_parquets(
        self, rels: list[str], columns: list[str] | None = None, where: pc.Expression | None = None
    ) -> pa.Table:
        """Rows of several parquet files (of one schema) that match ``where``, reading only ``columns``."""
        fs, _ = self._fs_and_base

        def read() -> pa.Table:
            dataset = pads.dataset([self._full(r) for r in rels], format="parquet", filesystem=fs)
            return dataset.to_table(columns=columns, filter=where)

        return self._again(f"read of {len(rels)} parquet files", read)

    def read_groups(self, rel: str, column: str, value: int) -> pa.Table:
        """The row groups of one parquet file (written by :meth:`write_parquet_groups`) whose
        ``column`` can hold ``value``, by the groups' statistics: a reader of one group of many
        files opens them one at a time and holds only what it reads."""
        return self._again(f"read of {rel}", lambda: self._read_groups(rel, column, value))

    def _read_groups(self, rel: str, column: str, value: int) -> pa.Table:
        fs, _ = self._fs_and_base
        with fs.open_input_file(self._full(rel)) as f:
            pf = pq.ParquetFile(f)
            meta = pf.metadata
            leaf = next(j for j in range(meta.num_columns) if meta.schema.column(j).path == column)
            groups = []
            for i in range(meta.num_row_groups):
                stats = meta.row_group(i).column(leaf).statistics
                if stats is None or not stats.has_min_max or stats.min <= value <= stats.max:
                    groups.append(i)
            return pf.read_row_groups(groups) if groups else pf.schema_arrow.empty_table()

    def delete_dir(self, rel_dir: str) -> None:
        """Remove a folder and everything under it, if it is there."""
        fs, _ = self._fs_and_base
        fs.delete_dir_contents(self._full(rel_dir), missing_dir_ok=True)
        if self.exists(rel_dir):
            fs.delete_dir(self._full(rel_dir))

    def delete(self, rel: str) -> None:
        """Remove one file if it is there."""
        fs, _ = self._fs_and_base
        if self.exists(rel):
            fs.delete_file(self._full(rel))


def _split(path: str) -> tuple[str, str]:
    """``bucket/key`` → (bucket, key)."""
    bucket, _, key = path.partition("/")
    return bucket, key


def _dir_prefix(prefix: str) -> str:
    return f"{prefix.rstrip('/')}/" if prefix.strip("/") else ""


class S3ApiError(OSError):
    """A failed S3 call of :class:`_S3Api`; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0, code: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code


class _S3Api:
    """The few S3 calls pyarrow does not offer (list and abort multipart uploads, and a delete that
    does not recreate the folder), through boto3, against the filesystem's endpoint, region and
    credentials (the URI's, else boto3's own chain: environment, profiles, instance roles)."""

    def __init__(self, client: Any):
        self.client = client

    @classmethod
    def for_filesystem(cls, fs: pafs.S3FileSystem) -> _S3Api:
        import boto3
        from botocore.config import Config as BotoConfig

        o = fs.__reduce__()[1][0]
        region = o["region"] or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        host = o["endpoint_override"]
        endpoint = None if not host else host if "://" in host else f"{o['scheme'] or 'https'}://{host}"
        settings = s3_settings()
        config = BotoConfig(
            retries={"max_attempts": settings["max_attempts"], "mode": "standard"},
            connect_timeout=settings["connect_timeout"],
            read_timeout=settings["request_timeout"],
            s3={"addressing_style": "path"},
        )
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region or "us-east-1",
            aws_access_key_id=o["access_key"] or None,
            aws_secret_access_key=o["secret_key"] or None,
            aws_session_token=o["session_token"] or None,
            config=config,
        )
        return cls(client)

    def _call(self, what: str, op: Callable[[], T]) -> T:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return op()
        except ClientError as err:
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            code = err.response.get("Error", {}).get("Code", "")
            raise S3ApiError(f"{what}: HTTP {status} {code}".strip(), status, code) from None
        except BotoCoreError as err:  # no answer: refused, reset, timed out
            raise S3ApiError(f"{what}: {err}") from None

    def delete_object(self, path: str) -> None:
        bucket, key = _split(path)
        self._call(f"DELETE {path}", lambda: self.client.delete_object(Bucket=bucket, Key=key))

    def list_uploads(self, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
        """The open multipart uploads of ``bucket`` whose key starts with ``prefix``: Key, UploadId,
        Initiated."""
        pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix)
        for page in self._call(f"LIST uploads {bucket}/{prefix}", lambda: list(pages)):
            yield from page.get("Uploads", [])

    def abort_uploads(self, path: str, *, exact: bool = False, older_than_s: float = 0.0) -> int:
        """Abort the open uploads of the key ``path`` (``bucket/key``, with ``exact``), or of every key
        under the folder ``path``; only those started more than ``older_than_s`` ago. Returns how many."""
        bucket, key = _split(path)
        prefix = key if exact else _dir_prefix(key)
        now = dt.datetime.now(dt.UTC)
        aborted = 0
        for upload in list(self.list_uploads(bucket, prefix)):
            if exact and upload["Key"] != key:
                continue
            started = upload.get("Initiated")
            if older_than_s > 0 and started and (now - started).total_seconds() < older_than_s:
                continue
            try:
                self._call(
                    f"ABORT {bucket}/{upload['Key']}",
                    lambda u=upload: self.client.abort_multipart_upload(
                        Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]
                    ),
                )
            except S3ApiError as err:
                if err.status != 404:  # NoSuchUpload: completed or aborted meanwhile
                    raise
            aborted += 1
            log.info("aborted the open upload of s3://%s/%s", bucket, upload["Key"])
        return aborted
