"""Webdataset shards: one sample per document, reproducible to the byte.

Each documents part becomes its own run of shards, ``shards/<part>-<k>.tar``, closed by sample count
and size, so shard writing runs in parallel with no global plan and the same documents always give
the same shards. Inside a shard, samples are ordered by key (the document id), members are sorted,
``mtime`` is 0 and owners are fixed. A shard is written to a temporary name and renamed; its manifest
row goes into the part's manifest rows, and the step joins them into ``OUT/manifest.parquet``.
The format is described in ``docs/FORMAT.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import webdataset as wds

from pipeline.clip.images import read_embeddings
from pipeline.images.table import files_holding
from pipeline.runner import Part, PartStats, RayContext, StepResult
from pipeline.schema import plain_meta
from pipeline.step import Data, Step, document_parts
from pipeline.storage import Storage
from shards.config import ShardsConfig
from shards.format import FORMAT, FORMAT_VERSION, MANIFEST, SHARDS

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST", "SHARDS", "ShardsStep"]


def sample_json(doc: dict[str, Any]) -> bytes:
    """The ``json`` member of a sample: the document, compact, keys sorted, UTF-8; a tokenized
    document also says how many tokens its ``tokens`` member holds and where each image's
    ``<image>`` token is."""
    body = {
        "format": FORMAT,
        "id": doc["id"],
        "source": doc["source"],
        "kind": doc["kind"],
        "url": doc["url"],
        "texts": doc["texts"],
        "images": doc["images"],
        "meta": plain_meta(doc["meta"]),
    }
    if doc.get("tokens") is not None:
        body["tokens"] = {"count": len(doc["tokens"]) // 4, "images": doc["image_tokens"]}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def to_sample(
    doc: dict[str, Any],
    images: dict[str, tuple[str, bytes]] | None = None,
    embeddings: dict[str, bytes] | None = None,
) -> dict[str, Any]:
    """A document's sample: its JSON, its token ids (member ``tokens``: little-endian uint32, in
    ``doc["tokens"]`` as bytes) when tokenized, and its image members (:func:`image_members`)."""
    sample: dict[str, Any] = {"__key__": doc["id"], "json": sample_json(doc)}
    if doc.get("tokens") is not None:
        sample["tokens"] = doc["tokens"]
    sample.update(image_members(doc["images"], images, embeddings))
    return sample


def image_members(
    doc_images: list[dict[str, Any] | None],
    images: dict[str, tuple[str, bytes]] | None = None,
    embeddings: dict[str, bytes] | None = None,
) -> dict[str, bytes]:
    """For each fetched image at position ``i``, the member ``<i>.<format>`` with the stored bytes
    (``images``: sha256 → (format, bytes)) and, when CLIP ran, ``<i>.clip``: its embedding,
    little-endian float16 (``embeddings``: sha256 → bytes)."""
    members = {}
    for i, image in enumerate(doc_images):
        if image is not None and image["sha256"] is not None:
            fmt, data = (images or {})[image["sha256"]]
            members[f"{i}.{fmt}"] = data
            if embeddings and image["sha256"] in embeddings:
                members[f"{i}.clip"] = embeddings[image["sha256"]]
    return members


def sample_size(sample: dict[str, Any]) -> int:
    return sum(len(v) + 512 for k, v in sample.items() if k != "__key__") + 512  # + tar headers


def closes_shard(samples: int, total: int, size: int, max_samples: int, max_bytes: int) -> bool:
    """Whether a shard holding ``samples`` samples of ``total`` bytes closes before a sample of
    ``size`` bytes (a shard always takes its first sample, however large)."""
    return samples > 0 and (samples >= max_samples or total + size > max_bytes)


def plan_shards(sizes: list[int], max_samples: int, max_bytes: int) -> list[tuple[int, int]]:
    """Cut rows with these sample sizes into [start, stop) runs of at most max_samples / max_bytes."""
    runs, start, total = [], 0, 0
    for i, size in enumerate(sizes):
        if closes_shard(i - start, total, size, max_samples, max_bytes):
            runs.append((start, i))
            start, total = i, 0
        total += size
    if start < len(sizes):
        runs.append((start, len(sizes)))
    return runs


def write_tar(samples: list[dict[str, Any]], path: str, by_key: bool = True) -> None:
    """Write samples to a tar at ``path`` with reproducible headers: sorted by key, or as given
    (``by_key=False``: the training shards keep the shuffled order)."""
    with open(path, "wb") as f:
        writer = wds.TarWriter(f, user="loom", group="loom", mode=0o444, mtime=0, encoder=False)
        for sample in sorted(samples, key=lambda s: s["__key__"]) if by_key else samples:
            writer.write(sample)
        writer.close()


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def manifest_row(
    name: str, docs: list[dict[str, Any]], path: str, embedded: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A shard's manifest row; ``embedded``: the sha256s with an embedding, the model and its dim."""
    kinds = Counter(d["kind"] for d in docs)
    embedded = embedded or {}
    shas = embedded.get("shas", set())
    return {
        "shard": name,
        "samples": len(docs),
        "text": kinds.get("text", 0),
        "pair": kinds.get("pair", 0),
        "interleaved": kinds.get("interleaved", 0),
        "images": sum(im is not None for d in docs for im in d["images"]),
        "image_files": sum(im is not None and im["sha256"] is not None for d in docs for im in d["images"]),
        "tokens": sum(len(d["tokens"]) // 4 for d in docs if d.get("tokens") is not None),
        "embeddings": sum(im is not None and im["sha256"] in shas for d in docs for im in d["images"]),
        "embedding_model": embedded.get("model"),
        "embedding_dim": embedded.get("dim"),
        "bytes": os.path.getsize(path),
        "sha256": file_sha256(path),
    }


def document_dicts(table: pa.Table) -> list[dict[str, Any]]:
    """Documents as dicts, a tokenized document's ``tokens`` as little-endian uint32 bytes."""
    if "tokens" not in table.column_names:
        return table.to_pylist()
    tokens = table["tokens"].combine_chunks()
    values = tokens.values.to_numpy(zero_copy_only=False).astype("<u4")
    offsets = tokens.offsets.to_numpy()
    docs = table.drop_columns(["tokens"]).to_pylist()
    for i, doc in enumerate(docs):
        doc["tokens"] = values[offsets[i] : offsets[i + 1]].tobytes()
    return docs


def _wanted(docs: list[dict[str, Any]]) -> list[str]:
    return sorted({im["sha256"] for d in docs for im in d["images"] if im and im["sha256"]})


def image_files(
    storage: Storage, table: Data | None, docs: list[dict[str, Any]]
) -> dict[str, tuple[str, bytes]]:
    """sha256 → (format, stored bytes) of the images these documents use, from the image ``table``
    (only the table parts that hold them are read)."""
    wanted = _wanted(docs)
    files = files_holding(storage, table, wanted) if table else []
    if not files:
        return {}
    where = pc.field("sha256").isin(pa.array(wanted, pa.string()))
    found = storage.read_parquets(files, ["sha256", "format", "image"], where)
    return {r["sha256"]: (r["format"], r["image"]) for r in found.to_pylist()}


def image_embeddings(
    storage: Storage, embeddings: Data | None, docs: list[dict[str, Any]]
) -> dict[str, bytes]:
    """sha256 → CLIP embedding (float16 bytes) of the images these documents use."""
    if embeddings is None:
        return {}
    return {sha: vec.tobytes() for sha, vec in read_embeddings(storage, embeddings, _wanted(docs)).items()}


def embedded_record(storage: Storage, model: Data | None, embeddings: dict[str, bytes]) -> dict[str, Any]:
    """What :func:`manifest_row` needs of the embeddings: which images have one, the model, its dim."""
    return {"shas": set(embeddings), **(storage.read_json(model.path()) if model else {})}


MANIFEST_SCHEMA = pa.schema(
    [
        ("shard", pa.string()),
        ("samples", pa.int64()),
        ("text", pa.int64()),
        ("pair", pa.int64()),
        ("interleaved", pa.int64()),
        ("images", pa.int64()),
        ("image_files", pa.int64()),
        ("tokens", pa.int64()),
        ("embeddings", pa.int64()),  # <i>.clip members
        ("embedding_model", pa.string()),  # open_clip model/pretrained, or null without CLIP
        ("embedding_dim", pa.int64()),
        ("bytes", pa.int64()),
        ("sha256", pa.string()),
    ]
)


class ShardsStep(Step):
    """Final documents → webdataset shards, one run of shards per documents part.

    Reads ``documents`` (tokenized ones carry ``tokens``), the image ``table`` and, with CLIP, the
    ``embeddings`` and the ``model`` they came from. Writes ``shards`` (``shards/<part>-<k>.tar``),
    each part's manifest rows (``work/shards/<part>.manifest.parquet``) and, once every part is done,
    ``manifest`` (``OUT/manifest.parquet``: the parts' rows in part order)."""

    name = SHARDS
    batch_rows = 2048  # documents read at a time

    def __init__(
        self,
        storage: Storage,
        doc_parts: list[Part],
        documents: Data,
        cfg: ShardsConfig,
        table: Data | None = None,
        embeddings: Data | None = None,
        model: Data | None = None,
    ):
        super().__init__(storage, documents=documents, table=table, embeddings=embeddings, model=model)
        self.cfg = cfg
        self._parts = document_parts(doc_parts)
        self.output("shards", SHARDS + "/{part}")
        self.output("rows", "work/{step}/{part}.manifest.parquet")
        self.output("manifest", MANIFEST)

    def settings(self) -> dict[str, Any]:
        return {"shards": self.cfg.model_dump(mode="json"), "format": FORMAT}

    def parts(self) -> list[Part]:
        return self._parts

    def run(self, ray: RayContext | None) -> StepResult:
        result = super().run(ray)
        rows = self.storage.read_parquets([self["rows"].path(p.name) for p in self._parts])
        table = pa.Table.from_pylist(rows.to_pylist(), schema=MANIFEST_SCHEMA)  # one chunk, as one table
        self.storage.write_parquet(self["manifest"].path(), table)
        return result

    def run_part(self, part: Part) -> PartStats:
        """The part's documents, a batch at a time, into shards cut by :func:`closes_shard` (as
        :func:`plan_shards` cuts them): a worker holds one batch and one shard's samples, whatever the part's
        size."""
        cfg = self.cfg
        for stale in self.storage.list(SHARDS, ".tar"):  # a rerun of this part (images retried) starts clean
            if re.fullmatch(rf"{re.escape(part.name)}-\d{{5}}\.tar", stale):
                self.storage.delete(f"{SHARDS}/{stale}")
        embedded = embedded_record(self.storage, self.inputs.get("model"), {})
        rows: list[dict[str, Any]] = []
        shard: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (document, sample) of the open shard
        size = documents = 0
        with tempfile.TemporaryDirectory(prefix="loom-shard-") as tmp:

            def close() -> None:
                name = f"{SHARDS}/{part.name}-{len(rows):05d}.tar"
                local = os.path.join(tmp, os.path.basename(name))
                write_tar([sample for _, sample in shard], local)
                rows.append(manifest_row(name, [doc for doc, _ in shard], local, embedded))
                self.storage.put_file(local, name)
                os.remove(local)
                shard.clear()

            for batch in self.storage.iter_parquet(
                self.inputs["documents"].path(part.name), batch_rows=self.batch_rows
            ):
                docs = document_dicts(pa.Table.from_batches([batch]))
                images = image_files(self.storage, self.inputs.get("table"), docs)
                embeddings = image_embeddings(self.storage, self.inputs.get("embeddings"), docs)
                embedded["shas"] |= set(embeddings)
                for doc in docs:
                    sample = to_sample(doc, images, embeddings)
                    n = sample_size(sample)
                    if closes_shard(len(shard), size, n, cfg.max_samples, cfg.max_bytes):
                        close()
                        size = 0
                    shard.append((doc, sample))
                    size += n
                documents += len(docs)
            if shard:
                close()
        self.storage.write_parquet(
            self["rows"].path(part.name), pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)
        )
        return PartStats(rows_in=documents, rows_out=documents)
