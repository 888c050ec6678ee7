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


def test_parts_of_the_article_named_as_such_are_boilerplate() -> None:
    """ "entry-meta", "article__datestamp", "post-comments": a content word at the head of the
    name does not make the part content."""
    html = article_html(
        f"<div class='entry-content'><p>{PARA}</p><p>{PARA} Two.</p><p>{PARA} Three.</p></div>",
        "<div class='entry-meta'>Filed under Town hall, Budget, Schools by the editors</div>",
        "<div class='article__comments'><p>Great article, I agree with the mayor on this one!</p></div>",
    )
    texts = texts_of(extract_html(html, PAGE, CONFIG))
    assert texts == [PARA, f"{PARA} Two.", f"{PARA} Three."]


def test_a_listing_without_prose_gives_the_page_less_its_boilerplate() -> None:
    """A page of link items (a job board, a registry index) has no article: the best container
    is a short footer sentence. The whole page less nav/footer holds the items."""
    job = "Senior colour matching engineer no."
    items = "".join(f"<li><a href='/job/{i}'>{job} {i}</a></li>" for i in range(12))
    html = page_html(
        "<nav><a href='/'>Home</a> <a href='/jobs'>Jobs</a></nav>"
        f"<div id='jobs'><h1>Open positions in Zhongshan</h1><ul>{items}</ul></div>"
        "<div id='about'><p>The board is run by the city's employment office, which checks offers.</p></div>"
        "<footer><p>Copyright 2020 the employment office, all rights reserved.</p></footer>"
    )
    texts = texts_of(extract_html(html, PAGE, CONFIG))
    assert f"{job} 0" in texts and f"{job} 11" in texts
    assert "Open positions in Zhongshan" in texts
    assert not any("Copyright" in t or t.startswith("Home") for t in texts)


def test_a_short_news_item_stays_alone() -> None:
    """A short article (under 500 characters) with prose in it is not widened to the page."""
    teasers = "".join(f"<li><a href='/s/{i}'>More on the town, no. {i}</a></li>" for i in range(12))
    html = page_html(
        f"<div class='teasers'><ul>{teasers}</ul></div>"
        f"<article><p>{PARA} The vote was seven to two, and the budget takes effect in July.</p></article>"
    )
    texts = texts_of(extract_html(html, PAGE, CONFIG))
    assert texts == [f"{PARA} The vote was seven to two, and the budget takes effect in July."]


def test_a_list_the_text_announces_stays_whatever_its_links() -> None:
    """Link lists inside the article go ("more stories"), unless the sentence before announces them."""
    links = "".join(f"<li><a href='/{p}'>{p}://tz.example.org/</a></li>" for p in ("http", "ftp", "rsync"))
    html = article_html(
        f"<p>{PARA}</p><p>{PARA} Two.</p><p>We provide access to the database via three methods:</p>",
        f"<ul>{links}</ul><p>{PARA} Three.</p><ul><li><a href='/a'>Other story</a></li>"
        "<li><a href='/b'>Another story</a></li></ul>",
    )
    texts = texts_of(extract_html(html, PAGE, CONFIG))
    assert "ftp://tz.example.org/" in texts
    assert "Other story" not in texts


def test_a_heading_whose_section_went_goes_too() -> None:
    teasers = "".join(f"<li><a href='/s/{i}'>Story {i}</a></li>" for i in range(6))
    html = article_html(
        f"<h2>The vote</h2><p>{PARA}</p><p>{PARA} Two.</p><p>{PARA} Three.</p><h3>Related articles</h3>",
        f"<div class='related-links'><ul>{teasers}</ul></div><h3>Trending</h3><ul>{teasers}</ul>",
    )
    texts = texts_of(extract_html(html, PAGE, CONFIG))
    assert texts == ["The vote", PARA, f"{PARA} Two.", f"{PARA} Three."]


def test_an_item_of_a_list_is_not_the_page() -> None:
    """A publication list: the item with the longest author list must not win alone."""
    authors = ", ".join(f"Author {i}" for i in range(40))
    pubs = "".join(
        f"<li><div>Paper title number {i} about crowds. {authors if i == 3 else 'A. B.'}</div></li>"
        for i in range(6)
    )
    html = page_html(f"<div id='main'><div id='about'><p>{PARA}</p></div><ol>{pubs}</ol></div>")
    texts = " ".join(texts_of(extract_html(html, PAGE, CONFIG)))
    assert "Paper title number 0" in texts and "Paper title number 5" in texts and PARA in texts


def test_german_french_and_polish_names_count_like_english_ones() -> None:
    """ "artikel-inhalt" is content, "kommentare", "commentaires", "komentarze", "werbung" are not."""
    html = page_html(
        f"<div class='artikel-inhalt'><p>{PARA}</p><p>{PARA} Zwei.</p><p>{PARA} Drei.</p>"
        "<div class='werbung'><p>Jetzt den Newsletter abonnieren und nichts mehr verpassen, gratis!</p></div>"
        "<div id='kommentare'><p>Toller Artikel, vielen Dank für die Mühe und die Recherche!</p></div>"
        "<div class='liste-komentarze'><p>Świetny artykuł, dziękuję bardzo za te informacje.</p></div>"
        "</div>"
    )
    texts = texts_of(extract_html(html, PAGE, CONFIG))
    assert texts == [PARA, f"{PARA} Zwei.", f"{PARA} Drei."]
