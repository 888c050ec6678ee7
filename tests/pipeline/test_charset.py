"""Charset decoding (:mod:`pipeline.sources.charset`): BOM, then valid UTF-8, then the declared charset
by the WHATWG label table checked against the bytes, then detection; and the real pages that came out
as mojibake before."""

from __future__ import annotations

import codecs
import gzip
from collections import Counter
from pathlib import Path

import pytest

from pipeline.sources import commoncrawl
from pipeline.sources.charset import decode_html, html5_codec, html_to_str, meta_charset

ZH = "中文网页，欢迎光临本站。这里有最新的新闻和视频。"
FR = "Le café est à côté de l'église, où l'on mange une crème brûlée. "
KO = "한국어 웹 페이지에 오신 것을 환영합니다. 최신 뉴스와 동영상이 있습니다. "
JA = "日本語のウェブページへようこそ。最新のニュースと動画があります。"


def page(text: str, charset: str | None = None) -> str:
    meta = f'<meta http-equiv="Content-Type" content="text/html; charset={charset}">' if charset else ""
    return f"<html><head>{meta}<title>t</title></head><body><p>{text}</p></body></html>"


def gb_page() -> bytes:
    return page(ZH * 20, "gb2312").encode("gbk")


# --- labels ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("gb2312", "gb18030"),
        ("GBK", "gb18030"),
        ("x-gbk", "gb18030"),
        ("csGB2312", "gb18030"),
        ("gb18030", "gb18030"),
        ("iso-8859-1", "cp1252"),
        ("latin1", "cp1252"),
        ("latin-1", "cp1252"),  # not a WHATWG label, common on pages
        ("US-ASCII", "cp1252"),
        ("windows-1251", "cp1251"),
        ("euc-kr", "cp949"),
        ("ks_c_5601-1987", "cp949"),
        ("shift_jis", "cp932"),
        ("big5", "big5hkscs"),
        ("tis-620", "cp874"),
        ("utf8", "utf-8"),
        (" 'UTF-8' ", "utf-8"),
        ("euc_jp", "euc_jp"),  # the detector's spelling
        ("hz-gb-2312", None),  # the spec's "replacement" labels carry no usable text
        ("iso-2022-kr", None),
        ("no-such-charset", None),
        (None, None),
    ],
)
def test_labels_map_through_the_whatwg_table(label, codec):
    assert html5_codec(label) == codec


def test_the_meta_charset_is_found_past_the_first_kilobyte():
    late = "<html><head><script>" + "var x = 1;\n" * 300 + "</script><meta charset='GBK'></head></html>"
    assert meta_charset(late.encode()) == "GBK"
    assert meta_charset(page("x", "gb2312").encode()) == "gb2312"  # http-equiv … content="…; charset="
    assert meta_charset(b"<meta name='description' content='UTF-8'><p>x</p>") is None


# --- the rules ----------------------------------------------------------------------------------------


def test_a_bom_decides_and_is_not_part_of_the_text():
    body = codecs.BOM_UTF8 + page(FR, "windows-1252").encode()
    assert decode_html(body, None) == (page(FR, "windows-1252"), "utf-8")
    assert decode_html(body, "iso-8859-1") == (page(FR, "windows-1252"), "utf-8")
    assert decode_html(codecs.BOM_UTF16_LE + page(ZH).encode("utf-16-le"), None) == (page(ZH), "utf-16-le")
    assert decode_html(codecs.BOM_UTF16_BE + page(ZH).encode("utf-16-be"), None) == (page(ZH), "utf-16-be")


@pytest.mark.parametrize(
    ("html", "http"),
    [
        (page(FR * 3), "windows-1251"),
        (page(FR * 3, "iso-8859-1"), None),
        (page(ZH * 5, "gb2312"), "gb2312"),
    ],
)
def test_valid_utf8_wins_over_a_wrong_declaration(html, http):
    assert decode_html(html.encode(), http) == (html, "utf-8")


def test_utf8_with_a_stray_byte_stays_utf8_despite_a_gb2312_declaration():
    body = page(ZH * 5, "gb2312").encode().replace(b"<p>", b"<p>\xff")
    text, codec = decode_html(body, None)
    assert codec == "utf-8" and text == page("\ufffd" + ZH * 5, "gb2312")


@pytest.mark.parametrize(
    ("insert", "shown"),
    [
        ("𠀀".encode("gb18030"), "𠀀"),  # a GB18030 four-byte character
        ("未滿18週歲".encode("gbk"), "未滿18週歲"),  # GBK characters that are not in GB2312
        (b"\x80", "€"),  # GBK's euro sign, as WHATWG reads it
        (b"\xff", "\ufffd"),  # a stray byte costs one character, not the page
    ],
)
def test_gb2312_declared_reads_as_gb18030(insert, shown):
    body = gb_page().replace(b"<p>", b"<p>" + insert)
    want = page(shown + ZH * 20, "gb2312")
    assert decode_html(body, "gb2312") == (want, "gb18030")
    assert decode_html(body, None) == (want, "gb18030")


def test_a_gb2312_page_cut_in_the_middle_of_a_character():
    body = gb_page()
    cut = body[: body.index(b"</p>") - 1]  # Common Crawl keeps pages cut at 1 MiB (WARC-Truncated)
    text, codec = decode_html(cut, "gb2312")
    assert codec == "gb18030" and text == cut[:-1].decode("gbk") + "\ufffd"


def test_bytes_windows_1252_leaves_unassigned_are_c1_controls():
    body = page(FR, "windows-1252").encode("cp1252").replace(b"<p>", b"<p>\x81")
    assert decode_html(body, None) == (page("\x81" + FR, "windows-1252"), "cp1252")


def test_http_and_meta_disagree_the_detector_decides():
    # a server's default iso-8859-1 over a page that says (and is) gb2312
    assert decode_html(gb_page(), "iso-8859-1") == (page(ZH * 20, "gb2312"), "gb18030")
    cp1251 = page("Привет, мир! Как дела? " * 20, "windows-1251")
    assert decode_html(cp1251.encode("cp1251"), "utf-8") == (cp1251, "cp1251")


@pytest.mark.parametrize(
    ("html", "encoding", "codec"),
    [
        ("<html><body><p>The team hasn’t shipped it yet.</p></body></html>", "utf-8", "utf-8"),
        (page(KO * 10), "euc-kr", "cp949"),
        (page(FR * 3), "cp1252", "cp1252"),
        (page(JA * 10), "shift_jis", "cp932"),
        (page(ZH * 20), "gbk", "gb18030"),
    ],
)
def test_undeclared_pages_utf8_then_detection(html, encoding, codec):
    assert decode_html(html.encode(encoding), None) == (html, codec)


def test_ascii_pages_read_the_same_in_any_charset():
    assert decode_html(page("plain", "iso-8859-1").encode(), None) == (page("plain", "iso-8859-1"), "cp1252")
    assert decode_html(b"<p>plain</p>", None) == ("<p>plain</p>", "utf-8")
    assert decode_html(b"<p>plain</p>", "windows-1251") == ("<p>plain</p>", "cp1251")
    jis = page(JA, "iso-2022-jp")
    assert decode_html(jis.encode("iso2022_jp"), None) == (jis, "iso2022_jp")


def test_html_to_str_is_the_warc_path_without_a_header():
    body = page(FR, "windows-1252").encode("cp1252")
    assert html_to_str(body) == decode_html(body, None)[0] == page(FR, "windows-1252")
    assert commoncrawl.decode_html is decode_html  # the WARC path's decoding is this one


# --- real pages ---------------------------------------------------------------------------------------

#: Pages of the shared data that came out as mojibake before: valid UTF-8 with no usable declaration,
#: where the detector (reading the first 128 KiB) said cp1250 / cp1252. (path, a piece of their text)
WRONG_BEFORE = [
    ("html/readability/test-pages/ol/source.html", "AI hasn’t meaningfully changed"),
    (  # <meta charset="UTF-8"> at byte 1,491, past resiliparse's <meta> prescan
        "html/article-extraction-benchmark/html/"
        "34a7328535ad4e60b059f81d37eec5d25c2bc8de759ce9a7b5e47ac7dc6fd1b0.html.gz",
        "Kate Henshaw",
    ),
    (  # no declaration, ASCII for the first 110,685 bytes
        "html/article-extraction-benchmark/html/"
        "374ac9a59a85196cdacc1679fb8993521a7b7d9d6533720f102300be1c7face4.html.gz",
        'content:"•"',
    ),
]


def read_page(path: Path) -> bytes:
    if not path.is_file():
        pytest.skip(f"{path} not found in the shared data")
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


@pytest.mark.parametrize(("rel", "piece"), WRONG_BEFORE, ids=["readability-ol", "linknaija", "cnbc"])
def test_the_pages_that_were_mojibake(shared_data, rel, piece):
    body = read_page(shared_data / rel)
    text, codec = decode_html(body, None)
    assert codec == "utf-8" and text == body.decode("utf-8")
    assert piece in text and "â€" not in text and "Â\xa0" not in text


#: The Common Crawl excerpt's 16 pages: the charset each decodes with (gb2312/gbk pages as gb18030).
CC_EXCERPT = {
    "http://003338.cn/l41/481397.html": "utf-8",
    "http://01spb.ru/company/": "cp1251",
    "http://035.psb556.com/24/i/u_1090813/article.html": "utf-8",
    "http://037426.cn/": "gb18030",
    "http://041696.com/15477/list_6_4.html": "gb18030",
    "http://044545.com/topic/20200207/015849.html": "utf-8",
    "http://0513mt.com/index.php/art/detail/id/8884.html": "utf-8",
    "http://05925.net/index.php/vod/type/id/53.html": "utf-8",  # with a UTF-8 BOM
    "http://06.live-radsport.ch/fahrerstatistik_801/Anthony_Ravard.html": "cp1252",
    "http://06.live-radsport.ch/tippspiel/stats_140_petzi.html": "cp1252",
    "http://0615235.com/02mjqjo%7Bibotij2.btq?odmbtt=106&tdmbtt=121": "utf-8",
    "http://0755krk.com/76104/list_4_1.html": "gb18030",
    "http://0760.jxtdw.com/area/sanxiang/": "gb18030",
    "http://077678u.info/erxiaoshujinguang/list_6_2.html": "gb18030",
    "http://0900-hovenier.nl/gelderland/oosterbeek/": "utf-8",
    "http://096355.com/video/11073.html?11073-0-2": "gb18030",
}


def test_the_cc_excerpt_decodes_as_declared(shared_data):
    path = shared_data / "warc/resiliparse/warcfile.warc.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found in the shared data")
    rows = [r for r in commoncrawl.read_archive(str(path), 5_000_000, Counter()) if r["body"]]
    got = {r["url"]: decode_html(r["body"], r["http_charset"]) for r in rows}
    assert {url: codec for url, (_, codec) in got.items()} == CC_EXCERPT
    for row in rows:
        text, codec = got[row["url"]]
        assert "\ufffd" not in text and not text.startswith("\ufeff")
        if codec == "gb18030":  # GB pages: the same text Python's gbk gives, now under the WHATWG codec
            assert text == row["body"].decode("gbk")


def test_every_valid_utf8_page_of_the_shared_data_is_utf8(shared_data):
    """The readability and article-benchmark pages are all UTF-8 (some say gb2312 or nothing)."""
    paths = sorted((shared_data / "html/readability/test-pages").glob("*/source.html"))
    paths += sorted((shared_data / "html/article-extraction-benchmark/html").glob("*.html.gz"))
    if not paths:
        pytest.skip("no HTML pages in the shared data")
    wrong = []
    for path in paths:
        body = read_page(path)
        want = body.decode("utf-8").removeprefix("\ufeff")
        if decode_html(body, None) != (want, "utf-8"):
            wrong.append(path.name if path.name != "source.html" else path.parent.name)
    assert wrong == [] and len(paths) == 311
