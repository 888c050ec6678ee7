"""The documents step: an input file with no bytes is counted, not mistaken for an empty part."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.spec import parse_job
from pipeline.documents import DocumentsStep, plan_parts
from pipeline.storage import Storage


@pytest.mark.parametrize(
    "name, source",
    [
        ("CC-MAIN-empty.warc.gz", {}),
        ("pairs.parquet", {"type": "pairs"}),
    ],
)
def test_an_empty_input_file_is_one_drop_with_its_ledger_row(tmp_path: Path, name: str, source: dict):
    empty = tmp_path / name
    empty.write_bytes(b"")
    out = tmp_path / "out"
    spec = parse_job(
        {
            "name": "t",
            "output": str(out),
            "sources": [{"paths": [str(empty)], **source}],
            "images": {"fetch": False},
        }
    )
    storage = Storage(str(out))
    (part,) = plan_parts(spec.sources)
    step = DocumentsStep(storage, [part], spec.sources, spec.extract)
    stats = step.run_part(part)
    assert (stats.rows_in, stats.rows_out, dict(stats.drops)) == (1, 0, {"empty_input": 1})
    (row,) = storage.read_parquet(step["ledger"].path(part.name)).to_pylist()
    assert row["url"] == str(empty) and row["reason"] == "empty_input" and row["stage"] == "read"
    assert storage.read_parquet(step["documents"].path(part.name)).num_rows == 0


def pairs_step(tmp_path: Path, captions: list[str], **source) -> tuple[DocumentsStep, object]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp_path.mkdir(parents=True)
    table = tmp_path / "pairs.parquet"
    urls = [f"https://img.example.com/{i}.jpg" for i in range(len(captions))]
    pq.write_table(pa.table({"url": urls, "caption": captions}), table)
    out = tmp_path / "out"
    spec = parse_job(
        {
            "name": "t",
            "output": str(out),
            "sources": [{"type": "pairs", "paths": [str(table)], **source}],
            "images": {"fetch": False},
        }
    )
    (part,) = plan_parts(spec.sources)
    return DocumentsStep(Storage(str(out)), [part], spec.sources, spec.extract), part


def test_a_huge_caption_is_dropped_by_reason_or_cut(tmp_path: Path):
    huge = "word " * 2_000_000  # 10 MB
    step, part = pairs_step(tmp_path / "drop", ["a cat", huge])
    stats = step.run_part(part)
    assert (stats.rows_out, dict(stats.drops)) == (1, {"caption_too_long": 1})
    (row,) = step.storage.read_parquet(step["ledger"].path(part.name)).to_pylist()
    assert "9,999,999 characters > 4,096" in row["detail"]  # stripped

    step, part = pairs_step(tmp_path / "cut", ["a cat", huge], max_caption_chars=100, long_captions="cut")
    stats = step.run_part(part)
    assert stats.rows_out == 2 and stats.extra["captions_cut"] == 1
    captions = [
        d["texts"][1] for d in step.storage.read_parquet(step["documents"].path(part.name)).to_pylist()
    ]
    assert captions[0] == "a cat" and len(captions[1]) <= 100 and captions[1].endswith("word")
