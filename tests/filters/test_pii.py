"""PII redaction: e-mail and public IP addresses become placeholders; private addresses, version
numbers, dates and image names stay; the stage edits text blocks and captions and never drops."""

from __future__ import annotations

import pyarrow as pa
import pytest

from filters.config import PiiConfig
from filters.pii import Redactor, RedactPii
from pipeline.schema import DOC_SCHEMA, DROP_REASON, empty_meta

REDACT = Redactor(email="<EMAIL>", ip="<IP>")


@pytest.mark.parametrize(
    ("text", "redacted", "emails"),
    [
        ("Write to John.Smith+news@mail.example.co.uk.", "Write to <EMAIL>.", 1),
        ("Contact: info@example.com, sales@example.org", "Contact: <EMAIL>, <EMAIL>", 2),
        ("https://x.com/p?mail=a@b.org&x=1", "https://x.com/p?mail=<EMAIL>&x=1", 1),  # the URL keeps its path
        ("logo@2x.png and icon@3x.jpg", "logo@2x.png and icon@3x.jpg", 0),  # image names
        ("user@localhost, @handle, a@b", "user@localhost, @handle, a@b", 0),  # no dotted domain
    ],
)
def test_email_addresses(text, redacted, emails):
    assert REDACT.redact(text) == (redacted, emails, 0)


@pytest.mark.parametrize(
    ("text", "redacted", "ips"),
    [
        ("server 93.184.216.34:80 and 8.8.8.8.", "server <IP>:80 and <IP>.", 2),
        ("http://1.1.1.1/dns-query", "http://<IP>/dns-query", 1),
        ("ipv6 2606:4700:4700::1111 and [2001:4860:4860::8888]:53", "ipv6 <IP> and [<IP>]:53", 2),
        ("route 2a00:1450:4001:81c::200e/64", "route <IP>/64", 1),
        ("mapped ::ffff:8.8.8.8", "mapped <IP>", 1),
    ],
)
def test_public_ip_addresses(text, redacted, ips):
    assert REDACT.redact(text) == (redacted, 0, ips)


@pytest.mark.parametrize(
    "text",
    [
        "router 192.168.1.1, LAN 10.0.0.5, localhost 127.0.0.1, CGNAT 100.64.0.1",  # private
        "examples 192.0.2.1 and 203.0.113.5, 2001:db8::1",  # documentation ranges
        "link-local fe80::1, loopback ::1, mapped private ::ffff:192.168.0.1",
        "version 1.2.3.4, v2.0.0.1, Version: 3.1.4.1, build 5.6.7.8, firmware 8.8.8.8",  # versions
        "release 1.2.3.4.5, OID 1.3.6.1.4.1, a1.2.3.4",  # longer dotted runs, inside a word
        "on 12.05.2020 or 2020.08.13, Chrome 84.0.4147.105, 01.02.03.04",  # dates, builds, zeros
        "at 12:30:45, MAC 00:1a:2b:3c:4d:5e, std::vector, dead::beef",  # not global unicast IPv6
    ],
)
def test_what_is_not_a_public_address_stays(text):
    assert REDACT.redact(text) == (text, 0, 0)


def test_a_bare_dotted_quad_that_is_public_is_redacted():
    # a four-part version with no version word in front cannot be told from an address
    assert REDACT.redact("Python 3.11.4.1 ships") == ("Python <IP> ships", 0, 1)


IMAGE = {"url": "https://img.example/a.jpg", "sha256": None, "width": 64, "height": 64, "alt": ""}


def docs() -> pa.Table:
    rows = [
        ("text", ["Mail me: jane@example.com\n\nServer at 8.8.8.8."], [None]),
        ("interleaved", ["Intro.", None, "Ask admin@example.org (LAN 192.168.0.2)."], [None, IMAGE, None]),
        ("pair", [None, "Photo by bob@example.net"], [IMAGE, None]),
        ("text", ["Nothing personal here."], [None]),
    ]
    return pa.Table.from_pylist(
        [
            {"id": str(i), "source": "s", "kind": k, "url": "https://a.example/", "texts": t, "images": im}
            | {"meta": empty_meta()}
            for i, (k, t, im) in enumerate(rows)
        ],
        schema=DOC_SCHEMA,
    )


def test_the_stage_redacts_blocks_and_captions_and_counts():
    stage = RedactPii(PiiConfig(enabled=True))
    out = stage(docs())
    assert out["texts"].to_pylist() == [
        ["Mail me: <EMAIL>\n\nServer at <IP>."],
        ["Intro.", None, "Ask <EMAIL> (LAN 192.168.0.2)."],
        [None, "Photo by <EMAIL>"],
        ["Nothing personal here."],
    ]
    assert out["images"].to_pylist() == docs()["images"].to_pylist()  # images stay in place
    assert DROP_REASON not in out.column_names
    assert stage.counters == {"pii_email": 3, "pii_ip": 1}
    stage(docs().slice(0, 1))
    assert stage.counters == {"pii_email": 4, "pii_ip": 2}  # counts add up until the step resets them


def test_placeholders_come_from_the_config():
    out = RedactPii(PiiConfig(enabled=True, email="[email]", ip="[ip]"))(docs().slice(0, 1))
    assert out["texts"].to_pylist() == [["Mail me: [email]\n\nServer at [ip]."]]


def test_disabled_or_nothing_to_redact_leaves_the_table_as_it_is():
    table = docs()
    assert RedactPii(PiiConfig())(table) is table
    clean = table.slice(3, 1)
    stage = RedactPii(PiiConfig(enabled=True))
    assert stage(clean) is clean
    assert stage.counters == {"pii_email": 0, "pii_ip": 0}
