"""Main-content selection and cleaning (pipeline/extract/main_content.py, cleaning.py)."""

from __future__ import annotations

from pipeline.extract import ImageRef, extract_html
from tests.pipeline.extract.crafted import CONFIG, PAGE, PARA, article_html, page_html, texts_of


def test_boilerplate_images_dropped_content_images_kept_in_order() -> None:
    ex = extract_html(
        article_html(
            f"<p>{PARA}</p>",
            '<figure><img src="/chart.png" alt="Chart" width="640" height="480">'
            "<figcaption>The chart</figcaption></figure>",
            f"<p>{PARA.upper()}</p>",
            '<div class="share-tools"><img src="/share.png" width="100" height="100"></div>',
        ),
        PAGE,
        CONFIG,
    )
    assert ex.nodes == [
        PARA,
        ImageRef("https://example.com/chart.png", "Chart", 640, 480),
        "The chart",
        PARA.upper(),
    ]


def test_sidebar_class_on_body_does_not_remove_the_page() -> None:
    html = (
        '<html><body class="page has-sidebar sidebar-left">'
        f'<div class="wrapper with-sidebar"><p>{PARA}</p><p>{PARA}</p></div>'
        '<div class="sidebar"><p>Popular: ten things, five more, and three others you missed.</p></div>'
        "</body></html>"
    )
    assert texts_of(extract_html(html, PAGE, CONFIG)) == [PARA, PARA]


def test_link_lists_are_not_content() -> None:
    links = "".join(f'<li><a href="/s{i}">Another story number {i} to read</a></li>' for i in range(12))
    html = page_html(f'<div><p>{PARA}</p><p>{PARA}</p><p>{PARA}</p><ul class="more">{links}</ul></div>')
    assert texts_of(extract_html(html, PAGE, CONFIG)) == [PARA] * 3
    # As in readability, a page with under 500 characters of clean text is retried with the
    # cleaning relaxed, and the longest result wins.
    html = page_html(f'<div><p>{PARA}</p><ul class="more">{links}</ul></div>')
    assert len(texts_of(extract_html(html, PAGE, CONFIG))) == 13
