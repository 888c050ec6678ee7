"""filters.text: the words, tokens, lines, paragraphs and sentences the text filters count.

The tokens and the sentence count stand in for spaCy's English tokenizer and sentencizer (what
datatrove runs): crafted examples show each convention, and on the readability test pages the
fast path of ``tokens`` equals its one-regex definition and the sentence count equals spaCy's
on nearly every line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from filters.base import joined_text
from filters.text import (
    count_sentences,
    has_cjk,
    is_symbol,
    lines,
    paragraphs,
    tokens,
    tokens_slow,
    words,
)
from pipeline.config import ExtractConfig
from pipeline.extract import extract_html
from pipeline.sources.commoncrawl import nodes_to_lists


def test_words_split_on_whitespace_and_segment_cjk():
    assert words("The cat, the hat.") == ["The", "cat,", "the", "hat."]
    assert words("我们喜欢 Python 编程") == ["我们", "喜欢", "Python", "编", "程"]  # ICU's dictionary
    assert words("東京都は今日、新しい政策を発表しました。") == [
        "東京", "都", "は", "今日", "、", "新しい", "政策", "を", "発表", "しま", "した", "。",
    ]  # fmt: skip
    assert has_cjk("漢字 kanji") and not has_cjk("plain Latin, ελληνικά, кириллица")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The end.", ["The", "end", "."]),
        ('"Hello," she said.', ['"', "Hello", ",", '"', "she", "said", "."]),
        ("don't it's they're", ["don", "'t", "it", "'s", "they", "'re"]),
        ("o'clock d’un", ["o'clock", "d’un"]),
        ("well-known 3-4 x--y", ["well", "-", "known", "3", "-", "4", "x", "--", "y"]),
        ("3.5 10,000 5:30 1/2 HTTP/1.1", ["3.5", "10,000", "5:30", "1/2", "HTTP/1.1"]),
        ("U.S. e.g. J. Smith", ["U.S.", "e.g.", "J.", "Smith"]),
        ("example.com node.js end.Start", ["example.com", "node.js", "end", ".", "Start"]),
        ("(see https://a.org/x?y=1).", ["(", "see", "https://a.org/x?y=1", ")", "."]),
        ("-81 /usr @user km/h", ["-81", "/usr", "@user", "km", "/", "h"]),
        ("Wait... what…", ["Wait", "...", "what", "…"]),
        ("#tag $5 50%", ["#", "tag", "$", "5", "50", "%"]),
        ("中文，好。", ["中文", "，", "好", "。"]),
    ],
)
def test_tokens_split_punctuation_off_like_a_word_tokenizer(text: str, expected: list[str]):
    assert tokens(text) == expected
    assert tokens_slow(text) == expected


def test_symbols_are_tokens_of_punctuation_only():
    assert all(is_symbol(t) for t in [",", "...", "--", "»", "“", "#", "%", "•", "、"])
    assert not any(is_symbol(t) for t in ["a", "3", "©", "★", "don", "'s", "#1"])


def test_lines_and_paragraphs():
    text = "  First line \nsecond line\n\n\nNew paragraph\n \n"
    assert lines(text) == ["First line", "second line", "New paragraph"]
    assert paragraphs(text) == ["  First line \nsecond line", "New paragraph"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", 0),
        ("One sentence without an end", 1),
        ("The first. The second! A third? Yes.", 4),
        ('He said "yes." Then he left.', 2),
        ("Mr. Smith met Dr. Jones at 5 p.m. in the U.S. today.", 1),
        ("See e.g., the appendix. Then stop.", 2),
        ("It was 2020. Then 2021.", 2),
        ("Wait... what? Really… no.", 2),
        ("Hi. - there", 2),
        ("The value is 3.5 and the site is example.com today.", 1),
        ("We met.Then we left.", 2),
        ("第一句。第二句！第三句？", 3),
    ],
)
def test_count_sentences(line: str, expected: int):
    assert count_sentences(line) == expected


# --------------------------------------------------------------------------------------------------
# Real text: the readability test pages
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page_texts(shared_data: Path) -> list[str]:
    texts = []
    for page in sorted((shared_data / "html" / "readability" / "test-pages").iterdir()):
        html = (page / "expected.html").read_text(encoding="utf-8", errors="replace")
        blocks, _ = nodes_to_lists(
            extract_html(html, "http://fakehost/test/page.html", ExtractConfig()).nodes
        )
        texts.append(joined_text(blocks))
    return texts


def test_tokens_fast_path_equals_the_regex_definition_on_real_pages(page_texts: list[str]):
    assert len(page_texts) == 130
    different = [i for i, text in enumerate(page_texts) if tokens(text) != tokens_slow(text)]
    assert different == []


def test_sentence_count_matches_spacys_sentencizer_on_real_lines(page_texts: list[str]):
    """datatrove's C4 counts sentences with spaCy's English sentencizer, line by line."""
    from datatrove.utils.text import split_into_sentences

    same = total = 0
    misses = []
    for text in page_texts:
        if has_cjk(text):
            continue  # spaCy's English rules do not segment CJK; Loom does (see above)
        for line in text.splitlines():
            line = line.strip()
            if not line.endswith((".", "!", "?")):
                continue
            theirs, ours = len(split_into_sentences(line)), count_sentences(line)
            total += 1
            same += theirs == ours
            if theirs != ours:
                misses.append(f"spacy={theirs} loom={ours}: {line[:120]}")
    # the figures for the reader (pytest -s): the point of this test
    print(f"sentence counts equal to spaCy's: {same}/{total} lines", *misses[:10], sep="\n  ")  # noqa: T201
    assert total > 2000
    assert same / total >= 0.99


def test_each_text_is_tokenized_once_for_all_families_within_a_bounded_cache(monkeypatch):
    import filters.text as text_module

    monkeypatch.setattr(text_module, "_TOKENS_KEPT", 1000)
    monkeypatch.setattr(text_module, "_tokens_cache", {})
    monkeypatch.setattr(text_module, "_tokens_held", 0)
    made = []
    real = text_module._tokenize
    monkeypatch.setattr(text_module, "_tokenize", lambda t: made.append(t) or real(t))
    page = "The cat sat on the mat. " * 20  # 140 tokens
    assert text_module.tokens(page) is text_module.tokens(page[:-1] + " ")  # an equal text: no new list
    assert made == [page]
    for i in range(30):  # 30 other texts of 140 tokens: the oldest leave, the cache stays bounded
        text_module.tokens(page + str(i))
        assert text_module._tokens_held <= 1000
    assert text_module.tokens(page) == real(page) and len(made) == 32  # it was evicted, made again
