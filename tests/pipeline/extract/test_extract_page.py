"""extract_html as a whole (pipeline/extract/page.py): title, blocks in order, any input, the API."""

from __future__ import annotations

import pytest

from pipeline.extract import Extraction, ImageRef, extract_html
from tests.pipeline.extract.crafted import CONFIG, PAGE, PARA, article_html, page_html, texts_of


def test_title_and_text_blocks_in_order() -> None:
    html = article_html("<h1>Budget passes</h1>", f"<p>{PARA}</p>", "<ul><li>One item</li><li>Two</li></ul>")
    ex = extract_html(html, PAGE, CONFIG)
    assert ex.title == "A story"
    assert texts_of(ex) == ["Budget passes", PARA, "One item", "Two"]


def test_og_title_when_title_missing() -> None:
    html = page_html(f"<p>{PARA}</p>", head='<meta property="og:title" content=" The OG  title ">')
    assert extract_html(html, PAGE, CONFIG).title == "The OG title"


@pytest.mark.parametrize(
    "html",
    [
        "",
        " ",
        "just some words, no markup",
        "\x00\x01\x02\xff\ufffd" * 100,
        bytes(range(256)).decode("latin-1") * 20,
        "<<<<>>>></p></div><img src=>" * 50,
        "<div>" * 3_000 + PARA + "</div>" * 3_000,
        "<span><b>" * 50_000 + PARA,
        "<table>" * 5_000 + "<td>x" * 5_000,
        '<img srcset=", , ,x 1.5q, 9999999999999999999999999999w">' * 3,
        "<html><frameset><frame src=a></frameset></html>",
        "<svg><text>not content</text></svg><math><mi>x</mi></math>",
        "\ud800 lone \udfff surrogates <p>\udc80</p>",
        f'<head><base href="http://[::1"></head><article><p>{PARA}</p><img src="x.jpg"></article>',
        f'<p>{PARA}</p><img src="http://a:99999/x.jpg" width="1e99" height="99999999999999999999">',
        f'<p class="\x00" id="{"-" * 500}" role="" style="">{PARA}</p><img src alt width height>',
    ],
    ids=[
        "empty",
        "space",
        "plain",
        "control",
        "binary",
        "broken",
        "deep",
        "deep-inline",
        "deep-table",
        "bad-srcset",
        "frameset",
        "svg-math",
        "surrogates",
        "bad-base",
        "bad-image",
        "odd-attrs",
    ],
)
def test_garbage_never_raises(html: str) -> None:
    """extract_html catches nothing (an exception is a bug the caller records), so these pass only
    if every step copes with the input by construction."""
    ex = extract_html(html, PAGE, CONFIG)
    assert isinstance(ex, Extraction)
    assert all(n for n in ex.nodes)  # no empty blocks
    assert all(isinstance(n, str | ImageRef) for n in ex.nodes)


def test_package_exports_what_callers_import() -> None:
    """The names other code imports from ``pipeline.extract`` (the stage, tests, benchmarks)."""
    import pipeline.extract as extract

    for name in (
        "MAX_DEPTH",
        "MAX_IMAGE_SIDE",
        "Extraction",
        "ImageRef",
        "extract_html",
        "nesting_exceeds",
        "_best_from_srcset",  # bench/extract_bench.py
        "_declared_too_small",  # bench/extract_bench.py
    ):
        assert hasattr(extract, name), name
