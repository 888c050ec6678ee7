"""What the demo's pages say: the vocabulary, the sites, the article model and the prose.

Every word of the demo corpus comes from the fixed vocabulary below, put together by :class:`Prose`
from a ``random.Random`` that :func:`demo_rng` seeds with a string (stable across processes).
:func:`make_article` writes an article: its paragraphs, subheadings and content images in reading
order, each image's ``src`` in one of the styles real pages use (CDN-absolute, protocol-relative,
root- or document-relative, relative to ``<base href>``, with or without ``srcset``).
:func:`edit_article` turns one into the near-duplicate a syndicating site would publish.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urljoin, urlsplit

IMAGE_HOST = "https://img.example"
CRAWL_START = datetime(2024, 2, 20, 6, 0, 0, tzinfo=UTC)


def demo_rng(seed: int, *parts: object) -> random.Random:
    """An independent RNG per purpose; str seeds hash with SHA-512, stable across processes."""
    return random.Random(":".join(["loom-demo", str(seed), *map(str, parts)]))


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
FIRST_NAMES = [
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
SURNAMES = [
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


SITES = (
    Site("harborview-news", "Harborview News", ("local", "business", "culture", "weather"), "nginx/1.24.0"),
    Site("greenfield-times", "Greenfield Times", ("news", "farming", "opinion", "sport"), "Apache/2.4.58"),
    Site("northwind-review", "Northwind Review", ("essays", "books", "science", "travel"), "cloudflare"),
    Site("city-herald", "City Herald", ("city", "transport", "housing", "arts"), "nginx/1.25.3"),
    Site("openkitchen", "Open Kitchen", ("recipes", "guides", "seasonal", "stories"), "Apache/2.4.57"),
    Site("travelnotes", "Travel Notes", ("europe", "coast", "mountains", "tips"), "nginx/1.22.1"),
    Site("sciencebrief", "Science Brief", ("research", "climate", "space", "health"), "cloudflare"),
    Site("lakeshore-post", "Lakeshore Post", ("community", "schools", "events", "outdoors"), "openresty"),
)


# --------------------------------------------------------------------------------------------------
# Articles
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


class Prose:
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
        said = f"{self._pick(FIRST_NAMES)} {self._pick(SURNAMES)}, {self._pick(_ROLES)}"
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
        return title_case(rng.choice(templates))


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _plural(noun: str) -> str:
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def title_case(text: str) -> str:
    small = {"a", "an", "the", "of", "in", "on", "its", "that", "to", "and"}
    words = text.split()
    return " ".join(w if (i and w in small) else w[:1].upper() + w[1:] for i, w in enumerate(words))


def slug(title: str) -> str:
    return "-".join("".join(ch for ch in w.lower() if ch.isalnum()) for w in title.split()[:5])


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
    rng: random.Random, prose: Prose, site: Site, page_url: str, stem: str, base_href: str | None
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


def make_article(
    rng: random.Random,
    title: str,
    site: Site,
    url: str,
    n_images: int,
    accents: bool,
    fancy: bool,
    base_href: str | None,
) -> Article:
    prose = Prose(rng, fancy=fancy)
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
        blocks.insert(rng.randint(2, n_paragraphs - 1), Heading(title_case(prose.noun_phrase())))
    published = (CRAWL_START - timedelta(days=rng.randint(2, 400))).date()
    slug = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".html")
    for k in range(n_images):
        stem = f"{published:%Y/%m}/{slug}-{k + 1}"
        image = _planned_image(rng, prose, site, url, stem, base_href)
        # the first image often leads the article; the rest sit between paragraphs
        blocks.insert(0 if k == 0 and rng.random() < 0.4 else rng.randint(1, len(blocks)), image)
    author = f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"
    section = urlsplit(url).path.split("/")[1]
    return Article(title, author, published, section, tuple(blocks), base_href)


def page_url(rng: random.Random, site: Site, index: int, title: str) -> str:
    suffix = ".html" if rng.random() < 0.3 else ""
    return f"{site.origin}/{rng.choice(site.sections)}/{slug(title)}-{1000 + index}{suffix}"


def _absolute(image: PlannedImage) -> PlannedImage:
    """The image as a syndicated copy hotlinks it: absolute URLs, no base needed."""
    srcset = None
    if image.srcset_urls:
        srcset = f"{image.srcset_urls[0]} 480w, {image.srcset_urls[1]} 960w"
    return replace(image, src=image.url, srcset=srcset)


def edit_article(article: Article, rng: random.Random) -> Article:
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
