"""Pair tables → ``pair`` documents: formats, presets, and the rows that cannot become documents."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.spec import parse_job
from pipeline.sources.pairs import PairsToDocuments, read_pair_batches
from pipeline.stage import apply_stages


def source(**settings):
    spec = parse_job({"output": "o", "sources": [{"type": "pairs", "paths": ["x"], **settings}]})
    return spec.sources[0]


def documents(path, src, batch_rows=2):
    counts: Counter = Counter()
    kept, dropped = [], []
    for batch in read_pair_batches(str(path), src, batch_rows, counts):
        out = apply_stages(batch, [PairsToDocuments(src.name)], "documents")
        kept += out.kept.to_pylist()
        dropped += out.dropped.to_pylist()
    return kept, dropped, counts


def test_the_real_laion_table_becomes_pairs_with_the_image_first(shared_data):
    path = shared_data / "pairs/img2dataset/test_10000.parquet"
    kept, dropped, counts = documents(path, source(preset="laion"), batch_rows=4096)
    assert counts["rows"] == 10_000
    assert len(kept) + len(dropped) == 10_000
    reasons = Counter(d["reason"] for d in dropped)
    assert set(reasons) <= {"empty_caption", "bad_url"}
    doc = kept[0]
    assert doc["kind"] == "pair" and doc["source"] == "pairs"
    assert doc["texts"][0] is None and doc["images"][1] is None
    assert doc["images"][0]["url"] == doc["url"] and doc["texts"][1]
    assert len({d["id"] for d in kept}) == len(kept)  # ids: (source, url, file:row)


def test_cc3m_tsv_without_header_and_its_bad_rows(tmp_path):
    path = tmp_path / "Train_GCC-training.tsv"
    path.write_bytes(
        b"a dog on a beach\thttp://img.example/dog.jpg\n"
        b"caf\xe9 in latin-1\thttp://img.example/cafe.jpg\n"  # not UTF-8: dropped, not fatal
        b"   \thttp://img.example/blank.jpg\n"
        b"a cat\tjavascript:alert(1)\n"
        b"a bird\thttp://img.example/\xff.jpg\n"  # a URL that is not UTF-8: one dropped row
        b'a "quoted" caption\thttp://img.example/q.jpg\n'
        b"only one column\n"
    )
    kept, dropped, counts = documents(path, source(preset="cc3m"))
    assert [d["texts"][1] for d in kept] == ["a dog on a beach", 'a "quoted" caption']
    assert Counter(d["reason"] for d in dropped) == {"caption_not_utf8": 1, "empty_caption": 1, "bad_url": 2}
    assert counts["bad_row"] == 1


def test_datacomp_csv_uses_its_uid_for_the_id(tmp_path):
    path = tmp_path / "shard.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write(
            'uid,url,text\nu1,https://a.example/1.jpg,"one, with a comma"\nu2,https://a.example/2.jpg,two\n'
        )
    kept, _, _ = documents(path, source(preset="datacomp", name="dc"))
    assert [d["texts"][1] for d in kept] == ["one, with a comma", "two"]
    again, _, _ = documents(path, source(preset="datacomp", name="dc"))
    assert [d["id"] for d in kept] == [d["id"] for d in again]


def test_coyo_jsonl_and_custom_columns(tmp_path):
    path = tmp_path / "coyo.jsonl"
    lines = [
        json.dumps({"id": 7, "url": "https://b.example/a.png", "text": "a red bicycle"}),
        "not json",
        json.dumps({"id": 8, "url": "https://b.example/b.png", "text": ""}),
    ]
    path.write_text("\n".join(lines) + "\n")
    kept, dropped, counts = documents(path, source(preset="coyo"))
    assert [d["texts"][1] for d in kept] == ["a red bicycle"]
    assert [d["reason"] for d in dropped] == ["empty_caption"]
    assert counts["bad_row"] == 1
    own = tmp_path / "mine.parquet"
    pq.write_table(pa.table({"image": ["https://c.example/x.jpg"], "alt": ["x"]}), own)
    kept, _, _ = documents(own, source(url_column="image", caption_column="alt"))
    assert kept[0]["url"] == "https://c.example/x.jpg"


def test_a_missing_column_names_the_columns_there_are(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"link": ["https://a.example/1.jpg"], "TEXT": ["x"]}), path)
    with pytest.raises(ValueError, match="no column 'URL' \\(columns: link, TEXT\\)"):
        documents(path, source(preset="laion"))
    csv = tmp_path / "t.csv"
    csv.write_text("link,TEXT\nhttps://a.example/1.jpg,x\n")
    with pytest.raises(ValueError, match="no column 'URL' \\(columns: link, TEXT\\)"):
        documents(csv, source(preset="laion"))


def test_a_pair_table_on_s3(s3, tmp_path):
    s3.make_bucket("pairs")
    local = tmp_path / "part-0.parquet"
    pq.write_table(
        pa.table({"URL": ["https://a.example/1.jpg", "https://a.example/2.jpg"], "TEXT": ["a", "b"]}), local
    )
    s3.client().upload_file(str(local), "pairs", "laion/part-0.parquet")
    from pipeline.sources.paths import expand_paths

    s3.client().upload_file(str(local), "pairs", "laion/old/part-1.parquet")
    s3.client().upload_file(str(local), "pairs", "laion/part-2.pq")

    files = expand_paths([s3.uri("pairs", "laion/*.parquet")])  # like a local glob: not into old/
    assert files == [s3.uri("pairs", "laion/part-0.parquet")]
    assert expand_paths([s3.uri("pairs", "laion/*/part-?.parquet")]) == [
        s3.uri("pairs", "laion/old/part-1.parquet")
    ]
    kept, _, _ = documents(files[0], source(preset="laion"))
    assert [d["texts"][1] for d in kept] == ["a", "b"]
    kept, _, _ = documents(s3.uri("pairs", "laion/part-2.pq"), source(preset="laion", format="parquet"))
    assert len(kept) == 2


def test_limit_reads_the_first_files(tmp_path):
    for k in range(3):
        pq.write_table(
            pa.table({"URL": ["https://a.example/1.jpg"], "TEXT": ["x"]}), tmp_path / f"p{k}.parquet"
        )
    from pipeline.documents import plan_parts

    spec = parse_job(
        {
            "output": "o",
            "sources": [{"type": "pairs", "preset": "laion", "paths": [f"{tmp_path}/*.parquet"], "limit": 2}],
        }
    )
    assert [p.args["path"] for p in plan_parts(spec.sources)] == [
        str(tmp_path / "p0.parquet"),
        str(tmp_path / "p1.parquet"),
    ]
