"""Dedup inside a whole job: planted near-duplicates found, the kept set fixed, revisits removed."""

from __future__ import annotations

import itertools
import json
import logging

import pyarrow.compute as pc
import pytest
from datasketch import MinHash, MinHashLSH

from jobs.run import run_job
from jobs.spec import parse_job
from pipeline.dedup.apply import removed_ids
from pipeline.storage import Storage
from tests.pipeline.dedup.planted import jaccard, planted_pairs, shingles, write_warc

log = logging.getLogger(__name__)

THRESHOLD = 0.8
# Planted similarity levels: none within 0.05 of the threshold, where any 112-value estimate of
# Jaccard similarity is close to a coin flip (the figures for 0.75 and 0.85 are printed, not asserted).
LEVELS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.9, 0.95]


def dedup_job(tmp_path, warc, name: str, **dedup):
    return parse_job(
        {
            "output": str(tmp_path / name),
            "sources": [{"paths": [str(warc)]}],
            "images": {"fetch": False},
            "filters": {"enabled": False},  # dedup alone: the planted pages are not web prose
            "dedup": {"threshold": THRESHOLD, **dedup},
        }
    )


def clustered_pairs(storage: Storage) -> set[frozenset[str]]:
    """Pairs of document ids that ended in one cluster (removed id, kept id; members of one cluster)."""
    members: dict[str, set[str]] = {}
    for row in removed_ids(storage).to_pylist():
        kept = json.loads(row["detail"])["kept"]
        members.setdefault(kept, {kept}).add(row["id"])
    return {frozenset(p) for group in members.values() for p in itertools.combinations(sorted(group), 2)}


def precision_recall(found: set[frozenset[str]], truth: set[frozenset[str]]) -> tuple[float, float]:
    hits = len(found & truth)
    return hits / max(len(found), 1), hits / max(len(truth), 1)


def documents(storage: Storage):
    names = [n for n in storage.list("work/documents", ".parquet") if not n.endswith(".ledger.parquet")]
    return storage.read_parquets([f"work/documents/{n}" for n in names])


def extracted_texts(storage: Storage) -> dict[str, str]:
    docs = documents(storage)
    return {d["id"]: "\n".join(t for t in d["texts"] if t) for d in docs.select(["id", "texts"]).to_pylist()}


def datasketch_pairs(texts: dict[str, str], bands: int, rows: int) -> set[frozenset[str]]:
    """The in-memory reference: datasketch MinHash + MinHashLSH with the same bands and rows, and the
    same verification of every candidate against the threshold."""
    lsh = MinHashLSH(num_perm=bands * rows, params=(bands, rows))
    hashes = {}
    for key, text in texts.items():
        m = MinHash(num_perm=bands * rows, seed=1)
        m.update_batch([s.encode() for s in shingles(text)])
        hashes[key] = m
        lsh.insert(key, m)
    found = set()
    for key, m in hashes.items():
        for other in lsh.query(m):
            if other != key and m.jaccard(hashes[other]) >= THRESHOLD:
                found.add(frozenset((key, other)))
    return found


def test_planted_near_duplicates_are_found_with_the_precision_and_recall_of_datasketch(tmp_path):
    warc = write_warc(tmp_path / "planted.warc.gz", planted_pairs(LEVELS, per_level=30))
    spec = dedup_job(tmp_path, warc, "out")
    run_job(spec, use_ray=False)
    storage = Storage(spec.output)
    texts = extracted_texts(storage)
    assert len(texts) == 2 * 30 * len(LEVELS)
    sets = {k: shingles(t) for k, t in texts.items()}
    truth = {
        frozenset((a, b))
        for a, b in itertools.combinations(sorted(sets), 2)
        if jaccard(sets[a], sets[b]) >= THRESHOLD
    }
    assert len(truth) == 60  # the 0.9 and 0.95 pairs, nothing else

    found = clustered_pairs(storage)
    precision, recall = precision_recall(found, truth)
    bands, rows = spec.dedup.bands_rows()
    ds_precision, ds_recall = precision_recall(datasketch_pairs(texts, bands, rows), truth)
    log.warning(
        "planted pairs at %s, threshold %.2f, %d bands x %d rows: "
        "Loom P %.3f R %.3f; datasketch P %.3f R %.3f",
        LEVELS,
        THRESHOLD,
        bands,
        rows,
        precision,
        recall,
        ds_precision,
        ds_recall,
    )
    assert precision >= 0.95 and recall >= 0.95
    assert abs(precision - ds_precision) <= 0.05 and abs(recall - ds_recall) <= 0.05

    stats = json.loads((tmp_path / "out/stats.json").read_text())
    removed = stats["steps"]["dedup"]["drops"]
    assert removed == {"minhash": len(found)}  # one of each found pair goes, as a minhash removal


def test_the_kept_set_is_the_same_across_reruns_and_numbers_of_ray_workers(local_ray, tmp_path):
    pages = planted_pairs([0.5, 0.9, 0.95], per_level=8, seed=3)
    warcs = [write_warc(tmp_path / f"in-{i}.warc.gz", pages[i::3]) for i in range(3)]  # pairs across parts
    results = []
    for name, use_ray, workers in (
        ("local", False, None),
        ("ray1", True, 1),
        ("ray2", True, 2),
        ("again", True, 2),
    ):
        spec = parse_job(
            {
                "output": str(tmp_path / name),
                "sources": [{"paths": [str(w) for w in warcs]}],
                "images": {"fetch": False},
                "filters": {"enabled": False},  # dedup alone: the planted pages are not web prose
                "dedup": {"threshold": THRESHOLD},
                "ray": {"parallelism": workers},
            }
        )
        run_job(spec, use_ray=use_ray)
        ledger = removed_ids(Storage(spec.output))
        results.append(sorted(zip(ledger["id"].to_pylist(), ledger["detail"].to_pylist(), strict=True)))
    assert len(results[0]) >= 14  # 16 near-duplicate pairs planted above the threshold, across parts
    assert all(r == results[0] for r in results)


@pytest.mark.parametrize("archive", ["example.warc.gz", "dupes.warc.gz"])
def test_pywb_revisit_records_are_removed_by_exact_dedup(shared_data, tmp_path, archive):
    spec = parse_job(
        {
            "output": str(tmp_path / "out"),
            "sources": [{"paths": [str(shared_data / "warc" / "pywb" / archive)]}],
            "images": {"fetch": False},
            "filters": {"enabled": False},  # dedup alone: iana.org pages are short
        }
    )
    run_job(spec, use_ray=False)
    storage = Storage(spec.output)
    docs = documents(storage)
    ledger = removed_ids(storage)
    by_id = {d["id"]: d for d in docs.to_pylist()}
    # a revisit copy: same payload digest as an earlier capture of the archive
    first = {}
    copies = []
    for doc in sorted(by_id.values(), key=lambda d: d["meta"]["warc_offset"]):
        digest = doc["meta"]["payload_digest"]
        if digest in first:
            copies.append((doc["id"], first[digest]))
        else:
            first[digest] = doc["id"]
    assert copies, "the archive holds a revisit of an HTML capture"
    removed = {r["id"]: r for r in ledger.to_pylist()}
    for copy, original in copies:
        assert removed[copy]["reason"] in ("exact_url", "exact_text")
        assert json.loads(removed[copy]["detail"])["kept"] == original  # the earliest capture stays
    assert not {original for _, original in copies} & removed.keys()
    assert pc.sum(pc.equal(ledger["step"], "dedup")).as_py() == len(removed)
