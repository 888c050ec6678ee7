"""The walk's depth limits (pipeline/extract/walk.py): the pre-parse nesting guard and the cap."""

from __future__ import annotations

from pipeline.config import ExtractConfig
from pipeline.extract import MAX_DEPTH, extract_html, nesting_exceeds


def test_pathologically_nested_pages_are_caught_before_parsing():
    nested = "<html><body>" + "<div>" * 50_000 + "x" + "</div>" * 50_000 + "</body></html>"
    assert nesting_exceeds(nested)
    sloppy = "<html><body><ul>" + "<li><p>item" * 30_000 + "</ul></body></html>"  # omitted end tags
    assert not nesting_exceeds(sloppy)
    assert not nesting_exceeds("<div>" * 3_000)  # few tags: never scanned, the walk caps depth


def test_content_below_the_depth_cap_is_not_entered():
    shallow = "<div>" * 100 + "<p>kept</p>" + "</div>" * 100
    deep = "<div>" * (MAX_DEPTH + 50) + "<p>lost</p>" + "</div>" * (MAX_DEPTH + 50)
    assert extract_html(shallow, "http://a.example/", ExtractConfig()).nodes == ["kept"]
    assert extract_html(deep, "http://a.example/", ExtractConfig()).nodes == []
