"""Fetching untrusted URLs safely: which addresses a request may reach, and how much it may read.

A crawl's image URLs are written by strangers. By default a request may only reach public (global
unicast) addresses: private, loopback, link-local, multicast, reserved and unspecified targets are
refused — checked on the address the socket actually connects to, after DNS, for every hop of a
redirect, so neither a name that resolves inward nor a redirect to ``169.254.169.254`` gets through.
A job spec can allow networks explicitly (``images.allow_networks``; tests allow ``127.0.0.1``).

:func:`guarded_urlopen` installs, for the duration of a ``with`` block, a urllib opener that enforces
this (img2dataset downloads with ``urllib.request.urlopen``, which uses the installed opener) plus:
http/https only (no ``file:``, ``ftp:``, ``data:``), no proxies from the environment, a content-type
check, a byte cap (``Content-Length`` and the body as it is read) and a deadline for the whole body.
Refusals raise :class:`Refused`, whose message starts with ``[loom:<reason>]``.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Content types that may hold an image (servers often send octet-stream for images).
IMAGE_TYPES_EXTRA = ("application/octet-stream", "binary/octet-stream")


class Refused(OSError):
    """A request Loom will not make or finish; ``reason`` is the status recorded for the URL."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"[loom:{reason}] {detail}")
        self.reason = reason


@dataclass(frozen=True)
class FetchPolicy:
    """What a request may reach and read."""

    allow_networks: Sequence[str] = ()
    max_bytes: int = 20_000_000
    timeout: float = 10.0  # each connect and read
    max_seconds: float | None = None  # a whole exchange (one connection); default: 3 x timeout
    _nets: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "allow_networks", tuple(self.allow_networks))  # compares as a value
        nets = tuple(ipaddress.ip_network(n, strict=False) for n in self.allow_networks)
        object.__setattr__(self, "_nets", nets)

    @property
    def deadline(self) -> float:
        return self.max_seconds if self.max_seconds is not None else 3 * self.timeout

    def refusal(self, ip: IPAddress) -> str | None:
        """Why ``ip`` may not be reached (None: it may)."""
        if isinstance(ip, ipaddress.IPv6Address):
            inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
            if inner is not None:  # ::ffff:10.0.0.1, 2002:0a00:0001::, Teredo: the IPv4 address inside
                return self.refusal(inner)
            if ip.is_site_local:
                return f"{ip} is a site-local address"
        if any(ip in net for net in self._nets):
            return None
        for kind in ("loopback", "link_local", "multicast", "private", "reserved", "unspecified"):
            if getattr(ip, f"is_{kind}"):
                return f"{ip} is a {kind.replace('_', '-')} address"
        if not ip.is_global:
            return f"{ip} is not a public address"
        return None

    def check_host(self, host: str, port: int) -> list[tuple[Any, ...]]:
        """Resolve ``host``; refuse unless every address may be reached. Returns getaddrinfo entries."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as err:
            raise Refused("dns_error", f"{host}: {err.strerror}") from None
        for info in infos:
            why = self.refusal(ipaddress.ip_address(info[4][0].split("%", 1)[0]))
            if why:
                raise Refused("refused_address", f"{host}: {why}")
        return infos


def _connect(
    policy: FetchPolicy, address: tuple[str, int], timeout: Any, source: Any = None
) -> socket.socket:
    """``socket.create_connection`` that connects only to addresses the policy allows, the very
    addresses it checked (no second DNS look-up between the check and the connect)."""
    host, port = address
    last: OSError | None = None
    for family, type_, proto, _, sockaddr in policy.check_host(host, port):
        sock = socket.socket(family, type_, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                sock.settimeout(timeout)
            if source:
                sock.bind(source)
            sock.connect(sockaddr)
            # connect, headers and body: within the deadline; the body reader of this thread's
            # response keeps the same one, so a body the watchdog cuts short is a timeout, not an end
            _deadline.value = time.monotonic() + policy.deadline
            _watchdog.watch(sock, _deadline.value)
            return sock
        except OSError as err:
            sock.close()
            last = err
    raise last or OSError(f"cannot connect to {host}:{port}")


def _handlers(policy: FetchPolicy) -> list[urllib.request.BaseHandler]:
    def guarded(conn_class: type[http.client.HTTPConnection]) -> type:
        class Guarded(conn_class):  # type: ignore[valid-type, misc]
            def __init__(self, *args: Any, **kwargs: Any):
                super().__init__(*args, **kwargs)
                # http.client connects through this instance attribute (set in __init__)
                self._create_connection = lambda address, timeout=None, source=None: _connect(
                    policy, address, timeout, source
                )

        return Guarded

    GuardedHTTPConnection = guarded(http.client.HTTPConnection)
    GuardedHTTPSConnection = guarded(http.client.HTTPSConnection)

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req):  # type: ignore[override]
            return self.do_open(GuardedHTTPConnection, req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):  # type: ignore[override]
            return self.do_open(GuardedHTTPSConnection, req, context=self._context)

    return [HTTPHandler(), HTTPSHandler(), _BodyGuard(policy)]


class _BodyGuard(urllib.request.BaseHandler):
    """After redirects and HTTP errors are handled: check the final response's type and size, and cap
    what ``read()`` returns."""

    handler_order = 1001  # after HTTPErrorProcessor (1000): 404s stay HTTP errors

    def __init__(self, policy: FetchPolicy):
        self.policy = policy

    def http_response(self, request: urllib.request.Request, response: Any) -> Any:
        if getattr(response, "_loom_guarded", False):  # a redirect's final response comes by twice
            return response
        response._loom_guarded = True
        ctype = (response.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if ctype and not ctype.startswith("image/") and ctype not in IMAGE_TYPES_EXTRA:
            response.close()
            raise Refused("not_image", f"content-type {ctype}")
        length = response.headers.get("Content-Length")
        if length and length.strip().isdigit() and int(length) > self.policy.max_bytes:
            response.close()
            raise Refused("too_large", f"Content-Length {int(length)} > {self.policy.max_bytes}")
        response.read = _capped_reader(response, self.policy)
        return response

    https_response = http_response


def _capped_reader(response: Any, policy: FetchPolicy) -> Any:
    """``response.read`` with a byte cap over the whole body (however it is read) and the deadline of
    the exchange: each read takes what has arrived (``read1``), so a server that drips bytes is cut
    when the deadline passes, not after a full buffer."""
    raw_read = getattr(response, "read1", response.read)
    deadline = _deadline.__dict__.pop("value", None) or time.monotonic() + policy.deadline
    total = 0

    def read(amt: int | None = None) -> bytes:
        nonlocal total
        chunks = []
        while amt is None or not chunks:
            if time.monotonic() > deadline:
                raise Refused("timeout", f"response not read within {policy.deadline:g}s")
            try:
                chunk = raw_read(min(1 << 16, policy.max_bytes + 1 - total, amt or 1 << 16))
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:  # the watchdog cut the connection
                    raise Refused("timeout", f"response not read within {policy.deadline:g}s") from None
                raise
            if not chunk:
                if time.monotonic() > deadline:
                    raise Refused("timeout", f"response not read within {policy.deadline:g}s")
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > policy.max_bytes:
                raise Refused("too_large", f"body larger than {policy.max_bytes} bytes")
        return b"".join(chunks)

    return read


class _Watchdog:
    """Cuts connections that outlive their deadline (one thread for all of them): a socket timeout
    bounds each read, not a server that sends a byte just before every timeout."""

    def __init__(self) -> None:
        self._socks: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket, deadline: float) -> None:
        """Cut ``sock`` once ``time.monotonic()`` passes ``deadline``."""
        with self._lock:
            self._socks[sock] = deadline
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="loom-fetch-watchdog", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            with self._lock:
                due = [s for s, t in self._socks.items() if t < now or s.fileno() == -1]
                for sock in due:
                    del self._socks[sock]
            for sock in due:
                if sock.fileno() != -1:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)


_watchdog = _Watchdog()
#: The deadline of the connection this thread opened last (img2dataset fetches a URL per thread).
_deadline = threading.local()


def build_opener(policy: FetchPolicy) -> urllib.request.OpenerDirector:
    """An opener for http/https only, with no proxies, that enforces ``policy``."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.UnknownHandler(),  # file:, ftp:, data: ... → "unknown url type"
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
        *_handlers(policy),
    ):
        opener.add_handler(handler)
    return opener


_install_lock = threading.Lock()
_active: list[FetchPolicy] = []  # the policies of the guarded blocks open in this process
_outside: urllib.request.OpenerDirector | None = None  # the opener before the first of them
_guard: urllib.request.OpenerDirector | None = None  # the opener they share


@contextlib.contextmanager
def guarded_urlopen(policy: FetchPolicy) -> Iterator[urllib.request.OpenerDirector]:
    """Make ``urllib.request.urlopen`` (what img2dataset calls) enforce ``policy`` inside the block.

    ``urlopen`` has one opener per process, so overlapping blocks (threads fetching at once) share
    one guard: the first block installs it, the last one to leave restores the opener from before
    the first. Blocks with another policy cannot overlap: that raises, rather than weakening one."""
    global _outside, _guard
    with _install_lock:
        if _active and policy != _active[0]:
            raise RuntimeError(
                f"urlopen is already guarded by another fetch policy in this process ({_active[0]}); "
                "fetches with different policies cannot overlap"
            )
        if not _active:
            _outside = urllib.request._opener  # type: ignore[attr-defined]
            _guard = build_opener(policy)
            urllib.request.install_opener(_guard)
        _active.append(policy)
        opener = _guard
    try:
        yield opener  # type: ignore[misc]
    finally:
        with _install_lock:
            _active.pop()
            if not _active:
                urllib.request.install_opener(_outside)  # type: ignore[arg-type]
                _outside = _guard = None
