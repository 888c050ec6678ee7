"""The runner: steps made of parts, run on Ray Data, resumable part by part.

A **step** turns its input into parts under ``OUT/work/<step>/``: for each part a parquet file (or
shards), a ledger of dropped rows and, written last, a ``.done`` marker holding the part's stats. A
rerun skips every part with a marker, so a killed job resumes and ends with the same output as a
clean run. The part is the unit of work, retry and resume (img2dataset's lesson): within a part the
step's stages run over Arrow batches; across parts, Ray Data schedules workers
(``map_batches`` over the pending parts, one actor per worker so models load once per actor) and
shows progress. A failed part is reported and leaves no marker, so the next run retries it.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from pipeline.stage import Resources
from pipeline.storage import Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Part:
    """One unit of work of a step: a name (also its output file stem) and what it reads."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class PartStats:
    """Additive statistics of one part (and, merged, of a step)."""

    rows_in: int = 0
    rows_out: int = 0
    drops: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "drops": dict(sorted(self.drops.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "seconds": round(self.seconds, 3),
            **({"extra": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PartStats:
        return cls(
            d["rows_in"],
            d["rows_out"],
            Counter(d["drops"]),
            Counter(d["skipped"]),
            d["seconds"],
            d.get("extra", {}),
        )

    def add(self, other: PartStats) -> None:
        self.rows_in += other.rows_in
        self.rows_out += other.rows_out
        self.drops.update(other.drops)
        self.skipped.update(other.skipped)
        self.seconds += other.seconds
        self.extra = merge_additive(self.extra, other.extra)


def merge_additive(a: Any, b: Any) -> Any:
    """Merge two stats values: numbers add, dicts merge key by key, lists concatenate."""
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: merge_additive(a[k], b[k]) if k in a and k in b else a.get(k, b.get(k)) for k in {*a, *b}}
    if isinstance(a, list) and isinstance(b, list):
        return a + b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a + b
    return b


class Step(Protocol):
    """A step of the job. ``run_part`` writes the part's outputs and returns its stats."""

    name: str
    resources: Resources

    def parts(self) -> list[Part]: ...

    def run_part(self, part: Part) -> PartStats: ...


class StepFailed(RuntimeError):
    pass


def marker_path(step: str, part: str) -> str:
    return f"work/{step}/{part}.done"


class _PartWorker:
    """A Ray Data actor: holds one step (its models load once) and runs the parts it is given."""

    def __init__(self, step: Step, storage: Storage):
        self.step = step
        self.storage = storage

    def __call__(self, batch: pa.Table) -> pa.Table:
        names, errors = [], []
        for row in batch.to_pylist():
            names.append(row["name"])
            errors.append(run_one(self.step, self.storage, Part(row["name"], json.loads(row["args"]))))
        return pa.table({"name": names, "error": pa.array(errors, pa.string())})


def run_one(step: Step, storage: Storage, part: Part) -> str | None:
    """Run one part and write its marker last; return an error text instead of raising."""
    start = time.perf_counter()
    try:
        stats = step.run_part(part)
    except Exception:  # noqa: BLE001 - a failed part is reported; the next run retries it
        log.exception("step %s, part %s failed", step.name, part.name)
        return traceback.format_exc(limit=8)
    stats.seconds = time.perf_counter() - start
    storage.write_json(marker_path(step.name, part.name), stats.to_json())
    return None


@dataclass
class StepResult:
    name: str
    parts: int
    ran: int
    stats: PartStats
    wall_seconds: float


def run_step(step: Step, storage: Storage, *, parallelism: int, use_ray: bool = True) -> StepResult:
    """Run the pending parts of ``step`` and merge the stats of all its parts."""
    start = time.perf_counter()
    parts = step.parts()
    pending = [p for p in parts if not storage.exists(marker_path(step.name, p.name))]
    log.info("step %s: %d parts, %d to run", step.name, len(parts), len(pending))
    errors: dict[str, str] = {}
    if pending and use_ray:
        errors = _run_on_ray(step, storage, pending, parallelism)
    else:
        for p in pending:
            if err := run_one(step, storage, p):
                errors[p.name] = err
    if errors:
        name, err = next(iter(sorted(errors.items())))
        last = err.strip().splitlines()[-1]
        raise StepFailed(
            f"step {step.name}: {len(errors)} of {len(pending)} parts failed (first: {name}: {last}); "
            "rerun the job to retry them"
        )
    merged = PartStats()
    for p in parts:
        merged.add(PartStats.from_json(storage.read_json(marker_path(step.name, p.name))))
    return StepResult(step.name, len(parts), len(pending), merged, time.perf_counter() - start)


def _run_on_ray(step: Step, storage: Storage, pending: Sequence[Part], parallelism: int) -> dict[str, str]:
    import ray.data

    ds = ray.data.from_items(
        [{"name": p.name, "args": json.dumps(p.args)} for p in pending], override_num_blocks=len(pending)
    )
    workers = max(1, min(parallelism, len(pending)))
    ds = ds.map_batches(
        _PartWorker,
        fn_constructor_args=(step, storage),
        batch_size=1,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=workers),
        **step.resources.ray_options(),
    )
    errors = {}
    for row in ds.iter_rows():
        if row["error"]:
            errors[row["name"]] = row["error"]
    return errors
