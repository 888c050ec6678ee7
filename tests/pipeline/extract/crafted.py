"""Crafted pages for the extract tests: a page, an article page with nav and footer around it,
and helpers that pick the texts or images out of an Extraction."""

from __future__ import annotations

from pipeline.config import ExtractConfig
from pipeline.extract import Extraction, ImageRef, extract_html

PAGE = "https://example.com/news/story.html"
CONFIG = ExtractConfig()

PARA = (
    "The council approved the new budget on Tuesday, after a long debate about schools, roads and "
    "the library, and the mayor said the vote was a turning point for the town."
)


def page_html(body: str, head: str = "<title>A story</title>") -> str:
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"


def article_html(*parts: str) -> str:
    """An article page: nav and footer around an <article> holding ``parts``."""
    return page_html(
        '<nav class="menu"><a href="/">Home</a> <a href="/world">World</a>'
        '<img src="/nav-logo.png" width="120" height="80"></nav>'
        f"<article>{''.join(parts)}</article>"
        "<footer><p>Copyright, all rights reserved, contact us, terms and privacy.</p>"
        '<img src="/footer-badge.png" width="200" height="100"></footer>'
    )


def images_of(ex: Extraction) -> list[ImageRef]:
    return [n for n in ex.nodes if isinstance(n, ImageRef)]


def texts_of(ex: Extraction) -> list[str]:
    return [n for n in ex.nodes if isinstance(n, str)]


def one_image(img_html: str, page: str = PAGE, head: str = "<title>t</title>") -> ImageRef | None:
    """The image extracted from ``img_html`` placed between two paragraphs of an article."""
    ex = extract_html(
        page_html(f"<article><p>{PARA}</p>{img_html}<p>{PARA}</p></article>", head), page, CONFIG
    )
    images = images_of(ex)
    assert len(images) <= 1
    return images[0] if images else None
