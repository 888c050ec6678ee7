"""A whole job: plan the parts, guard the output, run the steps (on Ray), write manifest and stats."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from filters.step import FiltersStep
from pipeline import __version__
from pipeline.clip.filters import ClipFiltersStep
from pipeline.clip.images import ClipImagesStep
from pipeline.config import JobSpec, JobSpecError, check_inputs, is_remote
from pipeline.dedup.apply import DedupStep
from pipeline.dedup.components import BucketsStep, ComponentsStep
from pipeline.dedup.keys import DedupKeysStep, partitions
from pipeline.images.join import JoinStep
from pipeline.images.table import IMAGE_TABLE, IMAGES, ImagesStep, ImageTableStep, drop_fetched
from pipeline.runner import Part, Step, StepResult, run_step
from pipeline.steps import DocumentsStep, plan_parts
from pipeline.storage import Storage
from shards.writer import FORMAT_VERSION, MANIFEST_SCHEMA, ShardsStep
from tokenizer.step import TOKENIZER_PATH, TokenizerStep, TokensStep

log = logging.getLogger(__name__)

JOB_FILE = "job.json"


@dataclass
class JobOutcome:
    output: str
    manifest: str
    stats: str
    shards: int
    samples: int
    tokens: int = 0
    tokenizer: str | None = None  # the tokenizer.json of the ids, when the job tokenized


def job_record(spec: JobSpec, parts: list[Part]) -> dict[str, Any]:
    """What makes an output root this job's: the spec's fingerprint, the exact inputs, the versions."""
    listing = "\n".join(f"{p.args['path']}\t{_size(p.args['path'])}" for p in parts).encode()
    return {
        "name": spec.name,
        "fingerprint": spec.fingerprint(),
        "inputs": {"files": len(parts), "sha256": hashlib.sha256(listing).hexdigest()},
        "loom_version": __version__,
        "format_version": FORMAT_VERSION,
    }


def _size(path: str) -> int | None:
    """Local inputs count with their size, so a rebuilt file of other content is a changed input."""
    return None if is_remote(path) else os.path.getsize(path)


def guard_output(spec: JobSpec, storage: Storage, parts: list[Part]) -> None:
    """Refuse an output root that holds another job's results (or the same job on other inputs or
    another Loom version: resuming would mix them); record this job on first use."""
    mine = job_record(spec, parts)
    if storage.exists(JOB_FILE):
        theirs = storage.read_json(JOB_FILE)
        where = storage.uri()
        if theirs.get("fingerprint") != mine["fingerprint"]:
            raise JobSpecError(
                f"{where}: holds the results of another job ({theirs.get('name')!r}, "
                f"fingerprint {theirs.get('fingerprint')}); choose a new output (--out)"
            )
        if theirs.get("inputs") != mine["inputs"]:
            then = theirs["inputs"]["files"]
            how = f"{then} files then, {len(parts)} now" if then != len(parts) else "files of other sizes"
            raise JobSpecError(
                f"{where}: the inputs changed since this output was started ({how}); "
                "choose a new output (--out)"
            )
        for key in ("loom_version", "format_version"):
            if theirs.get(key) != mine[key]:
                raise JobSpecError(
                    f"{where}: started by {key.replace('_', ' ')} {theirs.get(key)}, this is {mine[key]}; "
                    "choose a new output (--out)"
                )
        return
    if not storage.is_empty():
        raise JobSpecError(f"{storage.uri()}: not empty and not a Loom output; choose a new output (--out)")
    storage.write_json(JOB_FILE, {**mine, "spec": spec.model_dump(mode="json")})


class RaySession:
    """Ray, joined or started on first use (a run with nothing left to do never starts it).

    The address comes from ``--address``, then ``RAY_ADDRESS``, then the job spec; none starts local
    Ray. A Ray already initialised in this process (tests, notebooks) is used as it is.
    """

    def __init__(self, spec: JobSpec, address: str | None):
        self.spec = spec
        self.address = address or os.environ.get("RAY_ADDRESS") or spec.ray.address
        self._owned = False

    def ensure(self) -> None:
        import ray

        if ray.is_initialized():
            return
        if self.address:
            log.info("joining Ray cluster at %s", self.address)
            ray.init(address=self.address, logging_level=logging.WARNING)
        else:
            log.info("starting local Ray")
            ray.init(num_cpus=self.spec.ray.num_cpus, include_dashboard=False, logging_level=logging.WARNING)
        self._owned = True

    def parallelism(self) -> int:
        import ray

        self.ensure()
        return self.spec.ray.parallelism or max(1, int(ray.cluster_resources().get("CPU", 1)))

    def close(self) -> None:
        if self._owned:
            import ray

            ray.shutdown()
            self._owned = False


AnyStep = Step | ComponentsStep | ClipImagesStep


def job_steps(spec: JobSpec, storage: Storage, parts: list[Part]) -> list[AnyStep]:
    """The steps, in order: documents; filters (when on); when images are fetched: images,
    image_table, clip (CLIP on), join, clip_filters (CLIP on); when dedup is on: dedup_keys,
    dedup_buckets, dedup_components, dedup; when the tokenizer is on: tokenizer, tokens; shards."""
    steps: list[AnyStep] = [DocumentsStep(spec, storage, parts)]
    if spec.filters.enabled:
        steps.append(FiltersStep(spec, storage, parts))
    if spec.images.fetch:
        images = ImagesStep(spec, storage, parts)
        table = ImageTableStep(images)
        steps += [images, table]
        if spec.clip.enabled:
            steps.append(ClipImagesStep(spec.clip, storage, table))
        steps.append(JoinStep(spec, storage, parts))
        if spec.clip.enabled:
            steps.append(ClipFiltersStep(spec, storage, parts))
    if spec.dedup.enabled:
        buckets = BucketsStep(storage, partitions(spec, parts), parts, spec.dedup.threshold)
        steps += [DedupKeysStep(spec, storage, parts), buckets, ComponentsStep(storage, buckets)]
        steps.append(DedupStep(spec, storage, parts))
    if spec.tokenizer.enabled:
        steps += [TokenizerStep(spec, storage, parts), TokensStep(spec, storage, parts)]
    return [*steps, ShardsStep(spec, storage, parts)]


def reopen_image_retries(storage: Storage, steps: list[Step]) -> int:
    """``--retry-images``: reopen the fetch parts whose log holds retryable failures (they fetch only
    those again) and every part of the steps after them. Returns how many fetch parts reopened."""
    done = storage.list(f"work/{IMAGES}", ".done")
    reopened = [
        n for n in done if storage.read_json(f"work/{IMAGES}/{n}").get("extra", {}).get("retryable", 0)
    ]
    for n in reopened:
        storage.delete(f"work/{IMAGES}/{n}")
    if reopened:
        for done_file in ("manifest.parquet", "stats.json"):  # until the shards are rewritten, no result
            storage.delete(done_file)
        for step in steps[[s.name for s in steps].index(IMAGES) + 1 :]:
            if isinstance(step, ComponentsStep):
                step.reopen()
                continue
            for n in storage.list(f"work/{step.name}", ".done"):
                storage.delete(f"work/{step.name}/{n}")
    log.info("--retry-images: %d fetch parts hold retryable failures", len(reopened))
    return len(reopened)


def run_job(
    spec: JobSpec, *, address: str | None = None, use_ray: bool = True, retry_images: bool = False
) -> JobOutcome:
    """Run the job: ``use_ray=False`` runs every part in this process (tests, debugging);
    ``retry_images`` fetches again the image URLs that failed with a retryable status."""
    check_inputs(spec)
    parts = plan_parts(spec)
    storage = Storage(spec.output)
    guard_output(spec, storage, parts)
    start = time.perf_counter()
    steps = job_steps(spec, storage, parts)
    if retry_images and spec.images.fetch:
        reopen_image_retries(storage, steps)
    session = RaySession(spec, address) if use_ray else None
    results: list[StepResult] = []
    try:
        for step in steps:
            if isinstance(step, ComponentsStep | ClipImagesStep):  # steps that run their own Ray work
                res = step.run(ray=session)
            else:
                res = run_step(step, storage, ray=session)
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
            if res.name == IMAGE_TABLE:
                drop_fetched(storage)
    finally:
        if session:
            session.close()
    rows = results[-1].stats.extra.pop("shards", [])
    storage.write_parquet("manifest.parquet", pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA))
    storage.write_json("stats.json", build_stats(spec, results, rows, time.perf_counter() - start))
    return JobOutcome(
        output=storage.uri(),
        manifest=storage.uri("manifest.parquet"),
        stats=storage.uri("stats.json"),
        shards=len(rows),
        samples=sum(r["samples"] for r in rows),
        tokens=sum(r["tokens"] for r in rows),
        tokenizer=storage.uri(TOKENIZER_PATH) if storage.exists(TOKENIZER_PATH) else None,
    )


def build_stats(
    spec: JobSpec, results: list[StepResult], rows: list[dict[str, Any]], seconds: float
) -> dict[str, Any]:
    """``stats.json``: per step rows in/out, drops by reason, time; totals of the shards."""
    steps = {}
    for res in results:
        s = res.stats.to_json()
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
        "step_order": [res.name for res in results],  # stats.json sorts keys; this is the run order
        "shards": {
            "count": len(rows),
            "samples": sum(r["samples"] for r in rows),
            "documents": {k: sum(r[k] for r in rows) for k in ("text", "pair", "interleaved")},
            "images": sum(r["images"] for r in rows),
            "image_files": sum(r["image_files"] for r in rows),
            "tokens": sum(r["tokens"] for r in rows),
            "embeddings": sum(r["embeddings"] for r in rows),
            "embedding_model": next((r["embedding_model"] for r in rows if r["embedding_model"]), None),
            "embedding_dim": next((r["embedding_dim"] for r in rows if r["embedding_dim"]), None),
            "bytes": sum(r["bytes"] for r in rows),
        },
    }
