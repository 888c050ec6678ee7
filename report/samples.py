"""The report's sample browser: kept documents as a reader sees them, and examples of every drop.

Kept documents are a seeded sample of the shards' samples, read from the shard bytes: their text
blocks and, in reading order, their images (shrunk to thumbnails, inlined as data URIs so that the
report stays one file). Drop examples are a seeded few ledger rows per (step, reason).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import random
import tarfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.schema import KINDS
from pipeline.storage import Storage
from shards.format import MANIFEST

log = logging.getLogger(__name__)

THUMBNAIL_PX = 240  # the longer side of an inlined image
TEXT_CHARS = 1200  # of each text block shown (the rest is counted, not shown)


@dataclass
class Block:
    text: str | None = None
    more_chars: int = 0  # characters of the block not shown
    image: str | None = None  # a data: URI
    image_note: str = ""  # url, size, or why there is no picture


@dataclass
class SampleDoc:
    id: str
    kind: str
    url: str
    source: str
    title: str | None
    language: str | None
    tokens: int | None
    shard: str
    blocks: list[Block] = field(default_factory=list)


def _thumbnail(data: bytes) -> str | None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB")
            im.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            out = io.BytesIO()
            im.save(out, format="JPEG", quality=70)
    except (OSError, ValueError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


def _shard_members(data: bytes) -> dict[str, dict[str, bytes]]:
    """The shard's samples: key → {extension → bytes} (``0.jpg`` for the image at position 0)."""
    samples: dict[str, dict[str, bytes]] = defaultdict(dict)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            key, _, ext = member.name.partition(".")
            samples[key][ext] = tar.extractfile(member).read()
    return samples


def _doc(key: str, files: dict[str, bytes], shard: str) -> SampleDoc:
    doc = json.loads(files["json"])
    meta = doc.get("meta") or {}
    tokens = (doc.get("tokens") or {}).get("count")
    out = SampleDoc(
        id=doc["id"],
        kind=doc["kind"],
        url=doc.get("url") or "",
        source=doc.get("source") or "",
        title=meta.get("title"),
        language=meta.get("language"),
        tokens=tokens,
        shard=shard,
    )
    images = {
        ext.split(".")[0]: data for ext, data in files.items() if ext.split(".")[-1] in ("jpg", "png", "webp")
    }
    for pos, (text, image) in enumerate(zip(doc["texts"], doc["images"], strict=True)):
        if image is None:
            text = text or ""
            out.blocks.append(Block(text=text[:TEXT_CHARS], more_chars=max(0, len(text) - TEXT_CHARS)))
            continue
        size = f"{image.get('width') or '?'}×{image.get('height') or '?'}"
        data = images.get(str(pos))
        uri = _thumbnail(data) if data else None
        note = f"{size} {image.get('url') or ''}".strip()
        if data is None:
            note += (
                " (not fetched: no image bytes in the output)" if not image.get("sha256") else " (no bytes)"
            )
        out.blocks.append(Block(image=uri, image_note=note))
    return out


def sample_documents(storage: Storage, count: int, seed: int) -> list[SampleDoc]:
    """``count`` kept documents drawn with ``seed`` from the shards of the manifest, the same number
    of each kind the shards hold (a kind's documents come from at most two of its shards)."""
    if count <= 0 or not storage.exists(MANIFEST):
        return []
    table = pq.read_table(io.BytesIO(storage.read_bytes(MANIFEST)))
    kinds = [k for k in KINDS if k in table.column_names and pc.sum(table[k]).as_py()]
    rows = table.select(["shard", *kinds]).to_pylist()
    rng = random.Random(seed)
    read: dict[str, dict[str, dict[str, bytes]]] = {}
    docs: list[SampleDoc] = []
    for i, kind in enumerate(kinds):
        want = count // len(kinds) + (1 if i < count % len(kinds) else 0)
        holding = [r["shard"] for r in rows if r[kind]]
        found: list[SampleDoc] = []
        for shard in sorted(rng.sample(holding, min(2, len(holding)))):
            if shard not in read:
                read[shard] = _shard_members(storage.read_bytes(shard))
            for key, files in sorted(read[shard].items()):
                if "json" in files and json.loads(files["json"]).get("kind") == kind:
                    found.append(_doc(key, files, shard))
        docs += sorted(rng.sample(found, min(want, len(found))), key=lambda d: (d.shard, d.id))
    return docs


def drop_examples(
    storage: Storage, steps: list[str], per_reason: int, seed: int
) -> tuple[dict[tuple[str, str], Any], bool]:
    """One pass over the ledgers: per (step, reason), how many rows, how many by source and kind
    (``"source · kind"``), and up to ``per_reason`` rows (url, detail, id) drawn with ``seed``; and
    whether every ledger had its source and kind columns (an older Loom's did not)."""
    rows: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    by: dict[tuple[str, str], Counter] = defaultdict(Counter)
    rng = random.Random(seed)
    complete = True
    for step in steps:
        for name in storage.list(f"work/{step}", ".ledger.parquet"):
            rel = f"work/{step}/{name}"
            columns = ["id", "url", "reason", "detail"]
            if {"source", "kind"} <= set(storage.parquet_schema(rel).names):
                columns += ["source", "kind"]
            else:
                complete = False
            for batch in storage.iter_parquet(rel, columns=columns):
                for row in batch.to_pylist():
                    key = (step, row["reason"])
                    counts[key] += 1
                    if "kind" in row:
                        by[key][f"{row.pop('source') or '?'} · {row.pop('kind') or '?'}"] += 1
                    held = rows[key]  # a reservoir sample: every row equally likely
                    if len(held) < per_reason:
                        held.append(row)
                    elif (j := rng.randrange(counts[key])) < per_reason:
                        held[j] = row
    examples = {
        key: {
            "count": counts[key],
            "by": dict(by[key].most_common()),
            "rows": sorted(rows[key], key=lambda r: r["id"] or ""),
        }
        for key in rows
    }
    return examples, complete
