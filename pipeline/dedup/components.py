"""Dedup steps 2 and 3: shared keys become edges; edges become clusters, with no process holding them all.

**dedup_buckets** — partition ``j`` reads partition ``j`` of every keys file (the shuffle) and groups
the rows by key: the documents of a group with two or more share a normalized URL, a text, their
images or a whole LSH band. Each becomes an edge to the group's smallest node (a star, not a
clique). It writes, under ``OUT/work/dedup_buckets/``:

- ``<j>.edges.parquet`` — each edge in both directions, one row group per partition of its first node;
- ``<j>.rules.parquet`` — the rule of each edge for each of its nodes, one row group per documents
  part, so that the last step reads only its documents' rows.

**dedup_components** — connected components by alternating *large-star* and *small-star* rounds
(Kiveris et al., "Connected Components in MapReduce and Beyond", 2014), each round a step whose
partition ``j`` reads the edges of the nodes of partition ``j`` from every file of the round before:

- large-star: each node ``u`` links every larger neighbour to ``m``, the smallest of ``u`` and its
  neighbours;
- small-star: each node ``u`` links itself and every smaller neighbour to the smallest of them.

A large-star round also counts the nodes that are neither a *leaf* (one neighbour, smaller) nor a
*centre* (all neighbours larger). When no partition has one, every component is a star around its
smallest node — the cluster is found, its smallest node (the document to keep) is its label — and
the round's ``<j>.labels.parquet`` files (node → label, one row group per documents part) are the
result, named in ``OUT/work/dedup_components/result.json``. The rounds needed grow with log² of the
largest cluster's size (two or three rounds for the stars LSH makes). Every round is resumable part
by part like any step.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

import numpy as np
import polars as pl
import pyarrow.compute as pc

from pipeline.dedup.keys import RULES
from pipeline.dedup.minhash import estimate_jaccard
from pipeline.runner import Part, PartStats, RayContext, StepFailed, StepResult, run_step
from pipeline.stage import Resources
from pipeline.step import Data, Step
from pipeline.storage import Storage

log = logging.getLogger(__name__)

DEDUP_BUCKETS = "dedup_buckets"
DEDUP_COMPONENTS = "dedup_components"
MAX_ROUNDS = 64
RESULT = f"work/{DEDUP_COMPONENTS}/result.json"


def partition_of(nodes: pl.Expr, n: int) -> pl.Expr:
    """The shuffle partition of a node: from its id, the 32 hex digits before the part index."""
    return (nodes.str.slice(-40, 8).str.to_integer(base=16) % n).cast(pl.Int32)


def part_of(nodes: pl.Expr) -> pl.Expr:
    return nodes.str.slice(-8, 8).str.to_integer(base=16).cast(pl.Int32)


def write_grouped(storage: Storage, rel: str, df: pl.DataFrame, by: str) -> None:
    """Write ``df`` sorted, one row group per value of ``by`` (readers filter on it)."""
    storage.write_parquet_groups(rel, df.sort(df.columns).to_arrow(), by)


def read_partition(storage: Storage, files: list[str], column: str, value: int) -> pl.DataFrame:
    """Rows of ``files`` whose ``column`` is ``value`` (row groups of other values are skipped)."""
    if not files:
        return pl.DataFrame()
    table = storage.read_parquets(files, where=pc.field(column) == value)
    return pl.from_arrow(table.drop_columns([column]))


_EDGES = {"a": pl.String, "b": pl.String}


def both_directions(edges: pl.DataFrame, n: int) -> pl.DataFrame:
    """Undirected edges (a, b) as rows in both directions, with the partition of the first node."""
    flipped = edges.select(a=pl.col("b"), b=pl.col("a"))
    both = pl.concat([edges.select("a", "b"), flipped]).unique()
    return both.with_columns(dest=partition_of(pl.col("a"), n))


class BucketsStep(Step):
    """Keys → edges (the documents that share a key, as a star around the smallest), a part per
    shuffle partition. Outputs: ``edges`` (grouped by the partition of their first node) and
    ``rules`` (node → the strongest rule that linked it, grouped by documents part)."""

    name = DEDUP_BUCKETS

    def __init__(
        self, storage: Storage, keys: Data, doc_parts: list[Part], n_partitions: int, threshold: float | None
    ):
        super().__init__(storage, keys=keys)
        self.n = n_partitions
        self.threshold = threshold
        self._keys = [keys.path(p.name) for p in doc_parts]
        self._parts = [Part(f"p-{j:05d}", {"partition": j}) for j in range(n_partitions)]
        self.output("edges", "work/{step}/{part}.edges.parquet")
        self.output("rules", "work/{step}/{part}.rules.parquet")

    def settings(self) -> dict[str, Any]:
        return {"partitions": self.n, "threshold": self.threshold}

    def rules_files(self) -> list[str]:
        return [self["rules"].path(p.name) for p in self._parts]

    def parts(self) -> list[Part]:
        return self._parts

    def run_part(self, part: Part) -> PartStats:
        j = part.args["partition"]
        keys = read_partition(self.storage, self._keys, "partition", j)
        if keys.is_empty():
            keys = pl.DataFrame(
                schema={
                    "rule": pl.Int8,
                    "k1": pl.UInt64,
                    "k2": pl.UInt64,
                    "node": pl.String,
                    "sketch": pl.Binary,
                }
            )
        grouped = keys.unique(["rule", "k1", "k2", "node"]).with_columns(
            root=pl.col("node").min().over("rule", "k1", "k2"),
            root_sketch=pl.col("sketch").sort_by("node").first().over("rule", "k1", "k2"),
        )
        candidates = grouped.filter(pl.col("node") != pl.col("root"))
        rejected = 0
        if self.threshold is not None:
            kept = self.verified(candidates)
            rejected = candidates.height - int(kept.sum())
            candidates = candidates.filter(pl.Series(kept))
        edges = candidates.select("rule", a="node", b="root")
        write_grouped(self.storage, self["edges"].path(part.name), both_directions(edges, self.n), "dest")
        rules = pl.concat([edges.select("rule", node="a"), edges.select("rule", node="b")])
        rules = rules.group_by("node").agg(pl.col("rule").min()).with_columns(part=part_of(pl.col("node")))
        write_grouped(self.storage, self["rules"].path(part.name), rules, "part")
        by_rule = Counter(RULES[r] for r in edges["rule"].to_list())
        extra = {"edges": dict(by_rule), "rejected": rejected}
        return PartStats(rows_in=keys.height, rows_out=edges.height, extra=extra)

    def verified(self, candidates: pl.DataFrame) -> np.ndarray:
        """Which candidate edges hold: exact rules always; a minhash edge when the Jaccard similarity
        estimated from the two sketches reaches the threshold."""
        keep = np.ones(candidates.height, bool)
        minhash = np.flatnonzero((candidates["rule"] == RULES.index("minhash")).to_numpy())
        if len(minhash):
            rows = candidates[minhash]
            a = np.frombuffer(b"".join(rows["sketch"].to_list()), np.uint8).reshape(len(minhash), -1)
            b = np.frombuffer(b"".join(rows["root_sketch"].to_list()), np.uint8).reshape(len(minhash), -1)
            keep[minhash] = estimate_jaccard(a, b) >= self.threshold
        return keep


class StarRound:
    """One round of large-star or small-star over the edges of the round before."""

    resources = Resources(cpus=1)

    def __init__(self, storage: Storage, index: int, large: bool, inputs: list[str], n: int):
        self.storage = storage
        self.large = large
        self.name = f"{DEDUP_COMPONENTS}/r{index:03d}-{'large' if large else 'small'}"
        self.inputs = inputs
        self.n = n
        self._parts = [Part(f"p-{j:05d}", {"partition": j}) for j in range(n)]

    def parts(self) -> list[Part]:
        return self._parts

    def outputs(self, suffix: str = "edges") -> list[str]:
        return [f"work/{self.name}/{p.name}.{suffix}.parquet" for p in self._parts]

    def run_part(self, part: Part) -> PartStats:
        edges = read_partition(self.storage, self.inputs, "dest", part.args["partition"])
        if edges.is_empty():
            edges = pl.DataFrame(schema=_EDGES)
        edges = edges.unique()
        out, extra = self._large(edges, part) if self.large else self._small(edges)
        write_grouped(self.storage, f"work/{self.name}/{part.name}.edges.parquet", out, "dest")
        return PartStats(rows_in=edges.height, rows_out=out.height, extra=extra)

    def _large(self, edges: pl.DataFrame, part: Part) -> tuple[pl.DataFrame, dict[str, Any]]:
        """Input: every edge of the partition's nodes, from their side (a = the node)."""
        hood = edges.group_by("a").agg(low=pl.col("b").min(), degree=pl.len())
        hood = hood.with_columns(m=pl.min_horizontal("a", "low"))
        leaf = (pl.col("degree") == 1) & (pl.col("low") < pl.col("a"))
        centre = pl.col("low") > pl.col("a")
        unsettled = hood.filter(~(leaf | centre)).height
        labels = hood.select(node="a", label="m").with_columns(part=part_of(pl.col("node")))
        write_grouped(self.storage, f"work/{self.name}/{part.name}.labels.parquet", labels, "part")
        linked = edges.join(hood.select("a", "m"), on="a").filter(pl.col("b") > pl.col("a"))
        # oriented larger → smaller, in the partition of the larger: small-star's input
        out = linked.select(a=pl.col("b"), b=pl.col("m")).unique()
        out = out.with_columns(dest=partition_of(pl.col("a"), self.n))
        return out, {"nodes": hood.height, "unsettled": unsettled}

    def _small(self, edges: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, Any]]:
        """Input: edges (a, b) with a > b, in the partition of a."""
        low = edges.group_by("a").agg(m=pl.col("b").min())
        linked = edges.join(low, on="a")
        pairs = pl.concat([linked.select(a="b", b="m"), low.select("a", b="m")]).filter(
            pl.col("a") != pl.col("b")
        )
        return both_directions(pairs, self.n), {}


class ComponentsStep(Step):
    """Edges → clusters: star rounds until every component is a star around its smallest node.

    A global step: it runs rounds of parts (each a :class:`StarRound` over the shuffle partitions)
    until the labels settle. Output ``result``: ``{"labels": [files], "round": …}``, the files that
    hold node → label (the cluster's smallest node), grouped by documents part."""

    name = DEDUP_COMPONENTS

    def __init__(self, storage: Storage, buckets: BucketsStep):
        super().__init__(storage, edges=buckets["edges"])
        self.buckets = buckets
        self.n = buckets.n
        self.output("result", RESULT)

    def parts(self) -> list[Part]:
        return self.buckets.parts()

    def reopen(self) -> None:
        """Forget every round (``--retry-images``: the edges will change)."""
        self.storage.delete(RESULT)
        for index in range(MAX_ROUNDS):
            rnd = StarRound(self.storage, index, index % 2 == 0, [], self.n)
            done = self.storage.list(f"work/{rnd.name}", ".done")
            if not done and index:
                return
            for name in done:
                self.storage.delete(f"work/{rnd.name}/{name}")

    def run(self, ray: RayContext | None) -> StepResult:
        start = time.perf_counter()
        inputs = [self.inputs["edges"].path(p.name) for p in self.buckets.parts()]
        merged = PartStats()
        for index in range(MAX_ROUNDS):
            large = index % 2 == 0
            rnd = StarRound(self.storage, index, large, inputs, self.n)
            res = run_step(rnd, self.storage, ray=ray)
            if index == 0:
                merged.rows_in = res.stats.rows_in
            merged.seconds += res.stats.seconds
            merged.peak_rss_mb = max(merged.peak_rss_mb, res.stats.peak_rss_mb)
            if large and res.stats.extra.get("unsettled", 0) == 0:
                self.storage.write_json(RESULT, {"labels": rnd.outputs("labels"), "round": rnd.name})
                merged.rows_out = res.stats.extra.get("nodes", 0)
                merged.extra = {"rounds": index + 1, "nodes": res.stats.extra.get("nodes", 0)}
                log.info("dedup: clusters found after %d rounds", index + 1)
                return StepResult(self.name, self.n, res.ran, merged, time.perf_counter() - start)
            if large:  # small-star rounds do not count
                unsettled = res.stats.extra.get("unsettled", 0)
                log.info("dedup round %d (%s): %d nodes unsettled", index, rnd.name, unsettled)
            inputs = rnd.outputs()
        raise StepFailed(f"{self.name}: no convergence after {MAX_ROUNDS} rounds")
