"""The training mixture: token shares, one global shuffle, nested subsets, reproducible output.

The steps run here, without a job or Ray, on a generated tokenized corpus with skewed document sizes
(``shards.generate``: log-normal token counts, pairs of ~24 tokens beside pages of thousands).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipeline.runner import StepFailed
from pipeline.step import Data
from pipeline.storage import Storage
from shards.config import MixConfig
from shards.generate import write_generated
from shards.mix import BUCKETS, MixError, MixStep, plan_mixture
from shards.shuffle import ShuffleStep
from shards.train import TrainStep
from shards.validate import _check_subsets, validate_train

TOKENS = Data("tokens", "documents", "work/tokens/{part}.parquet")
WEIGHTS = {"text": 0.55, "interleaved": 0.4, "pair": 0.05}


def corpus(root: Path, parts: int = 4, documents: int = 6000) -> Storage:
    storage = Storage(str(root))
    write_generated(storage, TOKENS.pattern, parts, documents)
    return storage


def part_names(storage: Storage) -> list:
    from pipeline.runner import Part

    return [Part(n.removesuffix(".parquet")) for n in storage.list(TOKENS.folder, ".parquet")]


def run_mix(storage: Storage, **settings) -> dict:
    """Run mix → shuffle → train on ``storage``'s generated corpus; the train step's stats."""
    cfg = MixConfig(**{"weights": WEIGHTS, "shard_tokens": 1_000_000, "bucket_tokens": 3_000_000, **settings})
    parts = part_names(storage)
    mix = MixStep(storage, parts, TOKENS, cfg)
    mix.run(None)
    shuffle = ShuffleStep(storage, parts, TOKENS, mix["plan"], mix["positions"], cfg)
    shuffle.run(None)
    return TrainStep(storage, parts, shuffle["documents"], mix["plan"], cfg).run(None).stats.extra


def stream(storage: Storage) -> list[tuple[str, str, int]]:
    """Every training sample in order: (key, kind, tokens), read back from the tars."""
    out = []
    for row in storage.read_parquet("train/manifest.parquet").to_pylist():
        with tarfile.open(fileobj=io.BytesIO(storage.read_bytes(row["shard"]))) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".json"):
                    doc = json.loads(tar.extractfile(member).read())
                    out.append((member.name.removesuffix(".json"), doc["kind"], doc["tokens"]["count"]))
    return out


def shares(samples: list[tuple[str, str, int]]) -> dict[str, float]:
    by_kind: Counter = Counter()
    for _, kind, n in samples:
        by_kind[kind] += n
    total = sum(by_kind.values())
    return {k: by_kind[k] / total for k in WEIGHTS}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Storage:
    storage = corpus(tmp_path_factory.mktemp("mix"))
    run_mix(storage, max_epochs={"pair": 3}, subsets=[0.05, 0.2, 0.5])
    return storage


def test_the_mixture_meets_its_shares_within_half_a_point(mixed):
    samples = stream(mixed)
    got = shares(samples)
    assert all(abs(got[k] - w) <= 0.005 for k, w in WEIGHTS.items()), got
    plan = mixed.read_json("work/mix/plan.json")
    assert sum(n for _, _, n in samples) == plan["tokens"]  # what the plan counted, and no more
    pair = next(c for c in plan["components"] if c["name"] == "pair")
    assert 2 < pair["taken_tokens"] / pair["tokens"] <= 3  # the pairs repeat, within max_epochs


def test_the_order_is_shuffled_across_parts_and_repeats_get_their_own_key(mixed):
    keys = [key for key, _, _ in stream(mixed)]
    assert len(keys) == len(set(keys))
    repeats = [k for k in keys if "-" in k]
    assert repeats and all(k.rsplit("-", 1)[0] in set(keys) for k in repeats)
    # consecutive samples come from every part: no long run of one input part
    ids = [k.split("-")[0] for k in keys]
    part_of = {}
    for name in mixed.list("work/tokens", ".parquet"):
        for doc_id in mixed.read_parquet(f"work/tokens/{name}", ["id"])["id"].to_pylist():
            part_of[doc_id] = name
    first = [part_of[i] for i in ids[:200]]
    assert len(set(first)) == 4


def test_subsets_are_nested_prefixes_that_hold_the_shares(mixed):
    subsets = mixed.read_json("train/subsets.json")
    samples = stream(mixed)
    sizes = [s["samples"] for s in subsets["subsets"]]
    assert sizes == sorted(sizes) and sizes[0] > 0  # each a prefix of the next: nested
    for subset in subsets["subsets"]:
        head = samples[: subset["samples"]]
        assert sum(n for _, _, n in head) == subset["tokens"]
        assert abs(subset["tokens"] - subset["fraction"] * subsets["tokens"]) <= max(n for _, _, n in samples)
        got = shares(head)
        assert all(abs(got[k] - w) <= 0.01 for k, w in WEIGHTS.items()), (subset["fraction"], got)
        assert got == pytest.approx(subset["shares"], abs=1e-6)
        last = subset["shards"][-1]
        rows = {r["shard"]: r for r in mixed.read_parquet("train/manifest.parquet").to_pylist()}
        assert rows[last]["sample_offset"] + subset["last_shard_samples"] == subset["samples"]


def test_the_manifest_counts_tokens_by_kind_and_cumulative_offsets(mixed):
    rows = mixed.read_parquet("train/manifest.parquet").to_pylist()
    offset = 0
    for row in rows:
        assert row["token_offset"] == offset
        assert row["tokens"] == sum(row[f"{k}_tokens"] for k in WEIGHTS)
        offset += row["tokens"]
    by_bucket: dict[str, list] = {}
    for row in rows:
        by_bucket.setdefault(row["shard"].split("-")[0], []).append(row["tokens"])
    assert len(by_bucket) > 1 and all(n >= 1_000_000 for runs in by_bucket.values() for n in runs[:-1])
    report = validate_train(mixed)
    assert report.ok, report.problems
    assert report.samples == len(stream(mixed))


def test_two_runs_and_a_run_after_failed_parts_give_the_same_bytes(mixed, tmp_path, monkeypatch):
    clean = {n: mixed.read_bytes(f"train/{n}") for n in mixed.list("train")}
    storage = corpus(tmp_path / "again")
    real = TrainStep.run_part
    failed = []

    def flaky(self, part):
        if part.name == "00001" and not failed:
            failed.append(part.name)
            raise OSError("connection reset (a killed worker)")
        return real(self, part)

    monkeypatch.setattr(TrainStep, "run_part", flaky)
    with pytest.raises(StepFailed, match="00001"):
        run_mix(storage, max_epochs={"pair": 3}, subsets=[0.05, 0.2, 0.5])
    assert storage.exists("work/train/00000.done") and not storage.exists("work/train/00001.done")
    run_mix(storage, max_epochs={"pair": 3}, subsets=[0.05, 0.2, 0.5])  # resumes: the rest of the parts
    again = {n: storage.read_bytes(f"train/{n}") for n in storage.list("train")}
    assert sorted(again) == sorted(clean)
    assert [n for n in clean if clean[n] != again[n]] == []


def test_a_bigger_budget_keeps_the_smaller_ones_documents_in_their_order(tmp_path):
    small, big = corpus(tmp_path / "small", 2, 800), corpus(tmp_path / "big", 2, 800)
    run_mix(small, tokens=400_000, max_epochs=4)
    run_mix(big, tokens=800_000, max_epochs=4)
    a, b = [k for k, _, _ in stream(small)], [k for k, _, _ in stream(big)]
    assert set(a) < set(b)
    assert [k for k in b if k in set(a)] == a  # the bigger one extends, never reshuffles


def test_a_component_never_takes_more_epochs_than_its_max(tmp_path):
    """The scarcest component (pairs, max_epochs 1) sets the budget while text may repeat: the
    pairs are taken once, exactly, and the shards hold what the plan counted."""
    storage = corpus(tmp_path, 2, 600)
    train = run_mix(storage, weights={"pair": 0.25, "text": 0.75}, max_epochs={"text": 2})
    plan = storage.read_json("work/mix/plan.json")
    pair = next(c for c in plan["components"] if c["name"] == "pair")
    assert pair["taken_tokens"] == pair["tokens"] and train["tokens"] == plan["tokens"]
    keys = [k for k, kind, _ in stream(storage) if kind == "pair"]
    assert len(keys) == pair["documents"] and not any("-" in k for k in keys)


def test_a_subset_too_small_for_one_sample_is_an_error(tmp_path):
    with pytest.raises(
        MixError, match=r"mix\.subsets: 1e-09 of the mixture's .* tokens holds not one sample"
    ):
        run_mix(corpus(tmp_path, 1, 300), subsets=[1e-9, 0.5])


def test_validate_checks_the_subsets_against_the_manifest():
    rows = [
        {
            "shard": "train/00000-00000.tar",
            "samples": 10,
            "tokens": 100,
            "token_offset": 0,
            "sample_offset": 0,
        },
        {
            "shard": "train/00000-00001.tar",
            "samples": 10,
            "tokens": 100,
            "token_offset": 100,
            "sample_offset": 10,
        },
    ]
    good = {
        "fraction": 0.6,
        "samples": 12,
        "tokens": 120,
        "shards": [r["shard"] for r in rows],
        "last_shard_samples": 2,
    }
    assert _check_subsets([good], rows) == []
    skipped = {**good, "shards": rows[1:]}
    assert "not the first shards" in _check_subsets([skipped], rows)[0]
    assert "do not end in" in _check_subsets([{**good, "samples": 13}], rows)[0]
    smaller = {**good, "fraction": 0.9, "samples": 2, "tokens": 20, "shards": [rows[0]["shard"]]}
    assert "not nested" in _check_subsets([good, smaller], rows)[0]


def test_retrying_images_reopens_the_training_set_from_scratch(tmp_path):
    storage = corpus(tmp_path, 1, 300)
    run_mix(storage)
    cfg = MixConfig(weights=WEIGHTS)
    mix = MixStep(storage, part_names(storage), TOKENS, cfg)
    TrainStep(storage, part_names(storage), Data("shuffle", "documents", ""), mix["plan"], cfg).reopen()
    assert storage.list("train") == [] and storage.list("work/train") == []


def test_a_budget_past_max_epochs_names_the_component_and_what_it_holds():
    cfg = MixConfig(weights={"text": 0.5, "pair": 0.5}, tokens=1000)
    tokens = np.zeros((2, 1, BUCKETS), np.int64)
    documents = np.zeros_like(tokens)
    tokens[0, 0, :10], documents[0, 0, :10] = 100, 1  # pair: 1,000 tokens in 10 documents
    tokens[1, 0, :3], documents[1, 0, :3] = 100, 1  # text: 300 tokens in 3 documents
    with pytest.raises(MixError, match=r"need 500 tokens of text, 1.67 epochs .*300 tokens in 3 documents"):
        plan_mixture(cfg, tokens, documents)
    plan = plan_mixture(cfg.model_copy(update={"tokens": None}), tokens, documents)
    assert plan.budget == 600 and [c.taken_tokens for c in plan.components] == [300, 300]
    with pytest.raises(MixError, match="no tokens of kind 'pair'"):
        plan_mixture(cfg, np.zeros_like(tokens), documents)


def test_on_s3_the_same_bytes_as_on_local_disk(s3, tmp_path):
    s3.make_bucket("mix")
    remote, local = Storage(s3.uri("mix", "run")), Storage(str(tmp_path / "local"))
    for storage in (remote, local):
        write_generated(storage, TOKENS.pattern, 2, 600)
        run_mix(storage, tokens=300_000, max_epochs=4, bucket_tokens=100_000, subsets=[0.5])
    names = local.list("train")
    assert len(names) > 4 and remote.list("train") == names
    assert all(remote.read_bytes(f"train/{n}") == local.read_bytes(f"train/{n}") for n in names)
