"""The ``mix`` step: how many tokens of each component the training mixture takes, and in what order.

Every document gets, per epoch, a 64-bit order key: a hash of the seed, the epoch and its id
(:func:`order_keys`). A component's documents are taken in key order, epoch after epoch, until its
quota of tokens (its weight times the budget) is met; the last, partial epoch stops at the document
boundary nearest the quota. Nothing needs all ids in one place for that: each part counts its
tokens into a histogram over the top 16 bits of the keys (65,536 buckets per component and epoch,
:data:`BUCKETS`), and the step adds the histograms up. The cumulative histogram gives every
document its position in its component's sequence (exact to a bucket, which on a big corpus holds
1/65,536 of the component) and the cut of the partial epoch.

The plan (``work/mix/plan.json``) and the cumulative histograms (``work/mix/positions.npz``) are
what the ``shuffle`` step reads to place each document (``shards/shuffle.py``).
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import JobSpecError
from pipeline.runner import Part, PartStats, RayContext, StepResult
from pipeline.step import Data, Step, document_parts
from pipeline.storage import Storage
from shards.config import MixConfig

MIX = "mix"
BUCKET_BITS = 16
BUCKETS = 1 << BUCKET_BITS
_LOW = (1 << (64 - BUCKET_BITS)) - 1


class MixError(JobSpecError):
    """A mixture the documents cannot give (a component with no tokens, a budget past max_epochs)."""


def order_keys(ids: list[str], seed: int, epoch: int) -> np.ndarray:
    """The 64-bit order key of each document id in ``epoch``: the same for the same seed, everywhere."""
    prefix = f"{seed}:{epoch}:".encode()
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(prefix + i.encode(), digest_size=8).digest(), "little") for i in ids),
        dtype=np.uint64,
        count=len(ids),
    )


def key_buckets(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each key's histogram bucket (its top bits) and where in the bucket it falls, in [0, 1)."""
    return (keys >> np.uint64(64 - BUCKET_BITS)).astype(np.int64), (keys & np.uint64(_LOW)) / float(_LOW + 1)


def components_of(table: pa.Table, cfg: MixConfig) -> np.ndarray:
    """The component index of each document (its kind's or source's place in ``cfg.components()``),
    or -1 for a document of no weighted component."""
    names = list(cfg.components())
    column = table["kind" if cfg.by_kind() else "source"].to_pylist()
    index = {n: i for i, n in enumerate(names)}
    return np.array([index.get(v, -1) for v in column], dtype=np.int64)


def token_lengths(table: pa.Table) -> np.ndarray:
    return pc.list_value_length(table["tokens"]).to_numpy(zero_copy_only=False).astype(np.int64)


@dataclass(frozen=True)
class Component:
    """One component of the plan: what it holds and what the mixture takes of it."""

    name: str
    weight: float  # its share of the mixture's tokens
    tokens: int  # one epoch
    documents: int
    max_epochs: float
    full_epochs: int  # epochs taken whole
    cut: int  # of epoch ``full_epochs``, the buckets below ``cut`` are taken
    taken_tokens: int
    taken_documents: int

    @property
    def epochs(self) -> float:
        return self.taken_tokens / self.tokens


@dataclass(frozen=True)
class Plan:
    """The mixture: its components, the budget asked for, the tokens taken and the shuffle buckets."""

    components: list[Component]
    budget: int
    seed: int
    buckets: int  # shuffle buckets (the train step's parts)
    span: float  # every order position (tokens / weight) is below it

    @property
    def tokens(self) -> int:
        return sum(c.taken_tokens for c in self.components)

    def to_json(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "seed": self.seed,
            "buckets": self.buckets,
            "span": self.span,
            "tokens": self.tokens,
            "components": [vars(c) for c in self.components],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Plan:
        return cls([Component(**c) for c in d["components"]], d["budget"], d["seed"], d["buckets"], d["span"])

    def summary(self) -> dict[str, Any]:
        """Requested against delivered shares, epochs and tokens per component (the stats)."""
        total = self.tokens or 1
        return {
            "budget": self.budget,
            "tokens": self.tokens,
            "components": {
                c.name: {
                    "requested_share": round(c.weight, 6),
                    "delivered_share": round(c.taken_tokens / total, 6),
                    "tokens": c.taken_tokens,
                    "documents": c.taken_documents,
                    "epochs": round(c.epochs, 4),
                    "max_epochs": c.max_epochs,
                    "holds_tokens": c.tokens,
                    "holds_documents": c.documents,
                }
                for c in self.components
            },
        }


def plan_mixture(cfg: MixConfig, tokens: np.ndarray, documents: np.ndarray) -> Plan:
    """The plan from the summed histograms: ``tokens[c, e]`` and ``documents[c, e]`` are component
    ``c``'s tokens and documents per key bucket in epoch ``e``. Raises :class:`MixError` when a
    component holds nothing or the budget needs more epochs than ``max_epochs`` allows."""
    shares = cfg.components()
    totals = {name: int(tokens[c, 0].sum()) for c, name in enumerate(shares)}
    what = "kind" if cfg.by_kind() else "source"
    for name, total in totals.items():
        if total == 0:
            raise MixError(f"mix.weights.{name}: the job's documents hold no tokens of {what} {name!r}")
    budget = cfg.tokens or int(min(cfg.epochs(n) * totals[n] / w for n, w in shares.items()))
    components = []
    for c, (name, weight) in enumerate(shares.items()):
        total, docs, most = totals[name], int(documents[c, 0].sum()), cfg.epochs(name)
        quota = weight * budget
        if quota > most * total * (1 + 1e-12):
            raise MixError(
                f"mix.tokens: {budget:,} tokens at a share of {weight:.4g} need {quota:,.0f} tokens "
                f"of {name}, {quota / total:.2f} epochs of what it holds ({total:,} tokens in "
                f"{docs:,} documents); mix.max_epochs allows {most:g}"
            )
        full = min(int(quota // total), math.ceil(most) - 1)  # its last epoch may be the partial one
        rest = quota - full * total
        cum = np.concatenate([[0], np.cumsum(tokens[c, full])])
        k = int(np.searchsorted(cum, rest, side="right")) - 1  # cum[k] <= rest < cum[k + 1]
        up = k < BUCKETS and rest - cum[k] > cum[k + 1] - rest  # the boundary above is nearer
        cut = k + 1 if up and full * total + cum[k + 1] <= most * total else k  # never past max_epochs
        taken = full * total + int(cum[cut])
        taken_docs = full * docs + int(documents[c, full, :cut].sum())
        components.append(Component(name, weight, total, docs, most, full, cut, taken, taken_docs))
    span = max((c.taken_tokens / c.weight for c in components), default=0.0) * (1 + 1e-9) + 1.0
    total_taken = sum(c.taken_tokens for c in components)
    buckets = max(1, math.ceil(total_taken / cfg.bucket_tokens))
    return Plan(components, budget, cfg.seed, buckets, span)


def histogram_rows(table: pa.Table, cfg: MixConfig) -> tuple[pa.Table, dict[str, Any]]:
    """One part's histograms (the non-empty buckets, as rows) and its counts by component."""
    comp = components_of(table, cfg)
    lengths = token_lengths(table)
    ids = table["id"].to_pylist()
    rows: dict[str, list] = {"component": [], "epoch": [], "bucket": [], "tokens": [], "documents": []}
    for c, name in enumerate(cfg.components()):
        mine = np.flatnonzero(comp == c)
        mine_ids = [ids[i] for i in mine]
        for e in range(math.ceil(cfg.epochs(name))):
            bucket, _ = key_buckets(order_keys(mine_ids, cfg.seed, e))
            tok = np.bincount(bucket, weights=lengths[mine], minlength=BUCKETS).astype(np.int64)
            docs = np.bincount(bucket, minlength=BUCKETS).astype(np.int64)
            nonzero = np.flatnonzero(docs)
            rows["component"] += [c] * len(nonzero)
            rows["epoch"] += [e] * len(nonzero)
            rows["bucket"] += nonzero.tolist()
            rows["tokens"] += tok[nonzero].tolist()
            rows["documents"] += docs[nonzero].tolist()
    left = comp < 0
    counts = {
        "left_out": {"documents": int(left.sum()), "tokens": int(lengths[left].sum())},
    }
    schema = pa.schema([(k, pa.int64()) for k in rows])
    return pa.table(rows, schema=schema), counts


class MixStep(Step):
    """Plan the training mixture: one part per documents part counts the histogram of its order
    keys; then the step adds them up into ``plan`` (``work/mix/plan.json``) and ``positions``
    (``work/mix/positions.npz``: per component and epoch, the tokens in each bucket)."""

    name = MIX

    def __init__(self, storage: Storage, doc_parts: list[Part], documents: Data, cfg: MixConfig):
        super().__init__(storage, documents=documents)
        self.cfg = cfg
        self._parts = document_parts(doc_parts)
        self.output("histograms", "work/{step}/{part}.histogram.parquet")
        self.output("plan", "work/{step}/plan.json")
        self.output("positions", "work/{step}/positions.npz")

    def settings(self) -> dict[str, Any]:
        return self.cfg.model_dump(mode="json", exclude={"shard_tokens", "subsets"})

    def parts(self) -> list[Part]:
        return self._parts

    def run_part(self, part: Part) -> PartStats:
        table = self.storage.read_parquet(
            self.inputs["documents"].path(part.name), ["id", "kind", "source", "tokens"]
        )
        rows, counts = histogram_rows(table, self.cfg)
        self.storage.write_parquet(self["histograms"].path(part.name), rows)
        return PartStats(
            rows_in=table.num_rows, rows_out=table.num_rows - counts["left_out"]["documents"], extra=counts
        )

    def run(self, ray: RayContext | None) -> StepResult:
        result = super().run(ray)
        tokens, documents = self.histograms()
        plan = plan_mixture(self.cfg, tokens, documents)
        self.storage.write_json(self["plan"].path(), plan.to_json())
        buf = io.BytesIO()
        np.savez(buf, tokens=tokens)
        self.storage.write_bytes(self["positions"].path(), buf.getvalue())
        result.stats.extra["mix"] = plan.summary()
        return result

    def histograms(self) -> tuple[np.ndarray, np.ndarray]:
        """The parts' histograms added up: tokens and documents, shaped (component, epoch, bucket)."""
        names = list(self.cfg.components())
        epochs = max((math.ceil(self.cfg.epochs(n)) for n in names), default=1)
        tokens = np.zeros((len(names), epochs, BUCKETS), np.int64)
        documents = np.zeros_like(tokens)
        for p in self._parts:
            rows = self.storage.read_parquet(self["histograms"].path(p.name))
            where = tuple(rows[k].to_numpy() for k in ("component", "epoch", "bucket"))
            np.add.at(tokens, where, rows["tokens"].to_numpy())
            np.add.at(documents, where, rows["documents"].to_numpy())
        return tokens, documents


def read_positions(storage: Storage, positions: Data) -> np.ndarray:
    """The summed histogram the mix step wrote: tokens by (component, epoch, bucket)."""
    with np.load(io.BytesIO(storage.read_bytes(positions.path()))) as z:
        return z["tokens"]


__all__ = ["MixError", "MixStep", "Plan", "order_keys", "plan_mixture", "read_positions"]
