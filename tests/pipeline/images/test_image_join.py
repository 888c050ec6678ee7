"""Fetch results back onto documents: what stays, what goes, and what the ledger says."""

from __future__ import annotations

from pipeline.images.join import attach


def image(url):
    return {"url": url, "sha256": None, "width": 640, "height": None, "alt": "alt"}


OK = {"status": "ok", "error": None, "sha256": "ab" * 32, "width": 512, "height": 384}
GONE = {
    "status": "http_404",
    "error": "HTTP Error 404: Not Found",
    "sha256": None,
    "width": None,
    "height": None,
}


def test_a_failed_image_leaves_an_interleaved_document_and_its_text_blocks_merge():
    doc = {
        "id": "d1",
        "url": "https://site.example/a",
        "kind": "interleaved",
        "texts": ["first", None, "second", None, "third"],
        "images": [None, image("https://i.example/1.jpg"), None, image("https://i.example/2.jpg"), None],
    }
    ledger = []
    out = attach(doc, {"https://i.example/1.jpg": OK, "https://i.example/2.jpg": GONE}, ledger)
    assert out["kind"] == "interleaved"
    assert out["texts"] == ["first", None, "second\n\nthird"]
    assert out["images"][1] == {
        **image("https://i.example/1.jpg"),
        "sha256": "ab" * 32,
        "width": 512,
        "height": 384,
    }
    assert ledger == [
        {
            "id": "d1",
            "url": "https://i.example/2.jpg",
            "step": "join",
            "stage": "image",
            "reason": "image_http_404",
            "detail": "HTTP Error 404: Not Found",
        }
    ]


def test_an_interleaved_document_with_no_image_left_becomes_text():
    doc = {
        "id": "d2",
        "url": "u",
        "kind": "interleaved",
        "texts": [None, "caption"],
        "images": [image("x"), None],
    }
    ledger = []
    out = attach(doc, {"x": GONE}, ledger)
    assert out["kind"] == "text" and out["texts"] == ["caption"] and out["images"] == [None]


def test_a_pair_whose_image_failed_is_marked_dropped_with_the_reason():
    doc = {"id": "p", "url": "x", "kind": "pair", "texts": [None, "a cat"], "images": [image("x"), None]}
    removed = []
    out = attach(doc, {"x": GONE}, removed)
    assert (out["_drop_reason"], out["_drop_detail"]) == ("image_http_404", "HTTP Error 404: Not Found")
    assert removed == []  # the document goes whole: no image row
    assert attach(doc, {}, [])["_drop_reason"] == "image_not_fetched"  # never fetched: recorded too
