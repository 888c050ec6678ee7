"""The plan of the demo corpus: every capture it holds, decided before a byte is written.

``demo_plan(pages, seed)`` decides everything the corpus holds (which captures, their URLs, HTTP
status, charset, article text and images in reading order, the PNG image records); it is pure, so
tests and later pipeline stages can ask it what to expect.

What a corpus of ``pages`` captures holds (for 120: 64/28/6/4/4/2 and 5 to drop):

* articles with images in the main content (the rest, ~58%), text-only articles (~25%);
* pages served as ``charset=iso-8859-1`` in the HTTP header and encoded so (~5%), pages whose
  charset is only in ``<meta charset>`` (~3%, alternately utf-8 and windows-1252);
* near-duplicates (an article syndicated on another site with small edits) and exact duplicates
  (the same bytes at a URL with tracking parameters);
* captures the pipeline must drop: a 404, a 301, non-HTML (application/pdf, text/plain), an
  empty 200 — and on top of ``pages``, ``image/png`` captures of images the articles reference;
* pages the filters must drop or redact (``jobs/demo/filters.py``): a German article, a page of
  one teaser repeated, gambling and adult spam, an article with an e-mail address and a public IP,
  and text-only articles that quote a question of the demo's benchmark (taken from the text-only
  articles' share, so the other pages stay where they were).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from jobs.demo.filters import (
    ADULT_SPAM,
    CONTACT_IP,
    GAMBLING_SPAM,
    GERMAN_SENTENCES,
    SPAM_SITES,
    benchmark_quote,
)
from jobs.demo.pages import (
    CRAWL_START,
    FIRST_NAMES,
    IMAGE_HOST,
    SITES,
    SURNAMES,
    Article,
    PlannedImage,
    Prose,
    Site,
    demo_rng,
    edit_article,
    make_article,
    page_url,
    slug,
)

MIN_PAGES = 20


class Kind(StrEnum):
    """What a capture is, and so what the pipeline should do with it."""

    IMAGES = "article_with_images"
    TEXT = "article_text_only"
    LATIN1 = "latin1_http_charset"
    META_CHARSET = "meta_charset_only"
    NEAR_DUPLICATE = "near_duplicate"
    EXACT_DUPLICATE = "exact_duplicate"
    NOT_FOUND = "http_404"
    REDIRECT = "http_301"
    NON_HTML = "non_html"
    EMPTY = "empty_body"
    IMAGE = "image"
    FOREIGN = "foreign_language"  # a German article: the language filter drops it (allowed = en)
    BOILERPLATE = "boilerplate"  # one teaser paragraph repeated: the Gopher repetition rules drop it
    SPAM = "spam"  # a gambling site on the demo blocklist, or adult spam the demo lexicon flags
    CONTACT = "contact_details"  # an article ending in an e-mail address and a public IP: redacted
    CONTAMINATED = "contaminated"  # a text-only article quoting a benchmark question: decontaminated


#: Captures that should become documents (before filtering and deduplication).
DOCUMENT_KINDS = frozenset(
    {
        Kind.IMAGES,
        Kind.TEXT,
        Kind.LATIN1,
        Kind.META_CHARSET,
        Kind.NEAR_DUPLICATE,
        Kind.EXACT_DUPLICATE,
        Kind.FOREIGN,
        Kind.BOILERPLATE,
        Kind.SPAM,
        Kind.CONTACT,
        Kind.CONTAMINATED,
    }
)
#: Documents the filters step drops: by language, repetition, URL blocklist, lexicon or
#: decontamination.
FILTERED_KINDS = frozenset({Kind.FOREIGN, Kind.BOILERPLATE, Kind.SPAM, Kind.CONTAMINATED})
#: Captures the extractor must drop (status, content type, empty body) — image records included.
DROPPED_KINDS = frozenset(Kind) - DOCUMENT_KINDS


@dataclass(frozen=True)
class PngSpec:
    """A generated PNG: horizontal bands of palette colours with a vertical stripe."""

    width: int
    height: int
    palette: tuple[tuple[int, int, int], ...]
    band: int


@dataclass(frozen=True)
class Capture:
    """One fetch: a request record and a response record in the WARC."""

    kind: Kind
    url: str
    status: int
    content_type: str  # the HTTP Content-Type header value
    charset: str | None = None  # what the body is encoded in (None: binary or empty)
    meta_charset: str | None = None  # what <meta charset> says, when the page has one
    site: Site | None = None
    article: Article | None = field(default=None, repr=False)
    duplicate_of: str | None = None  # the source URL of a near or exact duplicate
    location: str | None = None  # the Location of a redirect
    png: PngSpec | None = None  # the body of an image capture

    @property
    def images(self) -> tuple[PlannedImage, ...]:
        return self.article.images if self.article else ()

    @property
    def is_document(self) -> bool:
        return self.kind in DOCUMENT_KINDS


@dataclass(frozen=True)
class DemoPlan:
    pages: int
    seed: int
    captures: tuple[Capture, ...] = field(repr=False)

    def kind_counts(self) -> dict[str, int]:
        """Captures per ``Kind`` value, every kind listed."""
        counts = Counter(c.kind for c in self.captures)
        return {k.value: counts[k] for k in Kind}

    def status_counts(self) -> dict[int, int]:
        return dict(sorted(Counter(c.status for c in self.captures).items()))

    def record_counts(self) -> dict[str, int]:
        """WARC records per WARC-Type the built file holds."""
        n = len(self.captures)
        return {"warcinfo": 1, "request": n, "response": n}

    def by_kind(self, kind: Kind) -> list[Capture]:
        return [c for c in self.captures if c.kind == kind]

    def documents(self) -> list[Capture]:
        """The captures the pipeline should turn into documents (duplicates included)."""
        return [c for c in self.captures if c.is_document]


def _kind_counts(pages: int) -> dict[Kind, int]:
    drop = max(1, round(pages / 120))
    contaminated = max(1, round(pages / 60))
    counts = {
        # the contaminated articles are text-only articles that quote the benchmark: counted right
        # after them, they take the last text-only articles' places in the shuffle
        Kind.TEXT: round(pages * 0.25) - contaminated,
        Kind.CONTAMINATED: contaminated,
        Kind.LATIN1: max(1, round(pages * 0.05)),
        Kind.META_CHARSET: max(1, round(pages * 0.03)),
        Kind.NEAR_DUPLICATE: max(2, round(pages * 0.03)),
        Kind.EXACT_DUPLICATE: max(1, round(pages * 0.015)),
        Kind.NOT_FOUND: drop,
        Kind.REDIRECT: drop,
        Kind.NON_HTML: 2 * drop,
        Kind.EMPTY: drop,
        Kind.FOREIGN: drop,
        Kind.BOILERPLATE: drop,
        Kind.SPAM: max(1, round(pages / 60)),  # even ordinals gambling, odd ones adult spam
        Kind.CONTACT: drop,
    }
    counts[Kind.IMAGES] = pages - sum(counts.values())
    return counts


def _kind_sequence(pages: int, seed: int) -> list[Kind]:
    """Page kinds in crawl order; duplicates come after an article they can copy."""
    counts = _kind_counts(pages)
    dups = [Kind.NEAR_DUPLICATE] * counts.pop(Kind.NEAR_DUPLICATE)
    dups += [Kind.EXACT_DUPLICATE] * counts.pop(Kind.EXACT_DUPLICATE)
    kinds = [k for k, n in counts.items() for _ in range(n)]
    rng = demo_rng(seed, "kinds")
    rng.shuffle(kinds)
    first_source = min(i for i, k in enumerate(kinds) if k in (Kind.IMAGES, Kind.TEXT))
    for dup in dups:
        kinds.insert(rng.randint(max(first_source + 1, len(kinds) // 2), len(kinds)), dup)
    return kinds


def _png_spec(rng: random.Random, width: int, height: int) -> PngSpec:
    palette = tuple(
        (rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(rng.randint(2, 4))
    )
    return PngSpec(width, height, palette, band=rng.randint(8, max(9, height // 3)))


def _article_capture(kind: Kind, index: int, seed: int, ordinal: int) -> Capture:
    """An article page; ``ordinal`` counts earlier captures of the same kind."""
    rng = demo_rng(seed, "page", index)
    text_rng = demo_rng(seed, "article", index)
    site = rng.choice(SITES)
    title = Prose(text_rng).title()
    url = page_url(rng, site, index, title)
    with_images = kind == Kind.IMAGES or (kind in (Kind.LATIN1, Kind.META_CHARSET) and rng.random() < 0.5)
    n_images = rng.randint(1, 4) if with_images else 0
    base_href = f"{IMAGE_HOST}/{site.slug}/" if with_images and rng.random() < 0.25 else None
    charset, meta, content_type = "utf-8", "utf-8", f"text/html; charset={rng.choice(['utf-8', 'UTF-8'])}"
    accents, fancy = rng.random() < 0.15, rng.random() < 0.3
    if kind == Kind.LATIN1:
        charset, meta, accents, fancy = "iso-8859-1", None, True, False
        content_type = f"text/html; charset={rng.choice(['iso-8859-1', 'ISO-8859-1'])}"
    elif kind == Kind.META_CHARSET:
        charset = meta = "windows-1252" if ordinal % 2 else "utf-8"
        content_type, accents, fancy = "text/html", True, True
    article = make_article(text_rng, title, site, url, n_images, accents, fancy, base_href)
    if kind == Kind.CONTACT:
        contact = f"Send tips to newsroom@{site.slug}.example or to our archive server at {CONTACT_IP}."
        article = replace(article, blocks=(*article.blocks, contact))
    elif kind == Kind.CONTAMINATED:  # the quiz column goes after the second paragraph
        at = min(2, len(article.blocks))
        article = replace(
            article, blocks=(*article.blocks[:at], benchmark_quote(ordinal), *article.blocks[at:])
        )
    return Capture(kind, url, 200, content_type, charset, meta, site, article)


def _filtered_capture(kind: Kind, index: int, seed: int, ordinal: int) -> Capture:
    """A page the filters step drops (see ``Kind``): plain text, no images."""
    rng = demo_rng(seed, "page", index)
    published = (CRAWL_START - timedelta(days=rng.randint(2, 400))).date()
    if kind == Kind.FOREIGN:
        site = rng.choice(SITES)
        paragraphs = [" ".join(rng.sample(GERMAN_SENTENCES, 3)) for _ in range(4)]
        title = "Neuigkeiten aus der Stadt"
    elif kind == Kind.BOILERPLATE:
        site = rng.choice(SITES)
        teaser = f"Read more stories like this one in the {site.name} archive, updated every morning."
        prose = Prose(demo_rng(seed, "article", index))
        paragraphs = [prose.paragraph(4, 5), *[teaser] * 10]
        title = "More Stories From Our Archive"
    else:
        site = SPAM_SITES[ordinal % 2]
        prose = Prose(demo_rng(seed, "article", index))  # spam pads itself with ordinary text
        paragraphs = [*(GAMBLING_SPAM if ordinal % 2 == 0 else ADULT_SPAM), prose.paragraph(4, 5)]
        title = (
            "Win Big at the Lucky Jackpot Tables Tonight"
            if ordinal % 2 == 0
            else "Hot Singles Want to Meet You Tonight"
        )
    url = f"{site.origin}/{rng.choice(site.sections)}/{slug(title)}-{1000 + index}"
    author = f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"
    article = Article(title, author, published, urlsplit(url).path.split("/")[1], tuple(paragraphs))
    return Capture(kind, url, 200, "text/html; charset=utf-8", "utf-8", "utf-8", site, article)


def _duplicate_capture(kind: Kind, index: int, seed: int, source: Capture) -> Capture:
    rng = demo_rng(seed, "page", index)
    assert source.article is not None and source.site is not None
    if kind == Kind.EXACT_DUPLICATE:
        sep = "&" if "?" in source.url else "?"
        url = f"{source.url}{sep}utm_source=newsletter&utm_medium=email&utm_campaign=weekly-{index}"
        return replace(source, kind=kind, url=url, duplicate_of=source.url)
    site = rng.choice([s for s in SITES if s != source.site])
    path = urlsplit(source.url).path.rsplit("/", 1)[-1].removesuffix(".html")
    url = f"{site.origin}/{rng.choice(site.sections)}/syndicated/{path}"
    article = edit_article(source.article, rng)
    return replace(source, kind=kind, url=url, site=site, article=article, duplicate_of=source.url)


def _dropped_capture(kind: Kind, index: int, seed: int, ordinal: int, targets: Sequence[str]) -> Capture:
    """A capture to drop; non-HTML ones alternate PDF and plain text by ``ordinal``."""
    rng = demo_rng(seed, "page", index)
    site = rng.choice(SITES)
    section = rng.choice(site.sections)
    if kind == Kind.NOT_FOUND:
        url = f"{site.origin}/{section}/{rng.randint(2015, 2021)}/removed-story-{1000 + index}"
        return Capture(kind, url, 404, "text/html; charset=utf-8", "utf-8", "utf-8", site)
    if kind == Kind.REDIRECT:
        url = f"{site.origin}/story.php?id={1000 + index}"
        location = rng.choice(targets) if targets else f"{site.origin}/"
        return Capture(kind, url, 301, "text/html; charset=utf-8", "utf-8", site=site, location=location)
    if kind == Kind.EMPTY:
        url = f"{site.origin}/{section}/live-updates-{1000 + index}"
        return Capture(kind, url, 200, "text/html; charset=utf-8", site=site)
    if ordinal % 2 == 0:
        url = f"{site.origin}/files/annual-report-{1000 + index}.pdf"
        return Capture(kind, url, 200, "application/pdf", site=site)
    url = f"{site.origin}/{section}/notes-{1000 + index}.txt"
    return Capture(kind, url, 200, "text/plain; charset=utf-8", "utf-8", site=site)


def _image_captures(page: Capture, seed: int, seen: set[str]) -> list[Capture]:
    """image/png captures for some images the page references (each URL once)."""
    found = []
    for image in page.images:
        rng = demo_rng(seed, "image", image.url)
        if rng.random() >= 0.35:
            continue
        url, width, height = image.url, image.width or 640, image.height or 427
        if image.srcset_urls and rng.random() < 0.5:  # the crawler fetched the largest candidate
            url, width, height = image.srcset_urls[-1], 2 * width, 2 * height
        if url not in seen:
            seen.add(url)  # membership only; the order comes from the pages
            found.append(Capture(Kind.IMAGE, url, 200, "image/png", png=_png_spec(rng, width, height)))
    return found


def demo_plan(pages: int = 120, seed: int = 0) -> DemoPlan:
    """Everything the demo corpus for ``(pages, seed)`` holds, in crawl order.

    ``pages`` counts the HTML-ish captures (articles, duplicates, and the 404/301/non-HTML/empty
    ones to drop); the image/png captures come on top, each right after the first page using it.
    """
    if pages < MIN_PAGES:
        raise ValueError(f"pages must be at least {MIN_PAGES}, got {pages}")
    captures: list[Capture] = []
    sources: list[Capture] = []  # articles a duplicate may copy (or a redirect point at)
    duplicated: list[str] = []
    seen_images: set[str] = set()
    ordinals: Counter[Kind] = Counter()
    for index, kind in enumerate(_kind_sequence(pages, seed)):
        ordinal = ordinals[kind]
        ordinals[kind] += 1
        if kind in (Kind.NEAR_DUPLICATE, Kind.EXACT_DUPLICATE):
            rng = demo_rng(seed, "source", index)
            fresh = [s for s in sources if s.url not in duplicated]
            source = rng.choice(fresh or sources)
            if source.kind == Kind.CONTAMINATED:  # a copy would quote the benchmark too: the next one
                source = next(s for s in [*fresh, *sources] if s.kind != Kind.CONTAMINATED)
            duplicated.append(source.url)
            capture = _duplicate_capture(kind, index, seed, source)
        elif kind in (Kind.NOT_FOUND, Kind.REDIRECT, Kind.NON_HTML, Kind.EMPTY):
            capture = _dropped_capture(kind, index, seed, ordinal, [s.url for s in sources])
        elif kind in (Kind.FOREIGN, Kind.BOILERPLATE, Kind.SPAM):
            capture = _filtered_capture(kind, index, seed, ordinal)
        else:
            capture = _article_capture(kind, index, seed, ordinal)
            if kind in (Kind.IMAGES, Kind.TEXT, Kind.CONTAMINATED):
                sources.append(capture)
        captures.append(capture)
        captures.extend(_image_captures(capture, seed, seen_images))
    return DemoPlan(pages, seed, tuple(captures))
