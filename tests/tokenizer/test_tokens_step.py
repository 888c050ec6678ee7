"""The tokenizer and tokens steps in a job: a tokenizer beside the shards, ids in every sample."""

import io
import json
import tarfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from jobs.cli import main
from jobs.run import run_job
from jobs.spec import parse_job
from pipeline.config import JobSpecError
from pipeline.schema import empty_meta
from pipeline.storage import Storage
from shards.stats import render_stats
from shards.validate import validate_output
from tokenizer.encode import Encoder
from tokenizer.step import token_counts


def spec_for(out, shared_data, **tokenizer):
    return parse_job(
        {
            "name": "tokens",
            "output": str(out),
            "sources": [
                {"paths": [str(shared_data / "warc/resiliparse/warcfile.warc.gz")]},
                {
                    "type": "pairs",
                    "name": "laion",
                    "preset": "laion",
                    "paths": [str(shared_data / "pairs/img2dataset/test_10000.parquet")],
                },
            ],
            "images": {"fetch": False},
            "filters": {"enabled": False},
            "tokenizer": tokenizer or {"vocab_size": 4000},
            "shards": {"max_samples": 2000},
        }
    )


def shard_samples(out) -> list[tuple[dict, np.ndarray]]:
    got = []
    for shard in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        for name, data in sorted(members.items()):
            if name.endswith(".json"):
                key = name.removesuffix(".json")
                got.append((json.loads(data), np.frombuffer(members[f"{key}.tokens"], "<u4")))
    return got


@pytest.fixture(scope="module")
def job(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok") / "out"
    run_job(spec_for(out, shared_data), use_ray=False)
    return out


def test_the_tokenizer_and_its_card_sit_beside_the_shards(job):
    card = json.loads((job / "tokenizer/tokenizer.card.json").read_text())
    assert card["source"] == "trained" and card["vocab_size"] == 4000
    assert card["sample_bytes"] == card["corpus_bytes"] > 500_000  # less than 1 GB: all of it
    assert card["special_tokens"]["<image>"] == 3
    enc = Encoder.from_file(job / "tokenizer/tokenizer.json")
    assert enc.vocab_size == 4000


def test_every_sample_holds_its_ids_in_the_kosmos_layout(job):
    enc = Encoder.from_file(job / "tokenizer/tokenizer.json")
    samples = shard_samples(job)
    assert len(samples) > 9000
    kinds = set()
    for doc, ids in samples:
        kinds.add(doc["kind"])
        assert doc["tokens"]["count"] == len(ids)
        assert ids[0] == 0 and ids[-1] == 1
        assert doc["tokens"]["images"] == np.flatnonzero(ids == 3).tolist()
        assert len(doc["tokens"]["images"]) == sum(im is not None for im in doc["images"])
        if doc["kind"] == "pair":
            assert ids[1:3].tolist() == [3, 4]  # the image first, its caption after
        text = enc.decode(ids[1:-1][(ids[1:-1] != 3) & (ids[1:-1] != 4)].tolist())
        assert text == "".join(t for t in doc["texts"] if t)  # the stored (NFC) text, exactly
    assert kinds == {"text", "interleaved", "pair"}


def test_tokens_are_counted_in_the_manifest_stats_and_validate(job):
    stats = json.loads((job / "stats.json").read_text())
    counts = stats["steps"]["tokens"]["extra"]["tokens"]
    in_shards = sum(len(ids) for _, ids in shard_samples(job))
    manifest = pq.read_table(job / "manifest.parquet")
    assert counts["total"] == in_shards == stats["shards"]["tokens"] == sum(manifest["tokens"].to_pylist())
    assert set(counts["by_source"]) == {"cc", "laion"}
    assert sum(counts["by_kind"].values()) == sum(counts["by_source"].values()) == in_shards
    assert stats["steps"]["tokens"]["extra"]["encoder"] == {"tiktoken": 2}
    assert validate_output(Storage(str(job))).ok
    console = Console(record=True, width=150)
    render_stats(stats, console)
    shown = console.export_text()
    assert "Tokenizer: 4,000 tokens, trained on" in shown and "Context lengths" in shown


def test_validate_catches_ids_that_do_not_match_the_json(job, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(job, copy)
    shard = sorted((copy / "shards").glob("*.tar"))[0]
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(shard, "w") as tar:
        for m, data in members:
            if m.name.endswith(".tokens"):
                data = data[:-4]  # one token short
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data))
    problems = validate_output(Storage(str(copy))).problems
    assert any("tokens member holds" in p for p in problems)


def test_a_rerun_keeps_the_tokenizer_and_a_supplied_one_gives_the_same_ids(job, shared_data, tmp_path):
    before = (job / "tokenizer/tokenizer.json").read_bytes()
    run_job(spec_for(job, shared_data), use_ray=False)
    assert (job / "tokenizer/tokenizer.json").read_bytes() == before
    supplied = tmp_path / "mine.json"
    supplied.write_bytes(before)
    out = tmp_path / "out"
    spec = parse_job({**spec_for(out, shared_data).model_dump(mode="json"), "tokenizer": str(supplied)})
    assert spec.tokenizer.path == str(supplied)
    run_job(spec, use_ray=False)
    card = json.loads((out / "tokenizer/tokenizer.card.json").read_text())
    assert card["source"] == "supplied" and card["path"] == str(supplied)
    assert [ids.tolist() for _, ids in shard_samples(out)] == [ids.tolist() for _, ids in shard_samples(job)]


def test_a_missing_tokenizer_file_is_a_one_line_error(shared_data, tmp_path):
    spec = parse_job(
        {**spec_for(tmp_path / "o", shared_data).model_dump(mode="json"), "tokenizer": "/no/tok.json"}
    )
    with pytest.raises(JobSpecError, match="tokenizer.path: not found: /no/tok.json"):
        run_job(spec, use_ray=False)


def test_the_cli_trains_on_a_jobs_output_the_sample_the_job_took(job, tmp_path, capsys):
    assert (
        main(["tokenizer", "train", "--input", str(job), "--out", str(tmp_path), "--vocab-size", "4000"]) == 0
    )
    assert "tokenizer: 4,000 tokens" in capsys.readouterr().out
    mine = json.loads((tmp_path / "tokenizer.card.json").read_text())
    theirs = json.loads((job / "tokenizer/tokenizer.card.json").read_text())
    assert mine["sample_sha256"] == theirs["sample_sha256"]
    assert (tmp_path / "tokenizer.json").read_bytes() == (job / "tokenizer/tokenizer.json").read_bytes()


def test_documents_longer_than_8k_and_32k_contexts_are_counted():
    lengths = [10, 8192, 8193, 40_000]
    docs = pa.table(
        {
            "source": ["cc"] * 4,
            "kind": ["text", "text", "interleaved", "text"],
            "meta": [{**empty_meta(), "language": lang} for lang in ("en", "en", "de", None)],
            "tokens": pa.array([[0] * n for n in lengths], pa.list_(pa.uint32())),
        }
    )
    counts = token_counts(docs)
    assert counts["longer_than"] == {
        "8192": {"documents": 2, "tokens": 48_193},
        "32768": {"documents": 1, "tokens": 40_000},
    }
    assert counts["by_language"] == {"de": 8193, "en": 8202, "unknown": 40_000}
    assert counts["by_kind"] == {"interleaved": 8193, "text": 48_202}
