"""Webdataset shards: one sample per document, reproducible to the byte.

Each documents part becomes its own run of shards, ``shards/<part>-<k>.tar``, closed by sample count
and size, so shard writing runs in parallel with no global plan and the same documents always give
the same shards. Inside a shard, samples are ordered by key (the document id), members are sorted,
``mtime`` is 0 and owners are fixed. A shard is written to a temporary name and renamed; its manifest
row goes into the part's completion marker. The format is described in ``docs/FORMAT.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter
from typing import Any

import pyarrow as pa
import webdataset as wds

from pipeline.config import JobSpec
from pipeline.runner import Part, PartStats
from pipeline.stage import Resources
from pipeline.steps import documents_path
from pipeline.storage import Storage

FORMAT_VERSION = 1
FORMAT = f"loom/{FORMAT_VERSION}"
SHARDS = "shards"


def sample_json(doc: dict[str, Any]) -> bytes:
    """The ``json`` member of a sample: the document, compact, keys sorted, UTF-8."""
    body = {
        "format": FORMAT,
        "id": doc["id"],
        "source": doc["source"],
        "kind": doc["kind"],
        "url": doc["url"],
        "texts": doc["texts"],
        "images": doc["images"],
        "meta": {k: v for k, v in doc["meta"].items() if v is not None},
    }
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def to_sample(doc: dict[str, Any]) -> dict[str, Any]:
    return {"__key__": doc["id"], "json": sample_json(doc)}


def plan_shards(sizes: list[int], max_samples: int, max_bytes: int) -> list[tuple[int, int]]:
    """Cut rows with these sample sizes into [start, stop) runs of at most max_samples / max_bytes."""
    runs, start, total = [], 0, 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= max_samples or total + size > max_bytes):
            runs.append((start, i))
            start, total = i, 0
        total += size
    if start < len(sizes):
        runs.append((start, len(sizes)))
    return runs


def write_tar(samples: list[dict[str, Any]], path: str) -> None:
    """Write samples (sorted by key) to a tar at ``path`` with reproducible headers."""
    with open(path, "wb") as f:
        writer = wds.TarWriter(f, user="loom", group="loom", mode=0o444, mtime=0, encoder=False)
        for sample in sorted(samples, key=lambda s: s["__key__"]):
            writer.write(sample)
        writer.close()


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def manifest_row(name: str, docs: list[dict[str, Any]], path: str) -> dict[str, Any]:
    kinds = Counter(d["kind"] for d in docs)
    return {
        "shard": name,
        "samples": len(docs),
        "text": kinds.get("text", 0),
        "pair": kinds.get("pair", 0),
        "interleaved": kinds.get("interleaved", 0),
        "images": sum(im is not None for d in docs for im in d["images"]),
        "tokens": 0,
        "bytes": os.path.getsize(path),
        "sha256": file_sha256(path),
    }


MANIFEST_SCHEMA = pa.schema(
    [
        ("shard", pa.string()),
        ("samples", pa.int64()),
        ("text", pa.int64()),
        ("pair", pa.int64()),
        ("interleaved", pa.int64()),
        ("images", pa.int64()),
        ("tokens", pa.int64()),
        ("bytes", pa.int64()),
        ("sha256", pa.string()),
    ]
)


class ShardsStep:
    """Final documents → webdataset shards; the marker of each part lists its shards' manifest rows."""

    name = SHARDS
    resources = Resources(cpus=1)

    def __init__(self, spec: JobSpec, storage: Storage, parts: list[Part]):
        self.spec = spec
        self.storage = storage
        self._parts = [Part(p.name) for p in parts]  # one run of shards per documents part

    def parts(self) -> list[Part]:
        return self._parts

    def run_part(self, part: Part) -> PartStats:
        docs = self.storage.read_parquet(documents_path(part.name)).to_pylist()
        samples = [to_sample(d) for d in docs]
        sizes = [len(s["json"]) + 1024 for s in samples]  # + tar headers
        cfg = self.spec.shards
        rows = []
        with tempfile.TemporaryDirectory(prefix="loom-shard-") as tmp:
            for k, (start, stop) in enumerate(plan_shards(sizes, cfg.max_samples, cfg.max_bytes)):
                name = f"{SHARDS}/{part.name}-{k:05d}.tar"
                local = os.path.join(tmp, os.path.basename(name))
                write_tar(samples[start:stop], local)
                rows.append(manifest_row(name, docs[start:stop], local))
                self.storage.put_file(local, name)
        return PartStats(rows_in=len(docs), rows_out=len(docs), extra={"shards": rows})
