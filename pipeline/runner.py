"""The runner: steps made of parts, run on Ray Data, resumable part by part.

A **step** turns its input into parts under ``OUT/work/<step>/``: for each part a parquet file (or
shards), a ledger of dropped rows and, written last, a ``.done`` marker holding the part's stats. A
rerun skips every part with a marker, so a killed job resumes and ends with the same output as a
clean run. The part is the unit of work, retry and resume (img2dataset's lesson): within a part the
step's stages run over Arrow batches; across parts, Ray Data schedules workers
(``map_batches`` over the pending parts, one actor per worker so models load once per actor). A
failed part is reported and leaves no marker, so the next run retries it.

Each finished part is logged (one line) and told to the :class:`PartListener` set with
:func:`listening`, if any: the application draws progress from it (``jobs/progress.py``); the engine
draws nothing.
"""

from __future__ import annotations

import json
import logging
import resource
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from pipeline.stage import Resources
from pipeline.storage import Storage
from pipeline.watchdog import PartStalled, watch

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
    peak_rss_mb: float = 0.0  # the largest resident memory of a worker process that ran a part
    nodes: Counter = field(default_factory=Counter)  # Ray node id → parts it ran ("local": no Ray)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "drops": dict(sorted(self.drops.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "seconds": round(self.seconds, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            **({"extra": self.extra} if self.extra else {}),
            **({"nodes": dict(sorted(self.nodes.items()))} if self.nodes else {}),
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
            d.get("peak_rss_mb", 0.0),
            Counter(d.get("nodes", {})),
        )

    def add(self, other: PartStats) -> None:
        self.rows_in += other.rows_in
        self.rows_out += other.rows_out
        self.drops.update(other.drops)
        self.skipped.update(other.skipped)
        self.seconds += other.seconds
        self.peak_rss_mb = max(self.peak_rss_mb, other.peak_rss_mb)
        self.nodes.update(other.nodes)
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


WORKER_RESTARTS = 8  # ``run.worker_restarts``: restarts of a step's Ray worker that dies (killed, OOM)


def marker_path(step: str, part: str) -> str:
    return f"work/{step}/{part}.done"


@dataclass
class PartOutcome:
    """What the driver hears of a part: its size and time, or its error."""

    name: str
    rows_in: int = 0
    rows_out: int = 0
    seconds: float = 0.0
    error: str | None = None


class PartListener(Protocol):
    """Who hears of a step's parts while it runs (``jobs.progress.JobProgress`` draws them).

    ``parts_pending``: the step has ``total`` parts, ``pending`` of them to run now (the others were
    done by an earlier run). ``part_done``: a part finished (or failed: ``outcome.error``); ``done`` of
    the ``total`` parts are now done, earlier runs' included. Both are called in the driver, in order.
    """

    def parts_pending(self, step: str, total: int, pending: int) -> None: ...

    def part_done(self, step: str, outcome: PartOutcome, done: int, total: int) -> None: ...


_LISTENER: ContextVar[PartListener | None] = ContextVar("loom_part_listener", default=None)


@contextmanager
def listening(listener: PartListener) -> Iterator[None]:
    """While it lasts, every :func:`run_step` (a global step's rounds too) tells ``listener``."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)


class _PartWorker:
    """A Ray Data actor: holds one step (its models load once) and runs the parts it is given."""

    def __init__(self, step: Step, storage: Storage):
        self.step = step
        self.storage = storage

    def __call__(self, batch: pa.Table) -> pa.Table:
        outcomes = [
            run_one(self.step, self.storage, Part(row["name"], json.loads(row["args"])))
            for row in batch.to_pylist()
        ]
        return pa.Table.from_pylist([vars(o) for o in outcomes])


def run_one(step: Step, storage: Storage, part: Part) -> PartOutcome:
    """Run one part and write its marker last; a failure is returned, not raised. A part with no
    progress for the step's ``stall_seconds`` fails (:mod:`pipeline.watchdog`)."""
    start = time.perf_counter()
    try:
        with watch(step.name, part.name, getattr(step, "stall_seconds", None)):
            stats = step.run_part(part)
    except PartStalled as err:
        log.error("%s", err)
        return PartOutcome(part.name, error=f"PartStalled: {err}")
    except Exception:  # noqa: BLE001 - a failed part is reported; the next run retries it
        log.exception("step %s, part %s failed", step.name, part.name)
        return PartOutcome(part.name, error=traceback.format_exc(limit=8))
    stats.seconds = time.perf_counter() - start
    stats.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    stats.nodes = Counter({node_id(): 1})
    storage.write_json(marker_path(step.name, part.name), stats.to_json())
    return PartOutcome(part.name, stats.rows_in, stats.rows_out, stats.seconds)


def node_id() -> str:
    """The Ray node this process runs on, or ``local`` (no Ray here)."""
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - a statistic, never a failure
        pass
    return "local"


@dataclass
class StepResult:
    name: str
    parts: int
    ran: int
    stats: PartStats
    wall_seconds: float


class RayContext(Protocol):
    """Ray, started on first use (``jobs.run.RaySession``)."""

    def parallelism(self) -> int: ...


def run_step(step: Step, storage: Storage, *, ray: RayContext | None) -> StepResult:
    """Run the pending parts of ``step`` (on Ray, or here when ``ray`` is None); merge all parts' stats."""
    start = time.perf_counter()
    parts = step.parts()
    done = set(storage.list(f"work/{step.name}", ".done"))  # one listing, not a look-up per part
    pending = [p for p in parts if f"{p.name}.done" not in done]
    log.info("step %s: %d parts, %d to run", step.name, len(parts), len(pending))
    listener = _LISTENER.get()
    if listener is not None:
        listener.parts_pending(step.name, len(parts), len(pending))
    if pending and ray is not None:
        outcomes = _run_on_ray(step, storage, pending, ray.parallelism())
    else:
        outcomes = (run_one(step, storage, p) for p in pending)
    errors: dict[str, str] = {}
    before = len(parts) - len(pending)
    for done, outcome in enumerate(outcomes, 1):
        if listener is not None:
            listener.part_done(step.name, outcome, before + done, len(parts))
        if outcome.error:
            errors[outcome.name] = outcome.error
            # a part run on Ray logged its traceback in its worker: the driver's log shows it too
            detail = f":\n{outcome.error.rstrip()}" if ray is not None else ""
            where = (step.name, outcome.name, done, len(pending))
            log.error("step %s: part %s failed (%d/%d)%s", *where, detail)
        else:
            log.info(
                "step %s: part %s done (%d/%d): %d rows in, %d out, %.1fs",
                step.name,
                outcome.name,
                done,
                len(pending),
                outcome.rows_in,
                outcome.rows_out,
                outcome.seconds,
            )
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


def _run_on_ray(
    step: Step, storage: Storage, pending: Sequence[Part], parallelism: int
) -> Iterator[PartOutcome]:
    import ray.data

    ds = ray.data.from_items(
        [{"name": p.name, "args": json.dumps(p.args)} for p in pending], override_num_blocks=len(pending)
    )
    workers = max(1, min(parallelism, len(pending)))
    with warnings.catch_warnings():
        # max_restarts and max_task_retries have no named parameter of map_batches in Ray 2.60 (the
        # version pinned): its warning that they are `ray_remote_args`, deprecated, is known
        warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated", DeprecationWarning)
        ds = _map_parts(ds, step, storage, workers)
    try:
        for row in ds.iter_rows():
            yield PartOutcome(**row)
    except Exception as err:  # a worker or node lost: finished parts keep their markers
        # Ray's whole error text (the cause, the worker's traceback) before the one-line summary
        log.error("step %s: Ray failed:\n%s", step.name, str(err).strip() or type(err).__name__)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StepFailed(
            f"step {step.name}: Ray failed ({first}); a worker that keeps dying (killed, out of memory) "
            "fails the step after run.worker_restarts restarts; rerun the job to retry the parts left"
        ) from err


def _map_parts(ds: Any, step: Step, storage: Storage, workers: int) -> Any:
    """The pending parts' dataset mapped by a pool of ``workers`` :class:`_PartWorker` actors."""
    import ray.data

    return ds.map_batches(
        _PartWorker,
        fn_constructor_args=(step, storage),
        batch_size=1,
        batch_format="pyarrow",
        # one part at a time per worker: with Ray's default of 2 in flight, the first worker up took
        # both parts of a two-part step while the second sat idle
        compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1),
        # a killed worker is restarted and its part retried, a bounded number of times (Ray Data's
        # default is forever), then the step fails in one line
        max_restarts=getattr(step, "worker_restarts", WORKER_RESTARTS),
        max_task_retries=getattr(step, "worker_restarts", WORKER_RESTARTS),
        **step.resources.ray_options(),
    )
