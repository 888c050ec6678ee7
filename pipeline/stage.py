"""The stage contract: a batch transform over Arrow tables that declares what it needs.

A stage is any callable ``(pa.Table) -> pa.Table`` with a ``name`` and ``resources``: a class when it
holds a model (built once per Ray actor), a function wrapped by :func:`stage` otherwise. A stage never
deletes rows itself: it scores (adds columns) or marks rows with ``_drop_reason`` (and optionally
``_drop_detail``); :func:`apply_stages` splits marked rows off into the removal ledger. Tests call
stages directly, without Ray.

Constructing a stage must be cheap (the driver builds stages to read their resources): a stage that
holds a model loads it on first use, in the worker, once per actor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.schema import DROP_REASON, LEDGER_SCHEMA, SCORES_TYPE

#: The optional column that says more about a row's drop reason (a score, a threshold, a cluster).
DROP_DETAIL = "_drop_detail"


@dataclass(frozen=True)
class Resources:
    """What one worker of a stage needs (Ray actor/task options)."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory_bytes: int | None = None

    def ray_options(self) -> dict:
        opts: dict = {"num_cpus": self.cpus}
        if self.gpus:
            opts["num_gpus"] = self.gpus
        if self.memory_bytes:
            opts["memory"] = self.memory_bytes
        return opts

    def merge(self, other: Resources) -> Resources:
        """The resources of one worker that runs both stages."""
        mem = max(self.memory_bytes or 0, other.memory_bytes or 0) or None
        return Resources(max(self.cpus, other.cpus), max(self.gpus, other.gpus), mem)


@runtime_checkable
class Stage(Protocol):
    name: str
    resources: Resources

    def __call__(self, batch: pa.Table) -> pa.Table: ...


@dataclass
class FunctionStage:
    """A stateless stage made from a plain function."""

    fn: Callable[[pa.Table], pa.Table]
    name: str
    resources: Resources = field(default_factory=Resources)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return self.fn(batch)


def stage(name: str, resources: Resources | None = None) -> Callable[[Callable], FunctionStage]:
    """Decorator: ``@stage("normalize")`` turns a table function into a stage."""

    def wrap(fn: Callable[[pa.Table], pa.Table]) -> FunctionStage:
        return FunctionStage(fn, name, resources or Resources())

    return wrap


@dataclass
class StageOutput:
    kept: pa.Table
    dropped: pa.Table  # LEDGER_SCHEMA rows


def _column(table: pa.Table, name: str) -> pa.Array:
    """A string column of the rows, nulls when they have none."""
    if name in table.column_names:
        return table[name].combine_chunks().cast(pa.string())
    return pa.nulls(table.num_rows, pa.string())


def _scores(table: pa.Table) -> pa.Array:
    """Each row's ``meta.scores`` (nulls when the rows have none)."""
    if "meta" in table.column_names and "scores" in table.schema.field("meta").type.names:
        scores = pc.struct_field(table["meta"].combine_chunks(), "scores")
        if scores.type == SCORES_TYPE:
            return scores
    return pa.nulls(table.num_rows, SCORES_TYPE)


def split_dropped(table: pa.Table, step: str, stage_name: str) -> StageOutput:
    """Move rows marked with ``_drop_reason`` into ledger rows; return the rest unmarked."""
    if DROP_REASON not in table.column_names:
        return StageOutput(table, LEDGER_SCHEMA.empty_table())
    reasons = table[DROP_REASON]
    marked = pc.is_valid(reasons)
    kept = table.filter(pc.invert(marked)).drop_columns([DROP_REASON])
    gone = table.filter(marked)
    n = gone.num_rows
    detail = gone[DROP_DETAIL] if DROP_DETAIL in gone.column_names else pa.nulls(n, pa.string())
    if DROP_DETAIL in kept.column_names:
        kept = kept.drop_columns([DROP_DETAIL])
    ledger = pa.table(
        {
            "id": gone["id"] if "id" in gone.column_names else pa.nulls(n, pa.string()),
            "url": gone["url"] if "url" in gone.column_names else pa.nulls(n, pa.string()),
            "step": pa.array([step] * n, pa.string()),
            "stage": pa.array([stage_name] * n, pa.string()),
            "reason": gone[DROP_REASON],
            "detail": detail,
            "source": _column(gone, "source"),
            "kind": _column(gone, "kind"),
            "scores": _scores(gone),
        },
        schema=LEDGER_SCHEMA,
    )
    return StageOutput(kept, ledger)


def apply_stages(batch: pa.Table, stages: Sequence[Stage], step: str) -> StageOutput:
    """Run ``stages`` in order over one batch, collecting every dropped row in the ledger."""
    ledgers = []
    for st in stages:
        out = split_dropped(st(batch), step, st.name)
        batch = out.kept
        if out.dropped.num_rows:
            ledgers.append(out.dropped)
    dropped = pa.concat_tables(ledgers) if ledgers else LEDGER_SCHEMA.empty_table()
    return StageOutput(batch, dropped)


def merged_resources(stages: Sequence[Stage]) -> Resources:
    res = Resources()
    for st in stages:
        res = res.merge(st.resources)
    return res
