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
