"""A fault-injecting HTTP proxy on 127.0.0.1 in front of the test S3 server (``tests/s3server.py``).

Clients talk to the proxy as if it were the S3 endpoint (``FaultProxy.uri`` / ``.client``); it
forwards each request unchanged (the ``Host`` header too, so SigV4 signatures still match) over its
own connection to SeaweedFS, and relays the response. Between the two, :class:`Fault` rules inject
what real object stores do under load, chosen deterministically (every Nth matching request, the
first N, or a seeded share):

- ``slowdown``: answer ``503 SlowDown`` with S3's XML error body, without forwarding;
- ``stall``: forward the request, then hold the response for ``stall_s`` and close the connection;
- ``reset_request``: read the request's head (and half its body), then reset the connection
  (``SO_LINGER`` 0: an RST, not a FIN), without forwarding;
- ``reset_response``: forward the request, relay half of the response, then reset;
- ``outage``: a server restart as clients see it: every open connection is reset and new ones are
  refused (the listening socket is closed) for ``outage_s``, then the proxy listens on the same port
  again. SeaweedFS itself keeps running, unless ``during_outage`` restarts it for real
  (``tests.s3server.Seaweed.restart``): the outage then lasts at least as long as the restart.

Stdlib only. Use it in a test module with ``from tests.s3faults import s3_faults  # noqa: F401``.
"""

from __future__ import annotations

import logging
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.s3server import HOST, S3Server

log = logging.getLogger(__name__)

KINDS = ("slowdown", "stall", "reset_request", "reset_response", "outage")
SOCKET_TIMEOUT_S = 60.0  # a proxy thread never waits longer than this on either side


@dataclass(frozen=True)
class Fault:
    """Inject ``kind`` into the requests of ``ops`` (S3 operation names, see :func:`operation`; all
    when empty) that come ``after`` the first few: ``every`` Nth of them (N, 2N, …), or the ``first``
    N, or a ``share`` of them drawn from the proxy's seeded generator; at most ``limit`` times in all
    (unbounded when None)."""

    kind: str
    ops: frozenset[str] = frozenset()
    every: int = 0
    first: int = 0
    share: float = 0.0
    limit: int | None = None
    after: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; one of {KINDS}")
        if sum(bool(x) for x in (self.every, self.first, self.share)) != 1:
            raise ValueError("give exactly one of every, first, share")


def fault(kind: str, ops: Iterable[str] = (), **how: Any) -> Fault:
    return Fault(kind, frozenset(ops), **how)


@dataclass(frozen=True)
class Request:
    """One request the proxy saw: its S3 operation, the fault injected (None: forwarded as is), and
    when it came (``time.monotonic()``)."""

    op: str
    method: str
    target: str
    fault: str | None
    at: float


def operation(method: str, target: str, headers: dict[str, str]) -> str:
    """The S3 API operation of a request (path-style addressing, as pyarrow and boto3 use here)."""
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    segments = [s for s in url.path.split("/") if s]
    if not segments:
        return "ListBuckets"
    if len(segments) == 1:  # the bucket itself
        if "uploads" in query:
            return "ListMultipartUploads"
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        return {"GET": "ListObjects", "HEAD": "HeadBucket", "PUT": "CreateBucket"}.get(method, method)
    if "uploads" in query and method == "POST":
        return "CreateMultipartUpload"
    if "uploadId" in query:
        return {
            "PUT": "UploadPart",
            "POST": "CompleteMultipartUpload",
            "DELETE": "AbortMultipartUpload",
            "GET": "ListParts",
        }.get(method, method)
    if method == "PUT":
        return "CopyObject" if "x-amz-copy-source" in headers else "PutObject"
    return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(method, method)


def slowdown_response(target: str) -> bytes:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
        "<Message>Please reduce your request rate.</Message>"
        f"<Resource>{urlsplit(target).path}</Resource><RequestId>loom-fault</RequestId></Error>"
    ).encode()
    head = (
        "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head + body


def _reset(sock: socket.socket) -> None:
    """Close with an RST: the peer sees 'connection reset by peer', not an orderly end. (The
    descriptor closes when the serving thread drops its reader too, at once as it returns.)"""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def _cut(sock: socket.socket) -> None:
    """End a connection another thread is serving: it wakes up (its reads end, its writes fail),
    returns, and closing it then sends an RST."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Closed(Exception):
    """The client closed its connection between requests: the normal end of a keep-alive."""


def _read_head(f: BinaryIO) -> tuple[bytes, str, list[tuple[str, str]]]:
    """An HTTP message head: its raw bytes, its first line, and its headers."""
    raw = bytearray()
    first = f.readline(65536)
    if not first:
        raise _Closed
    raw += first
    headers = []
    while True:
        line = f.readline(65536)
        if not line:
            raise ConnectionError("the peer closed in the middle of a message head")
        raw += line
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return bytes(raw), first.decode("latin-1").strip(), headers


def _body(f: BinaryIO, headers: dict[str, str], until_close: bool = False) -> bytes:
    """A message body as it is on the wire (chunked encoding kept as is)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raw = bytearray()
        while True:
            size_line = f.readline(65536)
            if not size_line:
                raise ConnectionError("the peer closed in the middle of a chunked body")
            raw += size_line
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then an empty line
                    line = f.readline(65536)
                    raw += line
                    if line in (b"\r\n", b"\n", b""):
                        return bytes(raw)
            raw += _exactly(f, size + 2)
    if "content-length" in headers:
        return _exactly(f, int(headers["content-length"]))
    return f.read() if until_close else b""


def _exactly(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ConnectionError(f"the peer closed {n - len(data)} bytes short of a body")
    return data


class FaultProxy:
    """The proxy: ``start()`` it (or use it as a context manager), set faults with :meth:`inject`."""

    def __init__(self, upstream: S3Server, seed: int = 0, stall_s: float = 30.0, outage_s: float = 2.0):
        self.upstream = upstream
        self.stall_s = stall_s
        self.outage_s = outage_s
        self.during_outage: Callable[[], object] | None = None  # runs while clients are refused
        self.requests: list[Request] = []
        self._random = random.Random(seed)
        self._faults: list[Fault] = []
        self._seen: Counter[Fault] = Counter()  # matching requests per fault
        self._fired: Counter[Fault] = Counter()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._port = 0
        self._accepting: threading.Thread | None = None

    # -- what tests use -------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self._port}"

    @property
    def server(self) -> S3Server:
        """The upstream server's credentials, reached through the proxy (``.uri``, ``.client``)."""
        return S3Server(self.endpoint, self.upstream.access_key, self.upstream.secret_key)

    def uri(self, bucket: str, prefix: str = "") -> str:
        return self.server.uri(bucket, prefix)

    def client(self, timeout_s: float = 30.0) -> Any:
        return self.server.client(timeout_s=timeout_s)

    def inject(self, *faults: Fault) -> None:
        """Replace the fault rules (none: a clean pass-through) and restart their counts."""
        with self._lock:
            self._faults = list(faults)
            self._seen.clear()
            self._fired.clear()

    def clear(self) -> None:
        self.inject()

    def fired(self, kind: str | None = None, op: str | None = None) -> int:
        """How many requests got a fault (of ``kind``, on ``op``) since the proxy started."""
        with self._lock:
            return sum(1 for r in self.requests if r.fault and kind in (None, r.fault) and op in (None, r.op))

    def seen(self, op: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.op == op)

    # -- life cycle -----------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._listen()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._close_listener()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            _cut(conn)
        if self._accepting:
            self._accepting.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, self._port))  # 0 the first time; the same port after an outage
        listener.listen(64)
        self._port = listener.getsockname()[1]
        self._listener = listener
        self._accepting = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._accepting.start()

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the listening thread
            except OSError:
                pass
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed: stopped, or an outage
            conn.settimeout(SOCKET_TIMEOUT_S)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _outage(self) -> None:
        """Reset every connection, refuse new ones for ``outage_s``, then listen again."""
        self._close_listener()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            _cut(conn)
        log.info("fault proxy: outage for %.1f s", self.outage_s)

        def back() -> None:
            started = time.monotonic()
            if self.during_outage is not None:
                try:
                    self.during_outage()
                except Exception:  # the test sees the server missing; say why here
                    log.exception("fault proxy: the action during the outage failed")
            if not self._stopping.wait(max(0.0, self.outage_s - (time.monotonic() - started))):
                self._listen()

        threading.Thread(target=back, daemon=True).start()

    # -- one client connection ------------------------------------------------------------------
    def _choose(self, op: str) -> str | None:
        """The fault for this request: every rule matching ``op`` counts it (and a share rule draws
        for it); the first rule that hits wins."""
        chosen = None
        with self._lock:
            for rule in self._faults:
                if rule.ops and op not in rule.ops:
                    continue
                self._seen[rule] += 1
                n = self._seen[rule] - rule.after
                if n <= 0:
                    continue
                if rule.every:
                    hit = n % rule.every == 0
                elif rule.first:
                    hit = n <= rule.first
                else:
                    hit = self._random.random() < rule.share
                if hit and chosen is None and (rule.limit is None or self._fired[rule] < rule.limit):
                    self._fired[rule] += 1
                    chosen = rule.kind
            return chosen

    def _serve(self, conn: socket.socket) -> None:
        upstream: socket.socket | None = None
        up_reader: BinaryIO | None = None
        try:
            reader = conn.makefile("rb")
            while not self._stopping.is_set():
                try:
                    raw, line, header_list = _read_head(reader)
                except _Closed:
                    return
                method, target = line.split(" ")[:2]
                headers = dict(header_list)
                op = operation(method, target, headers)
                kind = self._choose(op)
                with self._lock:
                    self.requests.append(Request(op, method, target, kind, time.monotonic()))
                expect = headers.get("expect", "").lower() == "100-continue"
                if kind == "slowdown":
                    conn.sendall(slowdown_response(target))  # the client sends no body after a final answer
                    return
                if kind == "reset_request":
                    length = int(headers.get("content-length", "0") or 0)
                    if length and not expect:  # the body is on its way: take half of it first
                        reader.read(length // 2)
                    return _reset(conn)
                if kind == "outage":
                    return self._outage()
                if upstream is None:
                    upstream = socket.create_connection(
                        tuple(self.upstream.endpoint.rsplit(":", 1)), timeout=SOCKET_TIMEOUT_S
                    )
                    up_reader = upstream.makefile("rb")
                assert up_reader is not None
                upstream.sendall(raw)
                if expect:  # relay the server's 100 Continue (or its early final answer) first
                    interim, status, interim_headers = _read_head(up_reader)
                    if " 100 " not in status + " ":
                        conn.sendall(interim + _body(up_reader, dict(interim_headers)))
                        return
                    conn.sendall(interim)
                upstream.sendall(_body(reader, headers))
                head, status, response_headers = _read_head(up_reader)
                resp = dict(response_headers)
                code = int(status.split(" ")[1])
                no_body = method == "HEAD" or code in (204, 304) or code < 200
                body = b"" if no_body else _body(up_reader, resp, until_close=True)
                if kind == "stall":
                    self._stopping.wait(self.stall_s)
                    return
                if kind == "reset_response":
                    whole = head + body
                    conn.sendall(whole[: max(1, len(head) // 2) if not body else len(head) + len(body) // 2])
                    return _reset(conn)
                conn.sendall(head + body)
                if (
                    resp.get("connection", "").lower() == "close"
                    or "content-length" not in resp
                    and not (no_body or "chunked" in resp.get("transfer-encoding", ""))
                ):
                    return
        except (OSError, ConnectionError) as e:
            log.debug("fault proxy: connection ended: %r", e)
        except Exception:  # a bug of the proxy: say so, rather than look like a fault
            log.exception("fault proxy: failed on a request")
        finally:
            with self._lock:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass
            if upstream is not None:
                upstream.close()


@pytest.fixture
def s3_faults(s3: S3Server) -> Iterator[FaultProxy]:
    """A :class:`FaultProxy` in front of the session's S3 server, faults off until a test injects
    some; pyarrow and boto3 reach it through ``proxy.uri(...)`` and ``proxy.client()``."""
    with FaultProxy(s3, seed=0) as proxy:
        yield proxy
