"""The training sample: seeded, about the size asked, streamed; and the files it reads."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tokenizer.sample import Sample, file_documents


def lines_of(sentences) -> list[str]:
    return [line for lines in sentences.values() for line in lines]


def source(lines, size=100, reads=None):
    def batches():
        for i in range(0, len(lines), size):
            if reads is not None:
                reads.append(i)
            yield [[t] for t in lines[i : i + size]]

    return batches


def chosen(sample: Sample) -> list[str]:
    return [t for batch in sample.texts() for t in batch]


def test_the_same_seed_takes_the_same_documents_whatever_the_batching(sentences):
    lines = lines_of(sentences)
    a = Sample(source(lines, 100), 200_000, seed=1).plan()
    b = Sample(source(lines, 37), 200_000, seed=1).plan()
    assert chosen(a) == chosen(b)
    assert a.sha256 == b.sha256
    c = Sample(source(lines, 100), 200_000, seed=2).plan()
    assert chosen(c) != chosen(a)


def test_it_takes_about_the_bytes_asked(sentences):
    lines = lines_of(sentences)
    total = sum(len(t.encode()) for t in lines)
    sample = Sample(source(lines), total // 4, seed=0).plan()
    assert sample.total_bytes == total and sample.total_documents == len(lines)
    assert sample.fraction == pytest.approx(0.25, abs=1e-5)
    chosen(sample)
    assert 0.22 * total < sample.bytes < 0.28 * total
    everything = Sample(source(lines), 10 * total, seed=0).plan()
    assert len(chosen(everything)) == len(lines) and everything.fraction == 1.0


def test_it_streams_a_batch_at_a_time(sentences):
    lines = lines_of(sentences)
    reads: list[int] = []
    sample = Sample(source(lines, 100, reads), 10**9, seed=0).plan()
    reads.clear()
    stream = sample.texts()
    next(stream)
    assert reads == [0]  # one batch read, not the whole corpus
    next(stream)
    assert reads == [0, 100]


def test_it_reads_loom_documents_text_tables_json_lines_and_text_files(tmp_path):
    docs = pa.table({"id": ["a", "b"], "texts": [["one", None, "two"], [None, "caption"]]})
    pq.write_table(docs, tmp_path / "part.parquet")
    pq.write_table(pa.table({"id": ["x"], "reason": ["dup"]}), tmp_path / "part.ledger.parquet")  # skipped
    pq.write_table(pa.table({"text": ["plain", None]}), tmp_path / "texts.parquet")
    (tmp_path / "more.jsonl").write_text(json.dumps({"text": "json line"}) + "\n\n")
    (tmp_path / "book.txt").write_text("a whole\nfile")
    got = [d for batch in file_documents([tmp_path])() for d in batch]
    assert got == [["a whole\nfile"], ["json line"], ["one", "two"], ["caption"], ["plain"]]


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        file_documents([tmp_path / "missing"])
    with pytest.raises(ValueError, match="no input files"):
        file_documents([tmp_path])
    pq.write_table(pa.table({"url": ["u"]}), tmp_path / "urls.parquet")
    with pytest.raises(ValueError, match="needs a `texts`"):
        list(file_documents([tmp_path])())
