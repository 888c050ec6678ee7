"""Output assembly (pipeline/extract/assemble.py): whitespace, <br>, <pre>, and the caps."""

from __future__ import annotations

from pipeline.config import ExtractConfig
from pipeline.extract import extract_html
from tests.pipeline.extract.crafted import CONFIG, PAGE, PARA, images_of, page_html, texts_of


def test_whitespace_entities_and_br() -> None:
    html = page_html(
        f"<article><p>  Fish &amp; chips\n   cost &pound;5 &nbsp;today.<br>Second line</p>"
        f"<p>{PARA}<br><br>After a blank line</p><p> </p></article>"
    )
    texts = texts_of(extract_html(html, PAGE, CONFIG))
    assert texts[0] == "Fish & chips cost £5 today.\nSecond line"
    assert texts[1:] == [PARA, "After a blank line"]  # <br><br> splits blocks, empty <p> gives nothing


def test_pre_keeps_lines() -> None:
    html = page_html(f"<article><p>{PARA}</p><pre>def f(x):\n    return x + 1\n</pre></article>")
    assert "def f(x):\n    return x + 1" in texts_of(extract_html(html, PAGE, CONFIG))


def test_max_images_cap() -> None:
    imgs = "".join(f'<p>{PARA}</p><img src="/i{i}.jpg" width="400" height="300">' for i in range(5))
    ex = extract_html(page_html(f"<article>{imgs}</article>"), PAGE, ExtractConfig(max_images=2))
    assert [i.url for i in images_of(ex)] == ["https://example.com/i0.jpg", "https://example.com/i1.jpg"]
    assert len(texts_of(ex)) == 5  # text continues after the cap
    ex = extract_html(page_html(f"<article>{imgs}</article>"), PAGE, ExtractConfig(max_images=0))
    assert images_of(ex) == []


def test_max_text_chars_cap() -> None:
    html = page_html("<article>" + f"<p>{PARA}</p>" * 10 + "</article>")
    ex = extract_html(html, PAGE, ExtractConfig(max_text_chars=400))
    texts = texts_of(ex)
    assert sum(len(t) for t in texts) <= 400
    assert texts[0] == PARA and texts[-1] and len(texts) == 3


def test_a_repeated_caption_goes_a_repeated_paragraph_stays() -> None:
    """A gallery repeats each caption (the slide and the thumbnail strip); a paragraph that
    repeats is the author's (a refrain) and stays."""
    caption = "Karma Automotive unveils the GSe-6 electric sedan at the Los Angeles auto show on Tuesday."
    html = page_html(
        f"<article><p>{PARA}</p><div class='caption'>{caption}</div><p>Chorus line of the song.</p>"
        f"<p>{PARA} Again.</p><div class='caption'>{caption}</div><p>Chorus line of the song.</p></article>"
    )
    texts = texts_of(extract_html(html, PAGE, CONFIG))
    assert texts.count(caption) == 1
    assert texts.count("Chorus line of the song.") == 2


def test_datelines_and_photo_credits_go_dates_in_sentences_and_tables_stay() -> None:
    html = page_html(
        "<article><div>Updated 5:27 am CST, Wednesday, November 20, 2019</div>"
        f"<p>{PARA}</p><div><span>Photo: Hau Dinh, AP</span></div>"
        "<p>This article was updated on January 13, 2024.</p>"
        "<table><tr><td>20.11.2019</td><td>14:35</td></tr></table>"
        "<div>Aktualisiert am 20.11.2019, 14:35 Uhr</div></article>"
    )
    texts = texts_of(extract_html(html, PAGE, CONFIG))
    assert texts == [PARA, "This article was updated on January 13, 2024.", "20.11.2019 14:35"]
