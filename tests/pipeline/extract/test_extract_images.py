"""Image references (pipeline/extract/images.py): URL choice, <base href>, skipped and sized images."""

from __future__ import annotations

import pyarrow as pa

from pipeline.extract import ImageRef, extract_html
from pipeline.schema import IMAGE_TYPE
from tests.pipeline.extract.crafted import CONFIG, PAGE, PARA, images_of, one_image, page_html


def test_base_href_resolves_images() -> None:
    assert one_image('<img src="pics/a.jpg">').url == "https://example.com/news/pics/a.jpg"
    head = '<title>t</title><base href="https://cdn.example.org/assets/">'
    assert one_image('<img src="pics/a.jpg">', head=head).url == "https://cdn.example.org/assets/pics/a.jpg"
    head = '<title>t</title><base href="/static/">'  # a relative base resolves against the page
    assert one_image('<img src="a.jpg">', head=head).url == "https://example.com/static/a.jpg"
    assert one_image('<img src="//img.example.net/b.png">').url == "https://img.example.net/b.png"


def test_srcset_picks_largest_candidate() -> None:
    img = one_image('<img src="s.jpg" srcset="m.jpg 640w, l.jpg 1280w, xs.jpg 320w" alt=" A  cat ">')
    assert img == ImageRef("https://example.com/news/l.jpg", "A cat", None, None)
    assert one_image('<img src="s.jpg" srcset="a.jpg, b.jpg 2x, c.jpg 1.5x">').url.endswith("/b.jpg")
    # Commas inside URLs (image CDNs) do not split candidates.
    img = one_image(
        '<img srcset="https://i.cdn.com/c_fill,w_320/x.jpg 320w, https://i.cdn.com/c_fill,w_800/x.jpg 800w">'
    )
    assert img.url == "https://i.cdn.com/c_fill,w_800/x.jpg"


def test_lazy_loading_attributes() -> None:
    pixel = "data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw=="
    assert one_image(f'<img src="{pixel}" data-src="/real.jpg">').url == "https://example.com/real.jpg"
    assert one_image(f'<img src="{pixel}" data-srcset="a.jpg 100w, b.jpg 900w">').url.endswith("/b.jpg")
    assert one_image('<img data-original="/orig.png">').url == "https://example.com/orig.png"
    # A <noscript> fallback replaces the placeholder right before it.
    img = one_image(
        '<img src="/blur.jpg?q=20" width="800" height="600"><noscript><img src="/full.jpg"></noscript>'
    )
    assert img.url == "https://example.com/full.jpg"


def test_picture_source_when_img_has_no_src() -> None:
    img = one_image(
        '<picture><source type="image/webp" srcset="a.webp 1x, a2.webp 2x"><img alt="x"></picture>'
    )
    assert img.url == "https://example.com/news/a2.webp"


def test_data_uri_pixels_and_icons_are_skipped() -> None:
    assert one_image('<img src="data:image/png;base64,iVBORw0KGgo=">') is None
    assert one_image('<img src="/pixel.gif" width="1" height="1">') is None
    assert one_image('<img src="/icon.png" width="32" height="32">') is None  # below min_image_side
    assert one_image('<img src="/thin.png" width="600" height="2">') is None  # a rule line
    assert one_image('<img src="/x.png" style="display:none" width="600" height="400">') is None
    img = one_image('<img src="/photo.jpg" width="300px" height="auto">')
    assert (img.width, img.height) == (300, None)


def test_implausible_declared_sizes_become_none() -> None:
    """A side of 0 or above 65535 says nothing about the image: the image stays, its size is None
    (so the record's int32 columns always take it); a declared 0 still marks a hidden pixel."""
    img = one_image('<img src="/huge.jpg" width="99999999999" height="400">')
    assert (img.width, img.height) == (None, 400)
    img = one_image('<img src="/wide.jpg" width="65535" height="65536.0px">')
    assert (img.width, img.height) == (65535, None)
    assert one_image('<img src="/zero.gif" width="0" height="0">') is None
    assert one_image('<img src="/zero.gif" width="0">') is None
    assert one_image('<img src="/neg.jpg" width="-5" height="300">').width is None  # unparsable
    ex = extract_html(
        page_html(f'<article><p>{PARA}</p><img src="/a.jpg" width="99999999999" height="1e12"></article>'),
        PAGE,
        CONFIG,
    )
    images = [
        {"url": i.url, "sha256": None, "width": i.width, "height": i.height, "alt": i.alt}
        for i in images_of(ex)
    ]
    assert pa.array([images], pa.list_(IMAGE_TYPE)).to_pylist() == [images]  # the record's image type
