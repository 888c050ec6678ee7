"""The HTTP payload of each capture: the HTML of a page, a PNG, a PDF, plain text.

Every page carries boilerplate an extractor has to skip: a cookie banner, header with logo and
``<nav>``, share icons (16x16), a 1x1 tracking pixel, sometimes a ``data:`` image, related links
with thumbnails, a sidebar with an ad, and a footer. The PNGs are valid 2-bit palette images of
the planned size, the PDF a well-formed one-page document.
"""

from __future__ import annotations

import base64
import hashlib
import html
import random
import struct
import zlib
from collections.abc import Sequence
from urllib.parse import urlsplit

from jobs.demo.pages import Heading, PlannedImage, Prose, Site, demo_rng, slug, title_case
from jobs.demo.plan import Capture, Kind, PngSpec

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
    prose = Prose(rng)
    related = "".join(
        f'<li><a href="/{rng.choice(site.sections)}/{slug(t)}">'
        f'<img src="/thumbs/{slug(t)}.jpg" width="120" height="80" alt="">{_esc(t)}</a></li>'
        for t in (title_case(prose.noun_phrase()) for _ in range(2))
    )
    most_read = "".join(
        f'<li><a href="/{rng.choice(site.sections)}/{slug(t)}">{_esc(t)}</a></li>'
        for t in (title_case(prose.noun_phrase()) for _ in range(3))
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
    rng = demo_rng(seed, "chrome", capture.url)
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
    rng = demo_rng(seed, "chrome", capture.url)
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


def capture_body(capture: Capture, seed: int) -> bytes:
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
        prose = Prose(demo_rng(seed, "text", capture.url))
        return ("\n\n".join(prose.paragraph() for _ in range(3)) + "\n").encode("utf-8")
    assert capture.charset is not None
    return _article_html(capture, seed).encode(capture.charset)
