"""Dedup step 1, ``dedup_keys``: every document becomes a node with the keys that can make it a copy.

One part per documents part. Each document is a **node**, a string that sorts in keep order: an
optional 16-hex score prefix (a higher score sorts first), the document id (32 hex) and the index of
its documents part (8 hex) — so the smallest node of a cluster is the document to keep, and the
node itself says where its document lives. Its keys (two uint64 halves of a 128-bit hash, or a
64-bit band hash with the band number):

- ``exact_url`` — the normalized URL (:func:`normalize_url`); for a pair, its image URL with its caption;
- ``exact_text`` — the normalized text (lowercase, whitespace collapsed); for a pair, its image
  (sha256 once fetched, else URL) with its caption;
- ``exact_images`` — a document with images and no text: its images in order;
- ``minhash`` — one key per LSH band of the MinHash signature of its text (text and interleaved
  documents with at least ``min_words`` words; captions are left to exact dedup, since two pairs with
  one caption and different images are different samples). With a ``threshold``, each row also
  carries the 8-bit sketch of the signature, so the next step can verify a candidate pair.

Each part writes ``OUT/work/dedup_keys/<part>.parquet``, one row group per shuffle partition (a hash
of the key), so the next step reads only its partition of every file.
"""

from __future__ import annotations

import math
import struct
import time
import urllib.parse
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from pipeline.config import DedupConfig
from pipeline.dedup.minhash import band_keys, signatures, sketch
from pipeline.runner import Part, PartStats
from pipeline.step import Data, Step, document_parts
from pipeline.storage import Storage

DEDUP_KEYS = "dedup_keys"
#: The rules, strongest first: a removed document's reason is the strongest rule that linked it.
RULES = ("exact_url", "exact_text", "exact_images", "minhash")


def keys_schema(num_perm: int) -> pa.Schema:
    return pa.schema(
        [
            ("partition", pa.int32()),
            ("rule", pa.int8()),
            ("k1", pa.uint64()),
            ("k2", pa.uint64()),
            ("node", pa.string()),
            # minhash rows, when candidates are verified (`threshold` set): the 8-bit signature sketch
            ("sketch", pa.binary(num_perm)),
        ]
    )


SIGN_BATCH = 5_000  # documents signed in one call


def partitions(cfg: DedupConfig, doc_parts: list[Part]) -> int:
    """Shuffle partitions of the dedup steps: fixed by the job (never by the number of workers)."""
    return cfg.partitions or max(1, min(len(doc_parts), 256))


def normalize_url(url: str) -> str:
    """A URL as dedup compares it: scheme-less (http = https), host lowercased without ``www.`` and a
    default port, no fragment, no trailing slash; path and query kept as they are."""
    try:
        p = urllib.parse.urlsplit(url.strip())
        host = (p.hostname or "").removeprefix("www.")
        port = p.port
    except ValueError:
        return url.strip()
    if port and port not in (80, 443):
        host = f"{host}:{port}"
    path = p.path.rstrip("/")
    return f"{host}{path}?{p.query}" if p.query else f"{host}{path}"


def normalize_text(text: str) -> str:
    return " ".join(text.lower().split())


def node_id(node: str) -> str:
    return node[-40:-8]


def _score_prefix(score: float | None) -> str:
    """16 hex digits that sort a higher score first (a missing score last)."""
    if score is None or math.isnan(score):
        return "f" * 16
    (bits,) = struct.unpack(">Q", struct.pack(">d", float(score)))
    ascending = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return f"{ascending ^ 0xFFFFFFFFFFFFFFFF:016x}"


def keep_score(doc: dict[str, Any], keep: str) -> float | None:
    """The score that orders a cluster (higher kept first); None sorts last."""
    if keep == "earliest":
        date = (doc["meta"] or {}).get("crawl_date")
        try:
            when = datetime.fromisoformat(date.replace("Z", "+00:00")) if date else None
        except ValueError:
            return None
        if when is None:
            return None
        return -(when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    if keep == "text_chars":
        return float(sum(len(t) for t in doc["texts"] if t))
    if keep == "images":
        return float(sum(im is not None for im in doc["images"]))
    value: Any = doc["meta"] or {}
    for name in keep.removeprefix("meta.").split("."):  # meta.<field> or meta.scores.<score>
        value = (value or {}).get(name)
    return value


def nodes_of(docs: list[dict[str, Any]], part_index: int, keep: str) -> list[str]:
    """The node of each document (see the module docstring)."""
    suffix = f"{part_index:08x}"
    if keep == "id":
        return [f"{d['id']}{suffix}" for d in docs]
    return [f"{_score_prefix(keep_score(d, keep))}{d['id']}{suffix}" for d in docs]


def document_text(doc: dict[str, Any]) -> str:
    return "\n".join(t for t in doc["texts"] if t)


def exact_keys(doc: dict[str, Any], spec_dedup) -> list[tuple[int, str]]:
    """(rule, value) of the exact rules for one document; the value is hashed to 128 bits."""
    keys: list[tuple[int, str]] = []
    text = normalize_text(document_text(doc))
    images = [im for im in doc["images"] if im is not None]
    if doc["kind"] == "pair":
        image = images[0] if images else {"url": "", "sha256": None}
        if spec_dedup.exact_url:
            keys.append((0, f"{normalize_url(image['url'] or '')}\n{text}"))
        if spec_dedup.exact_text:
            keys.append((1, f"{image['sha256'] or normalize_url(image['url'] or '')}\n{text}"))
        return keys
    if spec_dedup.exact_url and doc["url"]:
        keys.append((0, normalize_url(doc["url"])))
    if spec_dedup.exact_text and text:
        keys.append((1, text))
    elif spec_dedup.exact_text and images:
        keys.append((2, "\n".join(im["sha256"] or im["url"] for im in images)))
    return keys


def _hash128(value: str) -> tuple[int, int]:
    digest = xxhash.xxh3_128_intdigest(value.encode("utf-8", "surrogatepass"))
    return digest >> 64, digest & 0xFFFFFFFFFFFFFFFF


class DedupKeysStep(Step):
    """Documents → the keys of every document (output ``keys``, a part per documents part), each
    row in its shuffle partition (a row group per partition)."""

    name = DEDUP_KEYS

    def __init__(self, storage: Storage, doc_parts: list[Part], documents: Data, cfg: DedupConfig):
        super().__init__(storage, documents=documents)
        self.cfg = cfg
        self._parts = document_parts(doc_parts)
        self.n_partitions = partitions(cfg, doc_parts)
        self.output("keys", "work/{step}/{part}.parquet")

    def settings(self) -> dict[str, Any]:
        return {
            "dedup": self.cfg.model_dump(mode="json", exclude={"enabled", "partitions"}),
            "partitions": self.n_partitions,
        }

    def parts(self) -> list[Part]:
        return self._parts

    def keys_table(self, docs: pa.Table, part_index: int) -> tuple[pa.Table, dict[str, Any]]:
        """The key rows of one documents table, and counts for the stats."""
        cfg = self.cfg
        rows = docs.select(["id", "kind", "url", "texts", "images", "meta"]).to_pylist()
        nodes = nodes_of(rows, part_index, cfg.keep)
        bands, per_band = cfg.bands_rows()
        num_perm = bands * per_band
        exact = [
            (r, *_hash128(value), n)
            for doc, n in zip(rows, nodes, strict=True)
            for r, value in exact_keys(doc, cfg)
        ]
        tables = [
            pa.table(
                {
                    "rule": pa.array([e[0] for e in exact], pa.int8()),
                    "k1": pa.array([e[1] for e in exact], pa.uint64()),
                    "k2": pa.array([e[2] for e in exact], pa.uint64()),
                    "node": pa.array([e[3] for e in exact], pa.string()),
                    "sketch": pa.nulls(len(exact), pa.binary(num_perm)),
                }
            )
        ]
        counts: dict[str, Any] = {"signed": 0, "signature_seconds": 0.0}
        eligible = [i for i, d in enumerate(rows) if d["kind"] != "pair"]
        if cfg.minhash and eligible:
            start = time.perf_counter()
            texts = pa.array([document_text(rows[i]) for i in eligible], pa.large_string())
            batches = [
                signatures(texts[i : i + SIGN_BATCH], cfg.ngram, num_perm, cfg.seed)
                for i in range(0, len(texts), SIGN_BATCH)
            ]  # batches bound the shingle buffers (8 bytes per byte of text)
            sigs = np.concatenate([b[0] for b in batches])
            words = np.concatenate([b[1] for b in batches])
            signed = np.flatnonzero(words >= cfg.min_words)
            keys = band_keys(sigs[signed], bands, per_band)  # (documents, bands)
            signed_nodes = pa.array([nodes[eligible[i]] for i in signed], pa.string())
            repeat = np.repeat(np.arange(len(signed)), bands)
            sketches = pa.nulls(len(repeat), pa.binary(num_perm))
            if cfg.threshold is not None:
                flat = pa.py_buffer(np.ascontiguousarray(sketch(sigs[signed])).tobytes())
                per_doc = pa.FixedSizeBinaryArray.from_buffers(pa.binary(num_perm), len(signed), [None, flat])
                sketches = per_doc.take(pa.array(repeat))
            tables.append(
                pa.table(
                    {
                        "rule": pa.array(np.full(len(repeat), RULES.index("minhash"), np.int8)),
                        "k1": pa.array(keys.reshape(-1)),
                        "k2": pa.array(np.tile(np.arange(bands, dtype=np.uint64), len(signed))),
                        "node": signed_nodes.take(pa.array(repeat)),
                        "sketch": sketches,
                    }
                )
            )
            counts["signed"] = len(signed)
            counts["signature_seconds"] = round(time.perf_counter() - start, 3)
        table = pa.concat_tables(tables)
        partition = pa.array(table["k1"].to_numpy() % np.uint64(self.n_partitions), pa.int32())
        table = table.add_column(0, "partition", partition).cast(keys_schema(num_perm))
        by_rule = pc.value_counts(table["rule"]).to_pylist()
        counts["keys"] = {RULES[v["values"]]: v["counts"] for v in sorted(by_rule, key=lambda v: v["values"])}
        return table.sort_by([("partition", "ascending"), ("rule", "ascending")]), counts

    def run_part(self, part: Part) -> PartStats:
        docs = self.storage.read_parquet(self.inputs["documents"].path(part.name))
        table, counts = self.keys_table(docs, part.args["index"])
        self.storage.write_parquet_groups(self["keys"].path(part.name), table, "partition")
        return PartStats(rows_in=docs.num_rows, rows_out=table.num_rows, extra=counts)
