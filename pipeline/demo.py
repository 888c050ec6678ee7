"""A small, deterministic, Common Crawl-like WARC for ``loom demo`` — no network, no outside files.

``demo_plan(pages, seed)`` decides everything the corpus holds (which captures, their URLs, HTTP
status, charset, article text and images in reading order, the PNG image records); it is pure, so
tests and later pipeline stages can ask it what to expect. ``build_demo_corpus(dest, pages, seed)``
renders that plan to ``dest/demo.warc.gz``: a ``warcinfo`` record, then a ``request`` and a
``response`` record per capture, each record its own gzip member, as Common Crawl writes them.

The same ``(pages, seed)`` always gives a byte-identical file: dates derive from the seed and the
record's position, record ids are name-based UUIDs, every random choice comes from a
``random.Random`` seeded with a string, and gzip headers carry mtime 0.

What a corpus of ``pages`` captures holds (for 120: 69/30/6/4/4/2 and 5 to drop):

* articles with images in the main content (the rest, ~58%), text-only articles (~25%);
* pages served as ``charset=iso-8859-1`` in the HTTP header and encoded so (~5%), pages whose
  charset is only in ``<meta charset>`` (~3%, alternately utf-8 and windows-1252);
* near-duplicates (an article syndicated on another site with small edits) and exact duplicates
  (the same bytes at a URL with tracking parameters);
* captures the pipeline must drop: a 404, a 301, non-HTML (application/pdf, text/plain), an
  empty 200 — and on top of ``pages``, ``image/png`` captures of images the articles reference.

Every page carries boilerplate an extractor has to skip: a cookie banner, header with logo and
``<nav>``, share icons (16x16), a 1x1 tracking pixel, sometimes a ``data:`` image, related links
with thumbnails, a sidebar with an ad, and a footer.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import random
import struct
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from enum import StrEnum
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from fastwarc import GzipWriter, WarcRecord, WarcRecordType

logger = logging.getLogger(__name__)

DEMO_WARC_NAME = "demo.warc.gz"
MIN_PAGES = 20
IMAGE_HOST = "https://img.example"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://loom.example/demo-corpus")
_CRAWL_START = datetime(2024, 2, 20, 6, 0, 0, tzinfo=UTC)
_USER_AGENT = "LoomDemoBot/1.0 (+https://loom.example/demo)"


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
    }
)
#: Documents the filters step drops: by language, repetition, URL blocklist or lexicon.
FILTERED_KINDS = frozenset({Kind.FOREIGN, Kind.BOILERPLATE, Kind.SPAM})
#: Captures the extractor must drop (status, content type, empty body) — image records included.
DROPPED_KINDS = frozenset(Kind) - DOCUMENT_KINDS


# --------------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------------

_NOUNS = """
city council river garden market village school teacher student family harbor bridge library museum
festival farmer harvest season weather storm forest mountain valley island coast community neighbor
project report study researcher scientist engineer system network road train station budget plan
policy decision meeting vote resident visitor business shop restaurant kitchen recipe bakery coffee
book author story history century decade morning evening winter summer autumn light sound music artist
painting exhibition team player match coach field park tree flower bird animal ocean wind software
computer device phone camera photograph result question answer idea problem solution change price cost
company worker factory product customer service hospital doctor patient program course lesson map
journey trail boat ship airport flight hotel street building house window roof wall door table path
volunteer committee survey method sample article editor reader audience theater concert orchestra
lake canal tower square neighborhood farm orchard vineyard cabin workshop studio gallery archive
""".split()

_ADJECTIVES = """
small large quiet busy old new local regional national early late bright dark warm cold careful simple
complex important significant recent modern traditional popular familiar rare common strong gentle
steady sudden gradual public private open narrow wide deep green blue golden northern southern eastern
western rural urban young experienced independent annual weekly final practical useful remarkable
ordinary unusual clear detailed brief long short heavy fresh efficient reliable affordable seasonal
coastal historic generous curious patient ambitious modest crowded empty
""".split()

_VERBS = """
announced described noticed reported explained suggested found built opened closed visited studied
measured improved changed planned shared discovered collected welcomed reviewed approved rejected
expanded reduced increased supported questioned prepared finished started crossed followed carried
painted recorded tested designed repaired restored published celebrated explored organized delivered
protected replaced launched compared considered gathered hosted completed introduced examined
highlighted produced cleaned mapped funded renovated documented photographed surveyed
""".split()

_ADVERBS = """
quickly slowly carefully quietly recently finally eventually already often rarely usually certainly
clearly nearly largely mostly gradually suddenly steadily later again together widely openly briefly
""".split()

_PREPOSITIONS = "in on near across along behind beside through over under around after before during".split()
_CONJUNCTIONS = ["and", "but", "while", "although", "because", "so", "yet", "since", "when"]
_OPENERS = [
    "However",
    "Meanwhile",
    "In the end",
    "At first",
    "For many residents",
    "According to the report",
    "Last year",
    "Earlier this month",
    "In recent years",
    "As a result",
    "For now",
    "Even so",
    "In addition",
    "By the afternoon",
    "Over the weekend",
    "Two years ago",
]
_PLACES = [
    "Millbrook",
    "Eastport",
    "Ashford",
    "Riverside",
    "Cedar Falls",
    "Oakridge",
    "Kingsbridge",
    "Fairhaven",
    "Westmoor",
    "Lakeside",
    "Brookfield",
    "Stonehaven",
]
_NUMBERS = ["two", "three", "four", "five", "six", "twelve", "twenty", "forty", "dozens of", "hundreds of"]
_FIRST_NAMES = [
    "Maria",
    "James",
    "Aisha",
    "Daniel",
    "Sofia",
    "Liam",
    "Hannah",
    "Omar",
    "Grace",
    "Lucas",
    "Emma",
    "Noah",
    "Priya",
    "Samuel",
    "Chloe",
    "Ethan",
    "Nina",
    "Oliver",
    "Zara",
    "Thomas",
]
_SURNAMES = [
    "Lopez",
    "Carter",
    "Nguyen",
    "Patel",
    "Schmidt",
    "Okafor",
    "Brennan",
    "Kowalski",
    "Haddad",
    "Morgan",
    "Fischer",
    "Rossi",
    "Tanaka",
    "Walsh",
    "Bennett",
    "Silva",
    "Hughes",
    "Novak",
    "Reid",
    "Larsen",
]
_ROLES = [
    "a local teacher",
    "the project manager",
    "a spokesperson for the council",
    "a volunteer",
    "a researcher at the university",
    "the owner of a small bakery",
    "a longtime resident",
    "the head of the regional office",
]
#: Non-ASCII sentences that encode in ISO-8859-1 (and so in windows-1252 and UTF-8).
_LATIN1_SENTENCES = [
    "At the café by the harbor, the owner served crème brûlée to a naïve but curious crowd.",
    "The façade of the old hall, restored last year, gave visitors a strong sense of déjà vu.",
    "José Núñez, who moved here from São Paulo, described the buffet as a true smörgåsbord.",
    "Tickets cost £12, and the programme notes were written by Zoë Müller.",
    "Critics praised the exposé as a rare piece of patient reporting.",
    "The coördinator handed over her résumé before the meeting in Zürich.",
]
#: Sentences that need windows-1252 or UTF-8 (euro sign, curly quotes, dashes).
_FANCY_SENTENCES = [
    "The new menu costs €8 per person — a bargain, according to “regulars”.",
    "“It’s not finished yet,” the architect said… and then she smiled.",
]


@dataclass(frozen=True)
class Site:
    slug: str
    name: str
    sections: tuple[str, ...]
    server: str

    @property
    def origin(self) -> str:
        return f"https://{self.slug}.example"


_SITES = (
    Site("harborview-news", "Harborview News", ("local", "business", "culture", "weather"), "nginx/1.24.0"),
    Site("greenfield-times", "Greenfield Times", ("news", "farming", "opinion", "sport"), "Apache/2.4.58"),
    Site("northwind-review", "Northwind Review", ("essays", "books", "science", "travel"), "cloudflare"),
    Site("city-herald", "City Herald", ("city", "transport", "housing", "arts"), "nginx/1.25.3"),
    Site("openkitchen", "Open Kitchen", ("recipes", "guides", "seasonal", "stories"), "Apache/2.4.57"),
    Site("travelnotes", "Travel Notes", ("europe", "coast", "mountains", "tips"), "nginx/1.22.1"),
    Site("sciencebrief", "Science Brief", ("research", "climate", "space", "health"), "cloudflare"),
    Site("lakeshore-post", "Lakeshore Post", ("community", "schools", "events", "outdoors"), "openresty"),
)


#: The spam sites: a gambling site on the demo blocklist (a subdomain of the listed domain) and an
#: adult spam site whose pages hold words of the demo lexicon.
SPAM_SITES = (
    Site("casino.lucky-jackpot", "Lucky Jackpot Casino", ("slots", "poker"), "nginx/1.24.0"),
    Site("free-videos-hub", "Free Videos Hub", ("videos", "chat"), "nginx/1.24.0"),
)
#: The demo's URL blocklist (UT1 layout: category/domains) and lexicon (LDNOOBW layout: one file per
#: language), written beside the WARC by ``build_demo_filters``.
DEMO_BLOCKLIST = {"gambling": ["lucky-jackpot.example"], "adult": ["adult-only.example"]}
DEMO_LEXICON = {"en": ["xxx", "porn", "nude", "hot singles"]}
#: A public address (example.com's) for the redaction of the contact page.
CONTACT_IP = "93.184.215.14"

_GAMBLING_SPAM = (
    "Spin the reels at Lucky Jackpot Casino tonight and claim your welcome bonus of two hundred free "
    "spins, with no deposit needed and instant payouts to your card.",
    "Our poker tables never close, the jackpot grows every minute, and new players get a matched "
    "deposit up to one thousand dollars when they sign up today.",
    "Join thousands of winners who play slots, roulette and blackjack from their phones, and cash out "
    "whenever luck is on their side.",
)
_ADULT_SPAM = (
    "Hot singles are waiting to chat with you right now, and every profile comes with free xxx "
    "videos and nude photos that update all day long.",
    "The best porn clips of the week are free for members, so sign up in one minute and watch as "
    "many xxx videos as you like on any device.",
    "Meet hot singles near you tonight: no credit card, no limits, just nude pictures and private "
    "chat rooms that never close.",
)
#: German sentences for the foreign-language page (Loom's own, written for the demo).
_GERMAN_SENTENCES = [
    "Der Stadtrat hat am Montag beschlossen, die alte Brücke über den Fluss im nächsten Jahr zu erneuern.",
    "Viele Bewohner der Altstadt freuen sich über den neuen Wochenmarkt, der jeden Samstag stattfindet.",
    "Die Schule am Hafen bekommt endlich eine größere Bibliothek und einen modernen Computerraum.",
    "Nach einem langen Winter öffnen die Cafés am See wieder ihre Terrassen für die Gäste.",
    "Im Museum zeigt eine Ausstellung Gemälde und Fotografien aus dem vergangenen Jahrhundert.",
    "Die Feuerwehr lädt am Wochenende alle Familien zu einem Tag der offenen Tür ein.",
    "Der Bürgermeister erklärte, dass die Stadt mehr Geld für Radwege und Grünflächen ausgeben wird.",
    "Im Herbst beginnen die Bauarbeiten für das neue Schwimmbad am Rand des Parks.",
]

# --------------------------------------------------------------------------------------------------
# Plan
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    """An ``<h2>`` inside the article."""

    text: str


@dataclass(frozen=True)
class PlannedImage:
    """A content image of an article, as written in the HTML and as it resolves."""

    src: str  # the src attribute as written
    url: str  # src resolved against <base href> or the page URL
    alt: str
    width: int | None  # declared in the HTML; None when not declared
    height: int | None
    caption: str | None = None  # set when the image sits in a <figure> with a <figcaption>
    srcset: str | None = None  # the srcset attribute as written
    srcset_urls: tuple[str, ...] = ()  # its candidates resolved, smallest first


Block = str | Heading | PlannedImage  # a paragraph, a subheading, or an image


@dataclass(frozen=True)
class Article:
    title: str
    author: str
    published: date
    section: str
    blocks: tuple[Block, ...]  # main content in reading order
    base_href: str | None = None

    @property
    def paragraphs(self) -> tuple[str, ...]:
        return tuple(b for b in self.blocks if isinstance(b, str))

    @property
    def images(self) -> tuple[PlannedImage, ...]:
        return tuple(b for b in self.blocks if isinstance(b, PlannedImage))


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


def _rng(seed: int, *parts: object) -> random.Random:
    """An independent RNG per purpose; str seeds hash with SHA-512, stable across processes."""
    return random.Random(":".join(["loom-demo", str(seed), *map(str, parts)]))


def _kind_counts(pages: int) -> dict[Kind, int]:
    drop = max(1, round(pages / 120))
    counts = {
        Kind.TEXT: round(pages * 0.25),
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
    rng = _rng(seed, "kinds")
    rng.shuffle(kinds)
    first_source = min(i for i, k in enumerate(kinds) if k in (Kind.IMAGES, Kind.TEXT))
    for dup in dups:
        kinds.insert(rng.randint(max(first_source + 1, len(kinds) // 2), len(kinds)), dup)
    return kinds


class _Prose:
    """English-like sentences from a fixed vocabulary and a seeded RNG."""

    def __init__(self, rng: random.Random, fancy: bool = False) -> None:
        self.rng = rng
        self.fancy = fancy  # curly quotes and dashes (not for ISO-8859-1 pages)

    def _pick(self, words: Sequence[str]) -> str:
        return self.rng.choice(words)

    def noun_phrase(self, plural: bool | None = None) -> str:
        rng = self.rng
        plural = rng.random() < 0.3 if plural is None else plural
        noun = _plural(self._pick(_NOUNS)) if plural else self._pick(_NOUNS)
        if rng.random() < 0.5:
            noun = f"{self._pick(_ADJECTIVES)} {noun}"
        if plural:
            det = rng.choice(["the", "many", "several", "some", "a few", "most of the", self._pick(_NUMBERS)])
        else:
            det = rng.choice(["the", "the", "a", "this", "that", "every", "one"])
            if det == "a":
                det = _article(noun)
        phrase = f"{det} {noun}"
        if rng.random() < 0.12:
            phrase += f" in {self._pick(_PLACES)}"
        return phrase

    def clause(self) -> str:
        rng = self.rng
        parts = [self.noun_phrase()]
        if rng.random() < 0.3:
            parts.append(self._pick(_ADVERBS))
        parts += [self._pick(_VERBS), self.noun_phrase()]
        if rng.random() < 0.5:
            parts += [self._pick(_PREPOSITIONS), self.noun_phrase()]
        return " ".join(parts)

    def sentence(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.3:
            text = self.clause()
        elif roll < 0.5:
            text = f"{self._pick(_OPENERS)}, {self.clause()}"
        elif roll < 0.7:
            text = f"{self.clause()}, {self._pick(_CONJUNCTIONS)} {self.clause()}"
        elif roll < 0.8:
            text = f"{self.clause()}, which {self._pick(_VERBS)} {self.noun_phrase()}"
        elif roll < 0.9:
            return self.quote()
        else:
            items = [self.noun_phrase(plural=True) for _ in range(3)]
            text = f"{self.clause()}, along with {items[0]}, {items[1]} and {items[2]}"
        if self.fancy and rng.random() < 0.1:
            text += f" — {self.clause()}"
        return text[0].upper() + text[1:] + "."

    def quote(self) -> str:
        said = f"{self._pick(_FIRST_NAMES)} {self._pick(_SURNAMES)}, {self._pick(_ROLES)}"
        words = self.clause()
        opening, closing = ("“", "”") if self.fancy else ('"', '"')
        return f"{opening}{words[0].upper()}{words[1:]},{closing} said {said}."

    def paragraph(self, low: int = 2, high: int = 4) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(low, high)))

    def title(self) -> str:
        rng = self.rng
        noun, noun2 = self._pick(_NOUNS), self._pick(_NOUNS)
        adj, verb = self._pick(_ADJECTIVES), self._pick(_VERBS)
        templates = [
            f"How the {adj} {noun} {verb} the {noun2}",
            f"{_plural(noun).capitalize()} {verb} {self._pick(_PREPOSITIONS)} the {adj} {noun2}",
            f"Why {self._pick(_PLACES)} {verb} its {adj} {noun}",
            f"Inside the {adj} {noun} of {self._pick(_PLACES)}",
            f"The {adj} {noun} that {verb} {_article(noun2)} {noun2}",
        ]
        return _title_case(rng.choice(templates))


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _plural(noun: str) -> str:
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def _title_case(text: str) -> str:
    small = {"a", "an", "the", "of", "in", "on", "its", "that", "to", "and"}
    words = text.split()
    return " ".join(w if (i and w in small) else w[:1].upper() + w[1:] for i, w in enumerate(words))


def _slug(title: str) -> str:
    return "-".join("".join(ch for ch in w.lower() if ch.isalnum()) for w in title.split()[:5])


def _png_spec(rng: random.Random, width: int, height: int) -> PngSpec:
    palette = tuple(
        (rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(rng.randint(2, 4))
    )
    return PngSpec(width, height, palette, band=rng.randint(8, max(9, height // 3)))


def _image_src(rng: random.Random, site: Site, stem: str, base_href: str | None) -> str:
    """A src in one of the styles pages use: CDN-absolute, protocol-relative, root- or doc-relative."""
    if base_href is not None:
        return f"{stem}.png"  # relative to <base href>
    style = rng.choice(["cdn", "cdn", "protocol", "root", "relative"])
    if style == "cdn":
        return f"{IMAGE_HOST}/{site.slug}/{stem}.png"
    if style == "protocol":
        return f"//img.example/{site.slug}/{stem}.png"
    if style == "root":
        return f"/media/{stem}.png"
    return f"images/{stem.rsplit('/', 1)[-1]}.png"


def _planned_image(
    rng: random.Random, prose: _Prose, site: Site, page_url: str, stem: str, base_href: str | None
) -> PlannedImage:
    base = base_href or page_url
    src = _image_src(rng, site, stem, base_href)
    width, height = rng.choice([(640, 427), (800, 533), (480, 320), (720, 405), (300, 300), (960, 540)])
    if rng.random() < 0.15:
        width, height = rng.choice([(120, 90), (200, 150), (240, 180)])  # small but above the 64px cut
    alt = ""
    if rng.random() >= 0.15:
        alt = f"{prose.noun_phrase().capitalize()} {rng.choice(_PREPOSITIONS)} the {rng.choice(_NOUNS)}"
    caption = prose.sentence() if rng.random() < 0.4 else None
    declared = rng.random() >= 0.1
    srcset, srcset_urls = None, ()
    if rng.random() < 0.25:
        small, large = src.replace(".png", "-480.png"), src.replace(".png", "-960.png")
        src, width, height = small, 480, round(480 * height / width)
        srcset = f"{small} 480w, {large} 960w"
        srcset_urls = (urljoin(base, small), urljoin(base, large))
    return PlannedImage(
        src=src,
        url=urljoin(base, src),
        alt=alt,
        width=width if declared else None,
        height=height if declared else None,
        caption=caption,
        srcset=srcset,
        srcset_urls=srcset_urls,
    )


def _make_article(
    rng: random.Random,
    title: str,
    site: Site,
    url: str,
    n_images: int,
    accents: bool,
    fancy: bool,
    base_href: str | None,
) -> Article:
    prose = _Prose(rng, fancy=fancy)
    n_paragraphs = rng.randint(3, 6)
    paragraphs = [prose.paragraph() for _ in range(n_paragraphs)]
    if accents:  # always the café/naïve sentence, and one more
        for sentence in (_LATIN1_SENTENCES[0], rng.choice(_LATIN1_SENTENCES[1:])):
            i = rng.randrange(n_paragraphs)
            paragraphs[i] = f"{paragraphs[i]} {sentence}"
    if fancy and accents:
        paragraphs[-1] = f"{paragraphs[-1]} {rng.choice(_FANCY_SENTENCES)}"
    blocks: list[Block] = list(paragraphs)
    if n_paragraphs >= 5:
        blocks.insert(rng.randint(2, n_paragraphs - 1), Heading(_title_case(prose.noun_phrase())))
    published = (_CRAWL_START - timedelta(days=rng.randint(2, 400))).date()
    slug = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".html")
    for k in range(n_images):
        stem = f"{published:%Y/%m}/{slug}-{k + 1}"
        image = _planned_image(rng, prose, site, url, stem, base_href)
        # the first image often leads the article; the rest sit between paragraphs
        blocks.insert(0 if k == 0 and rng.random() < 0.4 else rng.randint(1, len(blocks)), image)
    author = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_SURNAMES)}"
    section = urlsplit(url).path.split("/")[1]
    return Article(title, author, published, section, tuple(blocks), base_href)


def _page_url(rng: random.Random, site: Site, index: int, title: str) -> str:
    suffix = ".html" if rng.random() < 0.3 else ""
    return f"{site.origin}/{rng.choice(site.sections)}/{_slug(title)}-{1000 + index}{suffix}"


def _article_capture(kind: Kind, index: int, seed: int, ordinal: int) -> Capture:
    """An article page; ``ordinal`` counts earlier captures of the same kind."""
    rng = _rng(seed, "page", index)
    text_rng = _rng(seed, "article", index)
    site = rng.choice(_SITES)
    title = _Prose(text_rng).title()
    url = _page_url(rng, site, index, title)
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
    article = _make_article(text_rng, title, site, url, n_images, accents, fancy, base_href)
    if kind == Kind.CONTACT:
        contact = f"Send tips to newsroom@{site.slug}.example or to our archive server at {CONTACT_IP}."
        article = replace(article, blocks=(*article.blocks, contact))
    return Capture(kind, url, 200, content_type, charset, meta, site, article)


def _filtered_capture(kind: Kind, index: int, seed: int, ordinal: int) -> Capture:
    """A page the filters step drops (see ``Kind``): plain text, no images."""
    rng = _rng(seed, "page", index)
    published = (_CRAWL_START - timedelta(days=rng.randint(2, 400))).date()
    if kind == Kind.FOREIGN:
        site = rng.choice(_SITES)
        paragraphs = [" ".join(rng.sample(_GERMAN_SENTENCES, 3)) for _ in range(4)]
        title = "Neuigkeiten aus der Stadt"
    elif kind == Kind.BOILERPLATE:
        site = rng.choice(_SITES)
        teaser = f"Read more stories like this one in the {site.name} archive, updated every morning."
        prose = _Prose(_rng(seed, "article", index))
        paragraphs = [prose.paragraph(4, 5), *[teaser] * 10]
        title = "More Stories From Our Archive"
    else:
        site = SPAM_SITES[ordinal % 2]
        prose = _Prose(_rng(seed, "article", index))  # spam pads itself with ordinary text
        paragraphs = [*(_GAMBLING_SPAM if ordinal % 2 == 0 else _ADULT_SPAM), prose.paragraph(4, 5)]
        title = (
            "Win Big at the Lucky Jackpot Tables Tonight"
            if ordinal % 2 == 0
            else "Hot Singles Want to Meet You Tonight"
        )
    url = f"{site.origin}/{rng.choice(site.sections)}/{_slug(title)}-{1000 + index}"
    author = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_SURNAMES)}"
    article = Article(title, author, published, urlsplit(url).path.split("/")[1], tuple(paragraphs))
    return Capture(kind, url, 200, "text/html; charset=utf-8", "utf-8", "utf-8", site, article)


def _absolute(image: PlannedImage) -> PlannedImage:
    """The image as a syndicated copy hotlinks it: absolute URLs, no base needed."""
    srcset = None
    if image.srcset_urls:
        srcset = f"{image.srcset_urls[0]} 480w, {image.srcset_urls[1]} 960w"
    return replace(image, src=image.url, srcset=srcset)


def _edit_article(article: Article, rng: random.Random) -> Article:
    """A near-duplicate: a couple of words swapped, one sentence cut, an update note added."""
    blocks: list[Block] = []
    for block in article.blocks:
        if isinstance(block, PlannedImage):
            blocks.append(_absolute(block))
        elif isinstance(block, str) and rng.random() < 0.4:
            words = block.split(" ")
            i = rng.randrange(len(words))
            if words[i].isalpha() and words[i].islower():
                words[i] = rng.choice(_ADJECTIVES)
            blocks.append(" ".join(words))
        else:
            blocks.append(block)
    paragraph_at = [i for i, b in enumerate(blocks) if isinstance(b, str)]
    longest = max(paragraph_at, key=lambda i: len(blocks[i]))
    sentences = str(blocks[longest]).split(". ")
    if len(sentences) > 1:
        del sentences[rng.randrange(len(sentences) - 1)]
        blocks[longest] = ". ".join(sentences)
    blocks.append(f"This article was updated on {article.published + timedelta(days=3):%B %d, %Y}.")
    return replace(article, blocks=tuple(blocks), base_href=None)


def _duplicate_capture(kind: Kind, index: int, seed: int, source: Capture) -> Capture:
    rng = _rng(seed, "page", index)
    assert source.article is not None and source.site is not None
    if kind == Kind.EXACT_DUPLICATE:
        sep = "&" if "?" in source.url else "?"
        url = f"{source.url}{sep}utm_source=newsletter&utm_medium=email&utm_campaign=weekly-{index}"
        return replace(source, kind=kind, url=url, duplicate_of=source.url)
    site = rng.choice([s for s in _SITES if s != source.site])
    path = urlsplit(source.url).path.rsplit("/", 1)[-1].removesuffix(".html")
    url = f"{site.origin}/{rng.choice(site.sections)}/syndicated/{path}"
    article = _edit_article(source.article, rng)
    return replace(source, kind=kind, url=url, site=site, article=article, duplicate_of=source.url)


def _dropped_capture(kind: Kind, index: int, seed: int, ordinal: int, targets: Sequence[str]) -> Capture:
    """A capture to drop; non-HTML ones alternate PDF and plain text by ``ordinal``."""
    rng = _rng(seed, "page", index)
    site = rng.choice(_SITES)
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
        rng = _rng(seed, "image", image.url)
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
    sources: list[Capture] = []  # articles a duplicate may copy
    duplicated: list[str] = []
    seen_images: set[str] = set()
    ordinals: Counter[Kind] = Counter()
    for index, kind in enumerate(_kind_sequence(pages, seed)):
        ordinal = ordinals[kind]
        ordinals[kind] += 1
        if kind in (Kind.NEAR_DUPLICATE, Kind.EXACT_DUPLICATE):
            rng = _rng(seed, "source", index)
            fresh = [s for s in sources if s.url not in duplicated]
            source = rng.choice(fresh or sources)
            duplicated.append(source.url)
            capture = _duplicate_capture(kind, index, seed, source)
        elif kind in (Kind.NOT_FOUND, Kind.REDIRECT, Kind.NON_HTML, Kind.EMPTY):
            capture = _dropped_capture(kind, index, seed, ordinal, [s.url for s in sources])
        elif kind in (Kind.FOREIGN, Kind.BOILERPLATE, Kind.SPAM):
            capture = _filtered_capture(kind, index, seed, ordinal)
        else:
            capture = _article_capture(kind, index, seed, ordinal)
            if kind in (Kind.IMAGES, Kind.TEXT):
                sources.append(capture)
        captures.append(capture)
        captures.extend(_image_captures(capture, seed, seen_images))
    return DemoPlan(pages, seed, tuple(captures))


# --------------------------------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------------------------------


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _pack_2bit(pixels: list[int]) -> bytes:
    """Palette indices, four to a byte, the first in the high bits; the last byte padded with zeros."""
    pixels = pixels + [0] * (-len(pixels) % 4)
    it = iter(pixels)
    return bytes(a << 6 | b << 4 | c << 2 | d for a, b, c, d in zip(it, it, it, it, strict=True))


def make_png(spec: PngSpec) -> bytes:
    """A valid 2-bit palette PNG (1-4 colours): bands of colour, a stripe of the next one down the middle."""
    n = len(spec.palette)
    if not 1 <= n <= 4:
        raise ValueError(f"a 2-bit PNG holds 1 to 4 colours, got {n}")
    stripe = spec.width // 5
    left = (spec.width - stripe) // 2
    right = spec.width - left - stripe
    rows = [b"\x00" + _pack_2bit([i] * left + [(i + 1) % n] * stripe + [i] * right) for i in range(n)]
    raw = b"".join(rows[(y // spec.band) % n] for y in range(spec.height))
    header = struct.pack(">IIBBBBB", spec.width, spec.height, 2, 3, 0, 0, 0)
    palette = b"".join(bytes(c) for c in spec.palette)
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"PLTE", palette)
        + _png_chunk(b"IDAT", zlib.compress(raw, 9))
        + _png_chunk(b"IEND", b"")
    )


_PIXEL_DATA_URI = (
    "data:image/png;base64," + base64.b64encode(make_png(PngSpec(1, 1, ((255, 255, 255),), 1))).decode()
)


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _attrs(pairs: Sequence[tuple[str, str | int | None]]) -> str:
    return "".join(f' {k}="{html.escape(str(v))}"' for k, v in pairs if v is not None)


def _img(image: PlannedImage, lazy: bool) -> str:
    tag = (
        "<img"
        + _attrs(
            [
                ("src", image.src),
                ("srcset", image.srcset),
                ("sizes", "(max-width: 720px) 100vw, 720px" if image.srcset else None),
                ("alt", image.alt),
                ("width", image.width),
                ("height", image.height),
                ("loading", "lazy" if lazy else None),
            ]
        )
        + ">"
    )
    if image.caption is None:
        return f'<div class="inline-image">{tag}</div>'
    return f'<figure class="article-figure">{tag}<figcaption>{_esc(image.caption)}</figcaption></figure>'


def _head(title: str, site: Site, meta_charset: str | None, extra: str = "") -> str:
    charset = f'<meta charset="{meta_charset}">\n' if meta_charset else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n{charset}'
        f"<title>{_esc(title)} | {_esc(site.name)}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="stylesheet" href="/static/css/main.css">\n<link rel="icon" href="/favicon.ico">\n'
        f"{extra}<script>window.dataLayer = window.dataLayer || [];\n"
        f"dataLayer.push({{'site': '{site.slug}'}});</script>\n</head>\n"
    )


def _chrome_top(site: Site, rng: random.Random) -> str:
    """Cookie banner, header with logo, and the main <nav>."""
    nav = "".join(f'<li><a href="/{s}/">{s.capitalize()}</a></li>' for s in site.sections)
    banner = rng.choice(
        [
            "We use cookies to improve your experience, to show you relevant ads and to measure traffic.",
            "This site uses cookies. By continuing to browse you agree to our use of cookies.",
        ]
    )
    return (
        '<body class="article-page">\n'
        f'<div id="cookie-banner" class="cookie-consent" role="dialog"><p>{banner} '
        '<a href="/privacy">Privacy policy</a></p><button class="accept">Accept all</button>'
        '<button class="manage">Manage preferences</button></div>\n'
        '<header class="site-header">'
        f'<a href="/" class="logo"><img src="/static/img/logo.png" alt="{_esc(site.name)}" width="180" '
        f'height="40"></a>\n<nav class="main-nav"><ul><li><a href="/">Home</a></li>{nav}'
        '<li><a href="/subscribe">Subscribe</a></li></ul></nav></header>\n'
    )


def _chrome_bottom(site: Site, rng: random.Random, year: int) -> str:
    """Related links with thumbnails, the sidebar with an ad, and the footer."""
    prose = _Prose(rng)
    related = "".join(
        f'<li><a href="/{rng.choice(site.sections)}/{_slug(t)}">'
        f'<img src="/thumbs/{_slug(t)}.jpg" width="120" height="80" alt="">{_esc(t)}</a></li>'
        for t in (_title_case(prose.noun_phrase()) for _ in range(2))
    )
    most_read = "".join(
        f'<li><a href="/{rng.choice(site.sections)}/{_slug(t)}">{_esc(t)}</a></li>'
        for t in (_title_case(prose.noun_phrase()) for _ in range(3))
    )
    ad = rng.randint(1000, 9999)
    return (
        f'<section class="related"><h2>Related articles</h2><ul>{related}</ul></section>\n</main>\n'
        '<aside class="sidebar">'
        f'<div class="ad"><span>Advertisement</span><a href="https://ads.example/click?c={ad}">'
        f'<img src="https://ads.example/creative/{ad}/300x250.png" width="300" height="250" '
        f'alt="Advertisement"></a></div>\n<h3>Most read</h3><ul>{most_read}</ul>\n'
        '<p class="newsletter"><a href="/newsletter">Get our newsletter</a></p></aside>\n</div>\n'
        f'<footer class="site-footer"><p>&copy; {year} {_esc(site.name)}. All rights reserved.</p>'
        '<ul><li><a href="/about">About us</a></li><li><a href="/contact">Contact</a></li>'
        '<li><a href="/terms">Terms of use</a></li><li><a href="/privacy">Privacy</a></li></ul>'
        '<a href="https://social.example/share">'
        '<img src="/static/icons/social-16.png" width="16" height="16" alt="Follow us"></a></footer>\n'
        '<script src="/static/js/app.js" defer></script>\n</body>\n</html>\n'
    )


def _article_html(capture: Capture, seed: int) -> str:
    article, site = capture.article, capture.site
    assert article is not None and site is not None
    rng = _rng(seed, "chrome", capture.url)
    base = f'<base href="{article.base_href}">\n' if article.base_href else ""
    description = _esc(article.paragraphs[0].split(". ")[0])
    extra = base + f'<meta name="description" content="{description}">\n'
    head = _head(article.title, site, capture.meta_charset, extra)
    body: list[str] = []
    images_seen = 0
    middle = len(article.blocks) // 2
    for i, block in enumerate(article.blocks):
        if isinstance(block, PlannedImage):
            body.append(_img(block, lazy=images_seen > 0))
            images_seen += 1
        elif isinstance(block, Heading):
            body.append(f"<h2>{_esc(block.text)}</h2>")
        else:
            body.append(f"<p>{_esc(block)}</p>")
        if i == middle and rng.random() < 0.5:
            body.append(f'<img src="{_PIXEL_DATA_URI}" width="300" height="200" alt="">')  # placeholder
    pixel = f"https://track.example/pixel.gif?u={hashlib.sha1(capture.url.encode()).hexdigest()[:12]}"
    share = "".join(
        f'<a href="/share/{n}"><img src="/static/icons/{n}-16.png" width="16" height="16" alt="{n}"></a>'
        for n in ("facebook", "email")
    )
    byline = (
        f'<p class="byline">By <span class="author">{_esc(article.author)}</span> &middot; '
        f'<time datetime="{article.published.isoformat()}">{article.published:%B %d, %Y}</time></p>'
    )
    main = (
        f'<div class="layout">\n<main>\n<nav class="breadcrumbs"><a href="/">Home</a> &rsaquo; '
        f'<a href="/{article.section}/">{article.section.capitalize()}</a></nav>\n'
        f'<article>\n<h1>{_esc(article.title)}</h1>\n{byline}\n<div class="share">{share}</div>\n'
        + "\n".join(body)
        + f'\n<img src="{pixel}" width="1" height="1" alt="" style="display:none">\n</article>\n'
    )
    return head + _chrome_top(site, rng) + main + _chrome_bottom(site, rng, article.published.year)


def _not_found_html(capture: Capture, seed: int) -> str:
    site = capture.site
    assert site is not None
    rng = _rng(seed, "chrome", capture.url)
    main = (
        '<div class="layout">\n<main>\n<h1>Page not found</h1>\n<p>Sorry, the page you were looking for '
        'has moved or no longer exists. Try the search above or go back to the <a href="/">front page</a>.'
        "</p>\n"
    )
    top = _head("Page not found", site, capture.meta_charset) + _chrome_top(site, rng)
    return top + main + _chrome_bottom(site, rng, 2024)


def _redirect_html(capture: Capture) -> str:
    target = html.escape(capture.location or "/")
    return (
        "<html><head><title>301 Moved Permanently</title></head><body><h1>Moved Permanently</h1>"
        f'<p>The document has moved <a href="{target}">here</a>.</p></body></html>\n'
    )


def _pdf_bytes(capture: Capture) -> bytes:
    """A small, well-formed one-page PDF."""
    text = f"Annual report {urlsplit(capture.url).path}".replace("(", "").replace(")", "")
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, obj)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _body(capture: Capture, seed: int) -> bytes:
    """The HTTP payload of a capture, encoded in its charset."""
    if capture.kind == Kind.IMAGE:
        assert capture.png is not None
        return make_png(capture.png)
    if capture.kind == Kind.EMPTY:
        return b""
    if capture.kind == Kind.NOT_FOUND:
        return _not_found_html(capture, seed).encode("utf-8")
    if capture.kind == Kind.REDIRECT:
        return _redirect_html(capture).encode("utf-8")
    if capture.kind == Kind.NON_HTML:
        if capture.content_type == "application/pdf":
            return _pdf_bytes(capture)
        prose = _Prose(_rng(seed, "text", capture.url))
        return ("\n\n".join(prose.paragraph() for _ in range(3)) + "\n").encode("utf-8")
    assert capture.charset is not None
    return _article_html(capture, seed).encode(capture.charset)


# --------------------------------------------------------------------------------------------------
# HTTP and WARC
# --------------------------------------------------------------------------------------------------

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
    record = factory.record(WarcRecordType.warcinfo, _CRAWL_START, headers, content)
    factory.warcinfo_id = str(record.record_id)
    return record


def _capture_date(seed: int, position: int) -> datetime:
    jitter = _rng(seed, "date", position).randint(0, 3)
    return _CRAWL_START + timedelta(hours=seed % 1000, seconds=4 * position + jitter)


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
            body = _body(capture, plan.seed)
        if capture.kind in (Kind.IMAGES, Kind.TEXT):
            bodies[capture.url] = body
        yield from _capture_records(factory, capture, body, _capture_date(plan.seed, position))


def build_demo_filters(dest: Path) -> tuple[Path, Path]:
    """Write the demo's URL blocklist and lexicon under ``dest`` (see ``DEMO_BLOCKLIST``,
    ``DEMO_LEXICON``); return (blocklist root, lexicon folder)."""
    blocklist, lexicon = Path(dest) / "blocklist", Path(dest) / "lexicon"
    for category, domains in DEMO_BLOCKLIST.items():
        (blocklist / category).mkdir(parents=True, exist_ok=True)
        (blocklist / category / "domains").write_text("\n".join(domains) + "\n", encoding="utf-8")
    lexicon.mkdir(parents=True, exist_ok=True)
    for language, words in DEMO_LEXICON.items():
        (lexicon / language).write_text("\n".join(words) + "\n", encoding="utf-8")
    return blocklist, lexicon


_CHROME_PHRASES = [
    "Home",
    "News",
    "Sport",
    "Contact us",
    "About",
    "Subscribe to our newsletter",
    "Sign in",
    "Register",
    "Accept all cookies",
    "Manage preferences",
    "Share on Facebook",
    "Share by e-mail",
    "Read more",
    "Privacy policy",
    "Terms of use",
    "All rights reserved.",
    "Advertise with us",
    "Back to top",
    "Next page",
    "Previous",
    "Most read",
    "Related stories",
    "Follow us",
    "Load more comments",
]


def demo_quality_corpus(dest: Path, docs: int = 300, seed: int = 0) -> tuple[Path, Path]:
    """Training text for the demo's quality classifier: ``positive.txt`` holds article prose (one
    document per line), ``negative.txt`` page chrome (menus, cookie and share notices)."""
    rng = _rng(seed, "quality")
    prose = _Prose(rng)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    positive, negative = dest / "positive.txt", dest / "negative.txt"
    positive.write_text("\n".join(prose.paragraph(3, 6) for _ in range(docs)) + "\n", encoding="utf-8")
    chrome = [" ".join(rng.choices(_CHROME_PHRASES, k=rng.randint(6, 20))) for _ in range(docs)]
    negative.write_text("\n".join(chrome) + "\n", encoding="utf-8")
    return positive, negative


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
