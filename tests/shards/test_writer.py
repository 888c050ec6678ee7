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


def test_a_part_written_a_few_documents_at_a_time_gives_the_same_shards(demo_result, tmp_path, monkeypatch):
    """The shards step holds one batch of a part and one open shard, not the part: read three documents
    at a time, the demo's parts give the same shards, byte for byte."""
    import json
    import shutil

    import pyarrow.parquet as pq

    from jobs.run import run_job
    from jobs.spec import parse_job
    from shards.writer import ShardsStep

    root = tmp_path / "result"
    shutil.copytree(demo_result, root)
    for done in ("work/shards", "shards"):
        shutil.rmtree(root / done)
    (root / "manifest.parquet").unlink()
    monkeypatch.setattr(ShardsStep, "batch_rows", 3)
    spec = json.loads((root / "job.json").read_text())["spec"] | {"output": str(root)}
    run_job(parse_job(spec), use_ray=False)
    assert pq.read_table(root / "manifest.parquet").equals(pq.read_table(demo_result / "manifest.parquet"))
