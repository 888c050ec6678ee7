"""A whole job: guard the output, start or join Ray, run the steps, write manifest and stats."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline import __version__
from pipeline.config import JobSpec, JobSpecError, check_inputs
from pipeline.runner import PartStats, StepResult, marker_path, run_step
from pipeline.steps import DocumentsStep
from pipeline.storage import Storage
from shards.writer import FORMAT_VERSION, MANIFEST_SCHEMA, ShardsStep

log = logging.getLogger(__name__)

JOB_FILE = "job.json"


@dataclass
class JobOutcome:
    output: str
    manifest: str
    stats: str
    shards: int
    samples: int


def guard_output(spec: JobSpec, storage: Storage) -> None:
    """Refuse an output root that holds another job's results; record this job's fingerprint."""
    if storage.exists(JOB_FILE):
        other = storage.read_json(JOB_FILE)
        if other.get("fingerprint") != spec.fingerprint():
            raise JobSpecError(
                f"{storage.uri()}: holds the results of another job ({other.get('name')!r}, "
                f"fingerprint {other.get('fingerprint')}); choose a new output (--out)"
            )
        return
    if not storage.is_empty():
        raise JobSpecError(f"{storage.uri()}: not empty and not a Loom output; choose a new output (--out)")
    storage.write_json(
        JOB_FILE, {"name": spec.name, "fingerprint": spec.fingerprint(), "spec": spec.model_dump(mode="json")}
    )


@contextlib.contextmanager
def ray_session(spec: JobSpec, address: str | None) -> Iterator[None]:
    """Join the cluster at ``address`` (flag, RAY_ADDRESS, job spec) or start local Ray on demand."""
    import ray

    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS") or spec.ray.address
    if address:
        log.info("joining Ray cluster at %s", address)
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        log.info("starting local Ray")
        ray.init(num_cpus=spec.ray.num_cpus, include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield
    finally:
        ray.shutdown()


def _parallelism(spec: JobSpec) -> int:
    if spec.ray.parallelism:
        return spec.ray.parallelism
    try:
        import ray

        return max(1, int(ray.cluster_resources().get("CPU", 1)))
    except Exception:  # noqa: BLE001 - not on Ray
        return os.cpu_count() or 1


def run_job(spec: JobSpec, *, address: str | None = None, use_ray: bool = True) -> JobOutcome:
    check_inputs(spec)
    storage = Storage(spec.output)
    guard_output(spec, storage)
    start = time.perf_counter()
    steps = [DocumentsStep(spec, storage), ShardsStep(spec, storage)]
    results: list[StepResult] = []
    session = ray_session(spec, address) if use_ray else contextlib.nullcontext()
    with session:
        parallelism = _parallelism(spec)
        for step in steps:
            res = run_step(step, storage, parallelism=parallelism, use_ray=use_ray)
            log.info(
                "step %s: %d rows in, %d out, %d parts (%d run now), %.1fs",
                res.name,
                res.stats.rows_in,
                res.stats.rows_out,
                res.parts,
                res.ran,
                res.wall_seconds,
            )
            results.append(res)
    rows = shard_rows(storage, steps[-1])
    storage.write_parquet("manifest.parquet", pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA))
    storage.write_json("stats.json", build_stats(spec, results, rows, time.perf_counter() - start))
    return JobOutcome(
        output=storage.uri(),
        manifest=storage.uri("manifest.parquet"),
        stats=storage.uri("stats.json"),
        shards=len(rows),
        samples=sum(r["samples"] for r in rows),
    )


def shard_rows(storage: Storage, step: ShardsStep) -> list[dict[str, Any]]:
    rows = []
    for part in step.parts():
        marker = PartStats.from_json(storage.read_json(marker_path(step.name, part.name)))
        rows.extend(marker.extra["shards"])
    return rows


def build_stats(
    spec: JobSpec, results: list[StepResult], rows: list[dict[str, Any]], seconds: float
) -> dict[str, Any]:
    """``stats.json``: per step rows in/out, drops by reason, time; totals of the shards."""
    steps = {}
    for res in results:
        s = res.stats.to_json()
        s.get("extra", {}).pop("shards", None)  # listed in the manifest instead
        s["parts"] = res.parts
        s["wall_seconds"] = round(res.wall_seconds, 3)
        steps[res.name] = s
    return {
        "job": spec.name,
        "fingerprint": spec.fingerprint(),
        "loom_version": __version__,
        "format_version": FORMAT_VERSION,
        "seconds": round(seconds, 3),
        "steps": steps,
        "shards": {
            "count": len(rows),
            "samples": sum(r["samples"] for r in rows),
            "documents": {k: sum(r[k] for r in rows) for k in ("text", "pair", "interleaved")},
            "images": sum(r["images"] for r in rows),
            "tokens": sum(r["tokens"] for r in rows),
            "bytes": sum(r["bytes"] for r in rows),
        },
    }
