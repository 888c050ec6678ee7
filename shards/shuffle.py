"""The ``shuffle`` step: the first pass of the global shuffle, one part per documents part.

Each document the mixture takes (:mod:`shards.mix`) gets an **order position**: where it falls in
its component's sequence, in tokens, divided by the component's weight. Sorting every document of
every component by that position interleaves the components so that any prefix of the result
holds them at their weights (the way Megatron's blended datasets interleave, but over documents
and tokens), while within a component the order is the seeded random one of the order keys. A
document repeated for a second epoch comes back at its position in that epoch.

The positions split into the plan's shuffle buckets (equal ranges of position, so about equal
tokens): each part writes its documents — as samples, JSON and token ids rendered here, in parallel —
sorted by (bucket, position) with one parquet row group per bucket, ``work/shuffle/<part>.parquet``.
The ``train`` step then reads one bucket's row group from every part, one file at a time: that is
the second pass, and no worker ever holds more than one part or one bucket.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.runner import Part, PartStats
from pipeline.schema import DOC_SCHEMA
from pipeline.step import Data, Step, document_parts
from pipeline.storage import Storage
from shards.config import MixConfig
from shards.mix import Plan, components_of, key_buckets, order_keys, read_positions, token_lengths
from shards.writer import document_dicts, sample_json

SHUFFLE = "shuffle"
#: What the shuffle writes of each document: the sample as the train step writes it (its ``json``
#: member and token ids, rendered here, in parallel), its images (for the image members) and what
#: the manifest counts. A narrow file: the train step reads one row group of every shuffle part.
SAMPLE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("kind", pa.string()),
        ("json", pa.large_binary()),
        ("tokens", pa.large_binary()),  # little-endian uint32
        ("images", DOC_SCHEMA.field("images").type),
    ]
)
#: Columns the shuffle adds to the documents: position, epoch (repetition) and bucket.
ORDER, EPOCH, BUCKET = "_order", "_epoch", "_bucket"


def shuffled_samples(docs: pa.Table, take: np.ndarray) -> pa.Table:
    """The rows ``take`` of ``docs`` (a row repeats for each epoch the mixture takes it) as
    :data:`SAMPLE_SCHEMA` rows; each distinct document is rendered once."""
    distinct, where = np.unique(take, return_inverse=True)
    rendered = document_dicts(docs.take(pa.array(distinct, pa.int64())))
    pick = where.tolist()
    json_bytes = [sample_json(d) for d in rendered]
    picked = docs.select(["id", "source", "kind", "images"]).take(pa.array(take, pa.int64()))
    return pa.Table.from_arrays(
        [
            picked["id"],
            picked["source"],
            picked["kind"],
            pa.array([json_bytes[j] for j in pick], pa.large_binary()),
            pa.array([rendered[j]["tokens"] for j in pick], pa.large_binary()),
            picked["images"],
        ],
        schema=SAMPLE_SCHEMA,
    )


def order_positions(
    keys: np.ndarray, lengths: np.ndarray, epoch: int, comp: int, plan: Plan, tokens: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The order positions of one component's documents in ``epoch`` and which of them the mixture
    takes (all of a whole epoch; those below the cut of the partial one). ``tokens`` are the summed
    histograms (component, epoch, bucket)."""
    c = plan.components[comp]
    hist = tokens[comp, epoch]
    before = np.cumsum(hist) - hist  # tokens in the buckets below each bucket
    bucket, within = key_buckets(keys)
    start = epoch * c.tokens + before[bucket] + within * hist[bucket]
    taken = bucket < c.cut if epoch == c.full_epochs else np.ones(len(keys), bool)
    return (start + lengths / 2) / c.weight, taken


class ShuffleStep(Step):
    """Documents → the mixture's documents with their order positions, grouped by shuffle bucket.

    Reads the tokenized ``documents`` and the mix step's ``plan`` and ``positions``; writes
    ``documents`` (``work/shuffle/<part>.parquet``: :data:`SAMPLE_SCHEMA` rows with ``_order``,
    ``_epoch`` and ``_bucket``, a row group per bucket)."""

    name = SHUFFLE

    def __init__(
        self,
        storage: Storage,
        doc_parts: list[Part],
        documents: Data,
        plan: Data,
        positions: Data,
        cfg: MixConfig,
    ):
        super().__init__(storage, documents=documents, plan=plan, positions=positions)
        self.cfg = cfg
        self._parts = document_parts(doc_parts)
        self.output("documents", "work/{step}/{part}.parquet")

    def parts(self) -> list[Part]:
        return self._parts

    @functools.cached_property
    def _plan(self) -> tuple[Plan, np.ndarray]:
        plan = Plan.from_json(self.storage.read_json(self.inputs["plan"].path()))
        return plan, read_positions(self.storage, self.inputs["positions"])

    def run_part(self, part: Part) -> PartStats:
        plan, tokens = self._plan
        docs = self.storage.read_parquet(self.inputs["documents"].path(part.name))
        comp = components_of(docs, self.cfg)
        lengths = token_lengths(docs)
        ids = docs["id"].to_pylist()
        rows, orders, epochs = [], [], []
        for c, component in enumerate(plan.components):
            mine = np.flatnonzero(comp == c)
            for e in range(component.full_epochs + 1):
                keys = order_keys([ids[i] for i in mine], plan.seed, e)
                order, taken = order_positions(keys, lengths[mine], e, c, plan, tokens)
                rows.append(mine[taken])
                orders.append(order[taken])
                epochs.append(np.full(int(taken.sum()), e, np.int32))
        take = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        order = np.concatenate(orders) if orders else np.zeros(0)
        bucket = np.minimum(plan.buckets - 1, (order / plan.span * plan.buckets).astype(np.int64))
        out = shuffled_samples(docs, take).append_column(ORDER, pa.array(order, pa.float64()))
        out = out.append_column(EPOCH, pa.array(np.concatenate(epochs) if epochs else [], pa.int32()))
        out = out.append_column(BUCKET, pa.array(bucket.astype(np.int32), pa.int32()))
        out = out.sort_by([(c, "ascending") for c in (BUCKET, ORDER, "id", EPOCH)])
        self.storage.write_parquet_groups(self["documents"].path(part.name), out, BUCKET)
        repeats = int(pc.sum(pc.greater(out[EPOCH], 0)).as_py() or 0) if out.num_rows else 0
        extra: dict[str, Any] = {"repeats": repeats, "tokens": int(lengths[take].sum())}
        left = docs.num_rows - len(np.unique(take))
        return PartStats(
            rows_in=docs.num_rows,
            rows_out=out.num_rows,
            skipped=Counter({"not_taken": left} if left else {}),
            extra=extra,
        )
