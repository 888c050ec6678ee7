"""The ``train`` step: the second pass of the global shuffle, one part per shuffle bucket.

A part reads its bucket's row group from every shuffle part, sorts it by order position and writes
the documents, in that order, as webdataset shards cut by token count (``[mix] shard_tokens``):
``train/<bucket>-<k>.tar``. The samples are those of ``shards/`` (``docs/FORMAT.md``); a document
the mixture repeats has the key ``<id>-<epoch>`` in its later epochs. Then the step joins the
buckets' manifest rows into ``train/manifest.parquet``, with each shard's cumulative token and
sample offsets, and places the nested subsets: the first ``f`` of the mixture's tokens, cut at the
nearest sample boundary (``train/subsets.json``). Since the order interleaves the components at
their weights, every prefix holds the mixture's shares, and a smaller subset is a prefix of every
larger one.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.runner import Part, PartStats, RayContext, StepResult
from pipeline.schema import KINDS
from pipeline.step import Data, Step
from pipeline.storage import Storage
from shards.config import MixConfig
from shards.mix import MixError, Plan
from shards.shuffle import BUCKET, EPOCH, ORDER
from shards.writer import (
    MANIFEST_SCHEMA,
    embedded_record,
    image_embeddings,
    image_files,
    image_members,
    manifest_row,
    write_tar,
)

TRAIN = "train"
TRAIN_MANIFEST = f"{TRAIN}/manifest.parquet"
SUBSETS = f"{TRAIN}/subsets.json"

#: The training manifest: the shard manifest's columns, tokens by kind and the cumulative offsets.
TRAIN_MANIFEST_SCHEMA = pa.schema(
    [
        *MANIFEST_SCHEMA,
        *(pa.field(f"{k}_tokens", pa.int64()) for k in KINDS),
        pa.field("token_offset", pa.int64()),  # tokens in the shards before this one
        pa.field("sample_offset", pa.int64()),  # samples in the shards before this one
    ]
)
#: Per bucket, each sample in order: its shard, its mixture component and its tokens.
SAMPLES_SCHEMA = pa.schema([("shard", pa.string()), ("component", pa.string()), ("tokens", pa.int64())])


def sample_key(doc_id: str, epoch: int) -> str:
    """A training sample's key: the document id; ``<id>-<epoch>`` when the mixture repeats it."""
    return doc_id if epoch == 0 else f"{doc_id}-{epoch}"


def cut_by_tokens(tokens: list[int], shard_tokens: int) -> list[tuple[int, int]]:
    """[start, stop) runs of samples: a shard closes once it holds ``shard_tokens`` tokens."""
    runs, start, total = [], 0, 0
    for i, n in enumerate(tokens):
        total += n
        if total >= shard_tokens:
            runs.append((start, i + 1))
            start, total = i + 1, 0
    if start < len(tokens):
        runs.append((start, len(tokens)))
    return runs


def bucket_name(k: int) -> str:
    return f"{k:05d}"


class TrainStep(Step):
    """Shuffled documents → ``train/`` shards in order, their manifest and the nested subsets.

    Reads the shuffle step's ``documents`` (row groups by bucket), the mix ``plan``, and, like the
    shards step, the image ``table``, the CLIP ``embeddings`` and ``model``. Writes ``shards``
    (``train/<bucket>-<k>.tar``), per bucket its manifest rows and sample sizes (``work/train/``),
    ``manifest`` (``train/manifest.parquet``) and ``subsets`` (``train/subsets.json``)."""

    name = TRAIN

    def __init__(
        self,
        storage: Storage,
        doc_parts: list[Part],
        documents: Data,
        plan: Data,
        cfg: MixConfig,
        table: Data | None = None,
        embeddings: Data | None = None,
        model: Data | None = None,
    ):
        super().__init__(
            storage, documents=documents, plan=plan, table=table, embeddings=embeddings, model=model
        )
        self.cfg = cfg
        self.doc_parts = doc_parts
        self.output("shards", TRAIN + "/{part}")
        self.output("rows", "work/{step}/{part}.manifest.parquet")
        self.output("samples", "work/{step}/{part}.samples.parquet")
        self.output("manifest", TRAIN_MANIFEST)
        self.output("subsets", SUBSETS)

    def settings(self) -> dict[str, Any]:
        return {"shard_tokens": self.cfg.shard_tokens, "subsets": self.cfg.subsets}

    def reopen(self) -> None:
        """``--retry-images`` reopens the mixture: the documents and so the buckets may change, and
        no shard of the old buckets may stay."""
        self.clear()

    def parts(self) -> list[Part]:
        """One part per shuffle bucket (known once the mix step has planned: read each time, since
        a rerun of the mix step may change them)."""
        plan = Plan.from_json(self.storage.read_json(self.inputs["plan"].path()))
        return [Part(bucket_name(k), {"bucket": k}) for k in range(plan.buckets)]

    def run_part(self, part: Part) -> PartStats:
        bucket = part.args["bucket"]
        shuffled = self.inputs["documents"]
        table = pa.concat_tables(
            [self.storage.read_groups(shuffled.path(p.name), BUCKET, bucket) for p in self.doc_parts]
        )
        table = table.filter(pc.equal(table[BUCKET], bucket))
        table = table.sort_by([(c, "ascending") for c in (ORDER, "id", EPOCH)])
        docs = table.select(["id", "source", "kind", "images", "tokens"]).to_pylist()
        epochs = table[EPOCH].to_pylist()
        json_bytes = table["json"].to_pylist()
        images = image_files(self.storage, self.inputs.get("table"), docs)
        embeddings = image_embeddings(self.storage, self.inputs.get("embeddings"), docs)
        embedded = embedded_record(self.storage, self.inputs.get("model"), embeddings)
        counts = [len(d["tokens"]) // 4 for d in docs]
        field = "kind" if self.cfg.by_kind() else "source"
        rows, sample_rows = [], []
        with tempfile.TemporaryDirectory(prefix="loom-train-") as tmp:
            for k, (start, stop) in enumerate(cut_by_tokens(counts, self.cfg.shard_tokens)):
                name = f"{self['shards'].path(part.name)}-{k:05d}.tar"
                samples = [
                    {
                        "__key__": sample_key(docs[i]["id"], epochs[i]),
                        "json": json_bytes[i],
                        "tokens": docs[i]["tokens"],
                        **image_members(docs[i]["images"], images, embeddings),
                    }
                    for i in range(start, stop)
                ]
                local = os.path.join(tmp, os.path.basename(name))
                write_tar(samples, local, by_key=False)
                row = manifest_row(name, docs[start:stop], local, embedded)
                span = range(start, stop)
                for kind in KINDS:
                    row[f"{kind}_tokens"] = sum(counts[i] for i in span if docs[i]["kind"] == kind)
                rows.append(row)
                sample_rows += [
                    {"shard": name, "component": docs[i][field], "tokens": counts[i]} for i in span
                ]
                self.storage.put_file(local, name)
        schema = pa.schema([f for f in TRAIN_MANIFEST_SCHEMA if not f.name.endswith("_offset")])
        self.storage.write_parquet(self["rows"].path(part.name), pa.Table.from_pylist(rows, schema=schema))
        self.storage.write_parquet(
            self["samples"].path(part.name), pa.Table.from_pylist(sample_rows, schema=SAMPLES_SCHEMA)
        )
        return PartStats(
            rows_in=table.num_rows,
            rows_out=len(docs),
            extra={"shards": len(rows), "repeats": sum(e > 0 for e in epochs)},
        )

    def run(self, ray: RayContext | None) -> StepResult:
        result = super().run(ray)
        parts = self.parts()
        rows = self.storage.read_parquets([self["rows"].path(p.name) for p in parts]).to_pylist()
        tokens = samples = 0
        for row in rows:
            row["token_offset"], row["sample_offset"] = tokens, samples
            tokens += row["tokens"]
            samples += row["samples"]
        manifest = pa.Table.from_pylist(rows, schema=TRAIN_MANIFEST_SCHEMA)
        self.storage.write_parquet(self["manifest"].path(), manifest)
        buckets = self._buckets(parts)
        subsets = [self._subset(f, tokens, buckets, rows) for f in self.cfg.subsets]
        for subset in subsets:
            if not subset["samples"]:
                raise MixError(
                    f"mix.subsets: {subset['fraction']:g} of the mixture's {tokens:,} tokens holds not "
                    "one sample; give a larger fraction"
                )
        whole = Counter()
        for b in buckets:
            whole.update(b["components"])
        self.storage.write_json(
            self["subsets"].path(),
            {"tokens": tokens, "samples": samples, "tokens_by_component": dict(whole), "subsets": subsets},
        )
        result.stats.extra = {
            "shards": len(rows),
            "samples": samples,
            "tokens": tokens,
            "tokens_by_kind": {k: int(sum(r[f"{k}_tokens"] for r in rows)) for k in KINDS},
            "repeats": result.stats.extra.get("repeats", 0),
            "subsets": [{k: s[k] for k in ("fraction", "tokens", "samples", "shares")} for s in subsets],
        }
        return result

    def _buckets(self, parts: list[Part]) -> list[dict[str, Any]]:
        """Each bucket's first token and sample (offsets) and its tokens by component, in order."""
        out, tokens, samples = [], 0, 0
        for p in parts:
            table = self.storage.read_parquet(self["samples"].path(p.name), ["component", "tokens"])
            sums = table.group_by("component").aggregate([("tokens", "sum")]).to_pylist()
            counts = {r["component"]: r["tokens_sum"] for r in sums}
            out.append({"part": p.name, "tokens": tokens, "samples": samples, "components": counts})
            tokens += sum(counts.values())
            samples += table.num_rows
        return out

    def _subset(
        self, fraction: float, total: int, buckets: list[dict[str, Any]], rows: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The first ``fraction`` of the mixture's tokens, to the nearest sample boundary: how many
        samples and tokens, the shards that hold them, how many samples of the last, the shares of
        the components."""
        target = fraction * total
        b = max([i for i, bucket in enumerate(buckets) if bucket["tokens"] <= target] or [0])
        bucket = buckets[b]
        table = self.storage.read_parquet(self["samples"].path(bucket["part"]))
        sizes = np.asarray(table["tokens"].to_numpy(zero_copy_only=False), np.int64)
        ends = bucket["tokens"] + np.concatenate([[0], np.cumsum(sizes)])
        n = int(np.argmin(np.abs(ends - target)))  # samples of this bucket in the subset
        by_component: Counter = Counter()
        for before in buckets[:b]:
            by_component.update(before["components"])
        for component, size in zip(table["component"].to_pylist()[:n], sizes[:n].tolist(), strict=True):
            by_component[component] += size
        tokens, count = int(ends[n]), bucket["samples"] + n
        shards = [r for r in rows if r["sample_offset"] < count]
        return {
            "fraction": fraction,
            "tokens": tokens,
            "samples": count,
            "shards": [r["shard"] for r in shards],
            "last_shard_samples": count - shards[-1]["sample_offset"] if shards else 0,
            "tokens_by_component": dict(sorted(by_component.items())),
            "shares": {k: round(v / tokens, 6) for k, v in sorted(by_component.items())} if tokens else {},
        }
