"""``loom validate``: every way a shard can disagree with the manifest is caught."""

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.storage import Storage
from shards.validate import validate_output
from shards.writer import MANIFEST_SCHEMA, manifest_row, to_sample, write_tar


def doc(i: int) -> dict:
    return {
        "id": f"{i:032x}",
        "source": "cc",
        "kind": "text",
        "url": f"https://a.example/{i}",
        "texts": [f"text {i}"],
        "images": [None],
        "meta": {"title": None},
    }


@pytest.fixture
def out(tmp_path):
    """A small valid output: two shards of three documents each."""
    (tmp_path / "shards").mkdir()
    rows = []
    for k in range(2):
        docs = [doc(3 * k + i) for i in range(3)]
        name = f"shards/cc-00000-{k:05d}.tar"
        write_tar([to_sample(d) for d in docs], str(tmp_path / name))
        rows.append(manifest_row(name, docs, str(tmp_path / name)))
    pq.write_table(pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA), tmp_path / "manifest.parquet")
    return tmp_path


def problems(out) -> list[str]:
    return validate_output(Storage(str(out))).problems


def test_a_valid_output_passes(out):
    report = validate_output(Storage(str(out)))
    assert report.ok and (report.shards, report.samples) == (2, 6)


def test_wrong_counts_are_named(out):
    table = pq.read_table(out / "manifest.parquet").to_pylist()
    table[0]["samples"], table[1]["text"] = 4, 2
    pq.write_table(pa.Table.from_pylist(table, schema=MANIFEST_SCHEMA), out / "manifest.parquet")
    assert problems(out) == [
        "shards/cc-00000-00000.tar: 3 samples, manifest says 4",
        "shards/cc-00000-00001.tar: 3 text, manifest says 2",
    ]


def test_duplicates_and_strays_are_caught(out):
    table = pq.read_table(out / "manifest.parquet").to_pylist()
    pq.write_table(pa.Table.from_pylist(table + table[:1], schema=MANIFEST_SCHEMA), out / "manifest.parquet")
    shutil.copy(out / "shards/cc-00000-00000.tar", out / "shards/cc-00000-00009.tar")
    assert problems(out) == [
        "shards/cc-00000-00000.tar: listed twice in the manifest",
        "shards/cc-00000-00009.tar: shard not in the manifest",
    ]


def test_the_same_document_in_two_shards_is_caught(out):
    docs = [doc(0)]
    name = "shards/cc-00000-00001.tar"
    write_tar([to_sample(d) for d in docs], str(out / name))
    table = pq.read_table(out / "manifest.parquet").to_pylist()
    table[1] = manifest_row(name, docs, str(out / name))
    pq.write_table(pa.Table.from_pylist(table, schema=MANIFEST_SCHEMA), out / "manifest.parquet")
    assert problems(out) == [f"{name}:{'0' * 32}: the same key is in shards/cc-00000-00000.tar"]


def test_a_missing_manifest_is_a_problem_not_a_crash(tmp_path):
    assert problems(tmp_path) == [f"{tmp_path}: no manifest.parquet (has the job finished?)"]
