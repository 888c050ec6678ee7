"""The request guard: what an image request may reach and read."""

from __future__ import annotations

import io
import ipaddress
import threading
import urllib.error
import urllib.request

import pytest

from pipeline.images.guard import FetchPolicy, Refused, _capped_reader, build_opener, guarded_urlopen
from pipeline.images.serve import ImageServer, Route

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "224.0.0.1",
        "0.0.0.0",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:10.0.0.1",
        "240.0.0.1",
        "2002:a9fe:a9fe::1",  # 6to4 around 169.254.169.254
        "fec0::1",
    ],
)
def test_non_public_addresses_are_refused_by_default(address):
    assert FetchPolicy().refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "151.101.1.69", "2606:4700::6810:84e5"])
def test_public_addresses_are_allowed(address):
    assert FetchPolicy().refusal(ipaddress.ip_address(address)) is None


def test_an_allowlist_opens_exactly_its_networks():
    policy = FetchPolicy(allow_networks=["127.0.0.1/32", "10.8.0.0/16"])
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("10.8.3.4")) is None
    assert policy.refusal(ipaddress.ip_address("127.0.0.2")) == "127.0.0.2 is a loopback address"
    assert policy.refusal(ipaddress.ip_address("10.9.0.1")) == "10.9.0.1 is a private address"


@pytest.fixture
def servers():
    """An allowed server on 127.0.0.1 and a second listener on 127.0.0.2, which must never be reached."""
    with ImageServer() as allowed, ImageServer(host="127.0.0.2") as forbidden:
        yield allowed, forbidden


def fetch(url: str, policy: FetchPolicy) -> bytes:
    with build_opener(policy).open(url, timeout=5) as r:
        return r.read()


def test_a_redirect_or_a_name_that_leads_to_a_refused_address_never_reaches_it(servers):
    allowed, forbidden = servers
    policy = FetchPolicy(allow_networks=["127.0.0.1/32"])
    forbidden.routes["/secret"] = Route(200, PNG, {"Content-Type": "image/png"})
    target = f"http://127.0.0.2:{forbidden.port}/secret"
    allowed.routes["/hop"] = Route(302, b"", {"Location": target})
    allowed.routes["/hop-decimal"] = Route(
        302, b"", {"Location": f"http://2130706434:{forbidden.port}/secret"}
    )
    allowed.routes["/hop-mapped"] = Route(
        301, b"", {"Location": f"http://[::ffff:127.0.0.2]:{forbidden.port}/secret"}
    )
    for path in ("/hop", "/hop-decimal", "/hop-mapped"):
        with pytest.raises(
            urllib.error.URLError, match=r"\[loom:refused_address\] .*127\.0\.0\.2 is a loopback"
        ):
            fetch(allowed.url + path, policy)
    with pytest.raises(urllib.error.URLError, match=r"\[loom:refused_address\]"):
        fetch(target, policy)
    with pytest.raises(urllib.error.URLError, match=r"\[loom:refused_address\] localhost: 127\.0\.0\.1"):
        fetch(f"http://localhost:{allowed.port}/x.png", FetchPolicy())  # a name that resolves inward
    assert allowed.requests["/hop"] == allowed.requests["/hop-decimal"] == 1
    assert sum(forbidden.requests.values()) == 0


def test_only_http_and_https_are_fetched(tmp_path):
    (tmp_path / "passwd").write_text("root:x:0:0")
    with pytest.raises(urllib.error.URLError, match="unknown url type: file"):
        fetch(f"file://{tmp_path}/passwd", FetchPolicy())
    with pytest.raises(urllib.error.URLError, match="unknown url type: ftp"):
        fetch("ftp://files.example/a.jpg", FetchPolicy())


def test_content_type_and_size_are_checked(servers):
    server, _ = servers
    policy = FetchPolicy(allow_networks=["127.0.0.1/32"], max_bytes=1000)
    server.routes["/page"] = Route(200, b"<html></html>", {"Content-Type": "text/html; charset=utf-8"})
    server.routes["/big"] = Route(200, b"\xff" * 5000, {"Content-Type": "image/jpeg"})
    server.routes["/ok"] = Route(200, PNG, {"Content-Type": "image/png"})
    server.routes["/octets"] = Route(200, PNG, {"Content-Type": "application/octet-stream"})
    with pytest.raises(Refused, match=r"\[loom:not_image\] content-type text/html"):
        fetch(server.url + "/page", policy)
    with pytest.raises(Refused, match=r"\[loom:too_large\] Content-Length 5000 > 1000"):
        fetch(server.url + "/big", policy)
    assert fetch(server.url + "/ok", policy) == PNG
    assert fetch(server.url + "/octets", policy) == PNG


def test_urlopen_is_guarded_only_inside_the_block(servers):
    server, _ = servers
    server.routes["/ok"] = Route(200, PNG, {"Content-Type": "image/png"})
    with guarded_urlopen(FetchPolicy()):
        with pytest.raises(urllib.error.URLError, match="refused_address"):
            urllib.request.urlopen(server.url + "/ok", timeout=5)
    with urllib.request.urlopen(server.url + "/ok", timeout=5) as r:  # the default opener again
        assert r.read() == PNG


def test_overlapping_guarded_blocks_keep_the_guard_until_the_last_one_leaves(servers):
    """Two threads fetch at once: the first to finish must not switch the guard off for the other."""
    server, _ = servers
    server.routes["/ok"] = Route(200, PNG, {"Content-Type": "image/png"})
    policy = FetchPolicy()  # 127.0.0.1 is not allowed
    first_in, first_out = threading.Event(), threading.Event()
    seen: list[str] = []

    def first() -> None:
        with guarded_urlopen(policy):
            first_in.set()
            first_out.wait(10)

    def second() -> None:
        first_in.wait(10)
        with guarded_urlopen(FetchPolicy(allow_networks=[])):  # an equal policy: they share the guard
            first_out.set()
            thread.join(10)  # the first block has left
            try:
                urllib.request.urlopen(server.url + "/ok", timeout=5)
                seen.append("fetched")
            except urllib.error.URLError as err:
                seen.append(str(err))

    thread = threading.Thread(target=first)
    other = threading.Thread(target=second)
    thread.start()
    other.start()
    other.join(20)
    assert not thread.is_alive() and len(seen) == 1 and "refused_address" in seen[0]
    with urllib.request.urlopen(server.url + "/ok", timeout=5) as r:  # the last one out restored it
        assert r.read() == PNG


def test_blocks_with_different_policies_cannot_overlap():
    with guarded_urlopen(FetchPolicy()):
        with pytest.raises(RuntimeError, match="another fetch policy"):
            with guarded_urlopen(FetchPolicy(allow_networks=["127.0.0.1/32"])):
                pass


def test_a_server_that_drips_its_body_is_cut_at_the_deadline(servers):
    server, _ = servers
    server.routes["/drip"] = Route(200, PNG, {"Content-Type": "image/png"}, drip=0.2)  # 72 bytes: ~14 s
    policy = FetchPolicy(allow_networks=["127.0.0.1/32"], timeout=0.5)  # every read is quick enough
    with pytest.raises(Refused, match=r"\[loom:timeout\] response not read within 1.5s"):
        fetch(server.url + "/drip", policy)


def test_a_body_cut_by_the_watchdog_after_slow_headers_is_a_timeout_not_a_short_image(servers):
    """The headers take 0.6 s of the 1.5 s: the watchdog cuts the connection 1.5 s after the connect,
    and the body reader must see that cut as the deadline, not as the end of a (truncated) body."""
    server, _ = servers
    server.routes["/late-drip"] = Route(200, PNG, {"Content-Type": "image/png"}, delay=0.6, drip=0.2)
    policy = FetchPolicy(allow_networks=["127.0.0.1/32"], timeout=0.5)
    with pytest.raises(Refused, match=r"\[loom:timeout\] response not read within 1.5s"):
        fetch(server.url + "/late-drip", policy)


def test_the_byte_cap_holds_over_many_small_reads():
    """img2dataset reads the body in one call; the cap holds however a reader slices it."""
    read = _capped_reader(io.BytesIO(b"\xff" * 5000), FetchPolicy(max_bytes=1000))
    got = [read(100) for _ in range(10)]
    assert sum(map(len, got)) == 1000
    with pytest.raises(Refused, match=r"\[loom:too_large\] body larger than 1000 bytes"):
        read(100)
    assert _capped_reader(io.BytesIO(b"\xff" * 800), FetchPolicy(max_bytes=1000))() == b"\xff" * 800
