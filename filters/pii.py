"""PII redaction: e-mail addresses and public IP addresses in kept text become placeholders.

A web corpus repeats contact addresses and server IPs that a model should not learn to recite.
FineWeb and datatrove's ``PIIFormatter`` replace e-mail addresses and public IPv4 addresses; Loom
does the same, with IPv6 too, and with rules against the false positives a bare regex brings.
It never drops a document: it edits every text block and pair caption, last of all filters (the
other filters judge the original text), and counts what it replaced (``counters["pii_email"]``,
``counters["pii_ip"]``).

Rules (in this order: e-mail addresses, IPv6, IPv4):

* an e-mail address is ``local@domain.tld``: an ASCII local part of letters, digits and ``. _ % + -``
  (not ``/ = ?``, so a URL holding an address keeps its path), a domain of at least two labels whose
  last is 2–24 letters and not a file extension (``logo@2x.png`` is an image name, not an address);
  obfuscated (``name [at] example [dot] com``) and non-ASCII addresses are not found;
* an IP address is redacted only when it is public (``ipaddress``'s ``is_global``): private,
  loopback, link-local, shared, reserved and documentation ranges stay (``192.168.1.1``,
  ``127.0.0.1``, ``192.0.2.1``, ``2001:db8::1``). An IPv6 address must moreover be global unicast
  (``2000::/3``, the only range the IANA allocates; this keeps ``dead::beef`` and C++'s ``::``) or an
  IPv4-mapped public one;
* an IPv4 address is exactly four dot-separated numbers 0–255 without leading zeros, standing
  alone: not part of a longer dotted run (the version ``1.2.3.4.5``, the OID ``1.3.6.1.4.1``), not
  inside a word, and not right after a version word (``version``, ``ver``, ``v``, ``release``,
  ``build``, ``firmware``, ``update``, ``rev``): ``v1.2.3.4`` and ``version 2.0.0.1`` stay. Dates
  (``12.05.2020``, ``2020.08.13``) and browser builds (``84.0.4147.105``) are not four numbers
  ≤ 255 and never match. A bare four-part version that is also a public address (``3.11.4.1``)
  cannot be told apart and is redacted.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections import Counter

import pyarrow as pa

from filters.base import block_texts, edit_blocks
from filters.config import PiiConfig
from pipeline.stage import Resources

log = logging.getLogger(__name__)

#: Top-level "domains" that are file extensions: ``name@2x.png`` is a retina image, not an address.
FILE_EXTENSIONS = frozenset(
    "png jpg jpeg gif webp svg bmp ico tif tiff avif heic css js json html htm php xml pdf txt zip".split()
)

#: Words after which a dotted quad is a version number, not an address.
VERSION_WORDS = ("version", "ver", "v", "release", "build", "firmware", "update", "rev")

_EMAIL = re.compile(
    r"(?<![\w.%+-])"  # the local part starts at a boundary (not mid-word, not after '.')
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
    r"@"
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24}))"
    r"(?![\w-]|\.[A-Za-z0-9])"  # the domain ends here
)

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(
    r"(?<![\w.])"  # not inside a word or a longer dotted run
    rf"({_OCTET}(?:\.{_OCTET}){{3}})"
    r"(?![\w]|\.\d)"
)
#: A version word right before a position (searched with ``endpos`` at the candidate address).
_VERSION_BEFORE = re.compile(rf"(?<!\w)(?:{'|'.join(VERSION_WORDS)})\.?[\s:=]*$", re.IGNORECASE)

_IPV6 = re.compile(
    r"(?<![\w:.])"
    # groups and colons, then a last group or a dotted IPv4 tail (tried first: ::ffff:8.8.8.8)
    r"((?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?)"
    r"(?![\w:]|\.\d)"
)


def _public_ipv6(candidate: str) -> bool:
    try:
        addr = ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_global
    return addr.is_global and (addr.packed[0] & 0xE0) == 0x20


def _public_ipv4(candidate: str) -> bool:
    try:
        return ipaddress.IPv4Address(candidate).is_global
    except ValueError:
        return False


class Redactor:
    """Replaces e-mail addresses and public IP addresses in a text, counting them."""

    def __init__(self, email: str, ip: str):
        self.email = email
        self.ip = ip

    def redact(self, text: str) -> tuple[str, int, int]:
        """(the redacted text, e-mail addresses replaced, IP addresses replaced)."""
        emails = ips = 0
        if "@" in text:
            text, emails = self._emails(text)
        if ":" in text:
            text, n = self._ipv6(text)
            ips += n
        if "." in text:
            text, n = self._ipv4(text)
            ips += n
        return text, emails, ips

    def _emails(self, text: str) -> tuple[str, int]:
        n = 0

        def replace(m: re.Match[str]) -> str:
            nonlocal n
            if m.group(2).lower() in FILE_EXTENSIONS:
                return m.group(0)
            n += 1
            return self.email

        return _EMAIL.sub(replace, text), n

    def _ipv6(self, text: str) -> tuple[str, int]:
        n = 0

        def replace(m: re.Match[str]) -> str:
            nonlocal n
            if not _public_ipv6(m.group(1)):
                return m.group(0)
            n += 1
            return self.ip

        return _IPV6.sub(replace, text), n

    def _ipv4(self, text: str) -> tuple[str, int]:
        n = 0

        def replace(m: re.Match[str]) -> str:
            nonlocal n
            after_version_word = _VERSION_BEFORE.search(text, max(0, m.start() - 16), m.start())
            if after_version_word or not _public_ipv4(m.group(1)):
                return m.group(0)
            n += 1
            return self.ip

        return _IPV4.sub(replace, text), n


class RedactPii:
    """Stage: redacts e-mail and public IP addresses in every text block and caption (never drops);
    counts them in ``counters["pii_email"]`` and ``counters["pii_ip"]``. Off when not enabled."""

    name = "pii"
    resources = Resources(cpus=1)

    def __init__(self, cfg: PiiConfig):
        self.cfg = cfg
        self.redactor = Redactor(cfg.email, cfg.ip)
        self.counters: Counter = Counter()

    def __call__(self, table: pa.Table) -> pa.Table:
        if not self.cfg.enabled or not table.num_rows:
            return table
        docs = block_texts(table)
        emails = ips = 0
        new_docs: list[list[str | None]] = []
        for blocks in docs:
            new_blocks: list[str | None] = []
            for block in blocks:
                if block:
                    block, n_email, n_ip = self.redactor.redact(block)
                    emails += n_email
                    ips += n_ip
                new_blocks.append(block)
            new_docs.append(new_blocks)
        self.counters["pii_email"] += emails
        self.counters["pii_ip"] += ips
        if not emails and not ips:
            return table
        return edit_blocks(table, new_docs, None)
