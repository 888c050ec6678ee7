"""Shards: cut by count and size, reproducible to the byte, readable by plain webdataset."""

import json

import webdataset as wds

from shards.writer import FORMAT, plan_shards, sample_json, to_sample, write_tar


def doc(i: int, kind: str = "text") -> dict:
    images = [
        None,
        {"url": f"https://img.example/{i}.png", "sha256": None, "width": 640, "height": 480, "alt": "a"},
    ]
    return {
        "id": f"{i:032x}",
        "source": "cc",
        "kind": kind,
        "url": f"https://site.example/{i}",
        "texts": [f"page {i} text", None] if kind == "interleaved" else [f"page {i} text"],
        "images": images if kind == "interleaved" else [None],
        "meta": {"title": f"Page {i}", "language": None, "warc_offset": i},
    }


def test_shards_close_by_count_and_by_size():
    assert plan_shards([10] * 7, max_samples=3, max_bytes=1000) == [(0, 3), (3, 6), (6, 7)]
    assert plan_shards([400, 400, 400, 50], max_samples=10, max_bytes=1000) == [(0, 2), (2, 4)]
    assert plan_shards([5000, 1], max_samples=10, max_bytes=1000) == [(0, 1), (1, 2)]  # one big sample alone
    assert plan_shards([], max_samples=10, max_bytes=1000) == []


def test_the_sample_json_drops_null_meta_and_names_the_format():
    body = json.loads(sample_json(doc(1, "interleaved")))
    assert body["format"] == FORMAT
    assert body["texts"] == ["page 1 text", None]
    assert body["images"][1]["url"] == "https://img.example/1.png"
    assert body["meta"] == {"title": "Page 1", "warc_offset": 1}


def test_the_same_samples_give_the_same_bytes_whatever_their_order(tmp_path):
    samples = [to_sample(doc(i)) for i in range(20)]
    write_tar(samples, tmp_path / "a.tar")
    write_tar(list(reversed(samples)), tmp_path / "b.tar")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_plain_webdataset_reads_a_shard(tmp_path):
    write_tar([to_sample(doc(i, "interleaved")) for i in range(5)], tmp_path / "s.tar")
    got = list(wds.WebDataset(str(tmp_path / "s.tar"), shardshuffle=False))
    assert [s["__key__"] for s in got] == [f"{i:032x}" for i in range(5)]
    assert json.loads(got[2]["json"])["kind"] == "interleaved"
