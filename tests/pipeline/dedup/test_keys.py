"""Document keys: URL and text normalization, pairs, and the order that decides which copy stays."""

from __future__ import annotations

from pipeline.config import DedupConfig
from pipeline.dedup.keys import exact_keys, node_id, nodes_of, normalize_url
from pipeline.schema import empty_meta


def doc(
    id_: str,
    kind: str = "text",
    url: str = "https://a.example/x",
    texts=("Some text",),
    images=(None,),
    **meta,
):
    return {
        "id": id_,
        "kind": kind,
        "url": url,
        "texts": list(texts),
        "images": list(images),
        "meta": {**empty_meta(), **meta},
    }


def test_urls_that_name_one_page_normalize_alike():
    same = [
        "https://www.Example.com/path/",
        "http://example.com/path",
        "https://example.com:443/path#section",
    ]
    assert {normalize_url(u) for u in same} == {"example.com/path"}
    assert normalize_url("https://example.com/path?b=2&a=1") == "example.com/path?b=2&a=1"
    assert normalize_url("https://example.com:8080/") == "example.com:8080"
    assert normalize_url("http://[::1") == "http://[::1"  # not a URL: compared as it is


def test_text_documents_key_on_url_and_normalized_text():
    a = exact_keys(doc("1", texts=["Hello   World"]), DedupConfig())
    b = exact_keys(doc("2", url="http://www.a.example/x/", texts=["hello world"]), DedupConfig())
    assert a == b == [(0, "a.example/x"), (1, "hello world")]


def test_a_document_of_images_only_keys_on_its_images():
    images = [
        {"url": "https://i.example/1.jpg", "sha256": "ab" * 32},
        {"url": "https://i.example/2.jpg", "sha256": None},
    ]
    keys = exact_keys(doc("1", kind="interleaved", texts=[None, None], images=images), DedupConfig())
    assert keys[1] == (2, f"{'ab' * 32}\nhttps://i.example/2.jpg")


def test_pairs_key_on_image_and_caption_together():
    image = {"url": "https://i.example/cat.jpg", "sha256": "cd" * 32}
    pair = doc("1", kind="pair", url=image["url"], texts=[None, "A Cat"], images=[image, None])
    assert exact_keys(pair, DedupConfig()) == [(0, "i.example/cat.jpg\na cat"), (1, f"{'cd' * 32}\na cat")]


def test_nodes_sort_in_keep_order_and_carry_their_part():
    early = doc("f" * 32, crawl_date="2020-01-01T00:00:00Z")
    late = doc("0" * 32, crawl_date="2024-01-01T00:00:00Z")
    undated = doc("1" * 32)
    nodes = nodes_of([early, late, undated], 7, "earliest")
    assert sorted(nodes) == nodes  # earliest first, whatever the ids; no date last
    assert node_id(nodes[0]) == "f" * 32 and nodes[0].endswith(f"{7:08x}")  # the documents part

    longer = doc("f" * 32, texts=["a much longer text"])
    shorter = doc("0" * 32, texts=["short"])
    assert min(nodes_of([longer, shorter], 0, "text_chars")) == nodes_of([longer], 0, "text_chars")[0]
    assert min(nodes_of([longer, shorter], 0, "id")) == nodes_of([shorter], 0, "id")[0]
