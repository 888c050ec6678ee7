"""The URL blocklist: pages (and pair images) from sites listed as adult, gambling, … are dropped.

A URL list is the cheapest filter there is (no text is read), and it catches what text filters miss:
a gambling page whose text is a lottery table, a porn site whose extracted text is a copyright line.
RefinedWeb (Penedo et al. 2023) and FineWeb drop URLs on the UT1 blocklist (Université Toulouse 1
Capitole, https://dsi.ut-capitole.fr/blacklists/) this way; Loom reads the same format.

The UT1 format (:class:`Blocklist`): a folder per category (``adult``, ``gambling``, …), each with
a ``domains`` file (one host per line: a domain or an IP address) and a ``urls`` file (one
``host/path`` per line); either may be missing, and either may be gzipped (``domains.gz``, as the
full adult list is). Lines are lowercased; blank lines and ``#`` comments are skipped. The
``expressions`` / ``very_restrictive_expression`` regex files are not read: UT1 itself calls them very
restrictive (they block any URL with "sex", "teen" or "mature" between separators), so they would
drop far more than the listed sites.

Matching (:meth:`Blocklist.match`), scheme, port, user info and a leading ``www.`` ignored, case-
insensitive:

* a listed domain matches its host and every subdomain (``a.b.example.com`` matches ``example.com``,
  ``notexample.com`` does not); a listed IP address matches that IP host only;
* a listed ``host/path`` matches URLs on that host whose path is the listed one or lies under it:
  the listed path must end at a boundary of the URL (its end, or ``/ ? # ; &`` next), so
  ``example.com/sk`` matches ``/sk/page`` and ``/sk?x`` but not ``/skirts``;
* categories are tried in the configured order: the first that lists the URL names the drop.

Memory and time: a dict of Python strings, about 105 bytes per listed domain (measured with
``tracemalloc`` on the 40k domains of six UT1 categories), so ~105 MB per million domains and ~0.5 GB
per worker for the full UT1 adult list (~4.6M domains); reading takes ~4 s per million lines. A
lookup walks the host's parent domains: ~10 µs per URL.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import pyarrow as pa

from filters.base import mark_drops, meta_values, with_meta
from filters.config import UrlBlocklistConfig
from pipeline.stage import Resources

log = logging.getLogger(__name__)

#: The characters that may follow a listed path in a URL it matches.
PATH_BOUNDARY = "/?#;&"

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


def split_url(url: str) -> tuple[str, str]:
    """(host, path) of ``url``, lowercased: no scheme, user info, port, trailing dot or ``www.``;
    the path keeps its query (``/a?b=c``) and is ``""`` for a bare host."""
    rest = _SCHEME.sub("", url.strip().lower(), count=1)
    if rest.startswith("//"):
        rest = rest[2:]
    cut = len(rest)
    for mark in "/?#":
        at = rest.find(mark)
        if at != -1:
            cut = min(cut, at)
    host, path = rest[:cut], rest[cut:]
    host = host.rsplit("@", 1)[-1]
    if host.startswith("["):  # an IPv6 literal, [::1]:8080
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif ":" in host:
        host = host.split(":", 1)[0]
    host = host.rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    return host, path


def _suffixes(host: str) -> Iterator[str]:
    """The host and each parent domain of it (an IP address, or a name ending in a number: itself)."""
    yield host
    if ":" in host or host.rsplit(".", 1)[-1].isdigit():  # IPv6, IPv4 or 1.178.128.25.172
        return
    at = host.find(".")
    while at != -1:
        host = host[at + 1 :]
        yield host
        at = host.find(".")


def _lines(folder: Path, name: str) -> Iterator[str]:
    """The entries of ``folder/name`` (or ``name.gz``), lowercased; nothing when neither exists."""
    plain, packed = folder / name, folder / f"{name}.gz"
    if plain.is_file():
        f = plain.open(encoding="utf-8", errors="replace")
    elif packed.is_file():
        f = gzip.open(packed, "rt", encoding="utf-8", errors="replace")
    else:
        return
    with f:
        for line in f:
            entry = line.strip().lower()
            if entry and not entry.startswith("#"):
                yield entry


class Blocklist:
    """Listed domains and URL prefixes of some UT1 categories, in a fixed order of precedence."""

    def __init__(
        self, categories: list[str], domains: dict[str, int], urls: dict[str, list[tuple[str, int, str]]]
    ):
        self.categories = categories
        self.domains = domains  # domain → index of the first category listing it
        self.urls = urls  # host → [(path prefix, category index, the entry as listed)]

    @classmethod
    def load(cls, root: str, categories: list[str]) -> Blocklist:
        """The ``categories`` of the UT1 folder ``root`` (only their folders are read); read once
        per process for the same arguments."""
        return _load(str(root), tuple(categories))

    @classmethod
    def read(cls, root: str, categories: list[str]) -> Blocklist:
        """Read the lists (no cache; :meth:`load` is the cached way)."""
        domains: dict[str, int] = {}
        urls: dict[str, list[tuple[str, int, str]]] = {}
        for index, name in enumerate(categories):
            folder = Path(root) / name
            if not folder.is_dir():
                raise FileNotFoundError(f"blocklist category {name!r} not found: {folder}")
            n_before = len(domains) + sum(map(len, urls.values()))
            for entry in _lines(folder, "domains"):
                if "/" in entry:
                    cls._add_url(urls, entry, index)
                else:
                    domains.setdefault(split_url(entry)[0], index)
            for entry in _lines(folder, "urls"):
                cls._add_url(urls, entry, index)
            if len(domains) + sum(map(len, urls.values())) == n_before:
                log.warning("blocklist category %r (%s) holds no new entry", name, folder)
        return cls(list(categories), domains, urls)

    @staticmethod
    def _add_url(urls: dict[str, list[tuple[str, int, str]]], entry: str, index: int) -> None:
        host, path = split_url(entry)
        urls.setdefault(host, []).append((path.rstrip("/"), index, entry))

    def match(self, url: str) -> tuple[str, str] | None:
        """(category, the listed entry) of the first category listing ``url``, or None."""
        if not url:
            return None
        host, path = split_url(url)
        if not host:
            return None
        best: tuple[int, str] | None = None
        for domain in _suffixes(host):  # most specific first: it names the entry on a tie
            index = self.domains.get(domain)
            if index is not None and (best is None or index < best[0]):
                best = (index, domain)
        for prefix, index, entry in self.urls.get(host, ()):
            if best is not None and best[0] <= index:
                continue
            if path == prefix or (path.startswith(prefix) and path[len(prefix)] in PATH_BOUNDARY):
                best = (index, entry)
        if best is None:
            return None
        return self.categories[best[0]], best[1]

    def category(self, url: str) -> str | None:
        """The first configured category that lists ``url`` (domain, subdomain or URL prefix)."""
        found = self.match(url)
        return found[0] if found else None

    def __len__(self) -> int:
        return len(self.domains) + sum(map(len, self.urls.values()))


@lru_cache(maxsize=4)
def _load(root: str, categories: tuple[str, ...]) -> Blocklist:
    blocklist = Blocklist.read(root, list(categories))
    log.info(
        "url blocklist: %d domains, %d URL prefixes from %s (%s)",
        len(blocklist.domains),
        len(blocklist) - len(blocklist.domains),
        root,
        ", ".join(categories),
    )
    return blocklist


class UrlBlocklist:
    """Stage: sets ``meta.url_category`` of every document whose URL (or, for a pair, image URL) a
    configured category lists, and drops it (reason ``url_<category>``, detail the URL and entry).
    The lists load on the first batch, once per process."""

    name = "url_blocklist"
    resources = Resources(cpus=1)

    def __init__(self, cfg: UrlBlocklistConfig):
        self.cfg = cfg

    def __call__(self, table: pa.Table) -> pa.Table:
        if not self.cfg.path or not table.num_rows:
            return table
        blocklist = Blocklist.load(self.cfg.path, self.cfg.categories)
        categories = meta_values(table, "url_category")
        reasons: list[str | None] = []
        details: list[str | None] = []
        rows = zip(
            table["url"].to_pylist(), table["kind"].to_pylist(), table["images"].to_pylist(), strict=True
        )
        for i, (url, kind, images) in enumerate(rows):
            candidates = [url]
            if kind == "pair":
                candidates += [im["url"] for im in images or [] if im and im["url"] and im["url"] != url]
            reason = detail = None
            for candidate in candidates:
                found = blocklist.match(candidate) if candidate else None
                if found:
                    categories[i] = found[0]
                    reason = f"url_{found[0]}"
                    detail = json.dumps(
                        {"url": candidate, "entry": found[1]}, ensure_ascii=False, sort_keys=True
                    )
                    break
            reasons.append(reason)
            details.append(detail)
        if not any(reasons):
            return table
        table = with_meta(table, "url_category", categories)
        return mark_drops(table, reasons, details)
