"""A whole job: plan the parts, build the graph, guard the output, run the steps (on Ray), write stats.

A rerun of the same output root reruns exactly the steps whose fingerprint changed (a setting of
their own, or a step they read that reruns) and resumes the others part by part; an output root
that holds another job's inputs or another Loom format is refused.

While it runs, a :class:`~jobs.progress.JobProgress` draws each step (a live line on a terminal) and
the log lines go to ``OUT/logs/`` (:mod:`jobs.logs`): Loom's to ``loom.log``, Ray's to ``ray.log``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.graph import build_graph, inputs_record
from jobs.logs import RAY_LOG, RayLogs, log_folder, loom_log
from jobs.progress import JobProgress
from jobs.spec import JobSpec, JobSpecError, check_inputs
from pipeline import __version__
from pipeline.config import is_remote
from pipeline.documents import plan_parts
from pipeline.graph import Graph
from pipeline.images.table import IMAGES
from pipeline.runner import Part, StepResult, listening
from pipeline.storage import Storage
from shards.train import TRAIN, TRAIN_MANIFEST
from shards.writer import FORMAT_VERSION, MANIFEST
from tokenizer.step import TOKENIZER_PATH

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
STATS_FILE = "stats.json"


@dataclass
class JobOutcome:
    output: str
    manifest: str
    stats: str
    shards: int
    samples: int
    tokens: int = 0
    tokenizer: str | None = None  # the tokenizer.json of the ids, when the job tokenized
    train: str | None = None  # the training dataset's manifest, when the job has [mix]
    train_note: str = ""
    logs: str = ""  # the folder of loom.log and ray.log (OUT/logs/, or a local folder for s3://)
    report: str = ""  # OUT/report/index.html, when the job wrote it


def job_record(spec: JobSpec, graph: Graph) -> dict[str, Any]:
    """What makes an output root this job's: the exact inputs and the versions (``job.json``)."""
    return {
        "name": spec.name,
        "fingerprint": spec.fingerprint(),
        "inputs": graph.base["inputs"],
        "loom_version": __version__,
        "format_version": FORMAT_VERSION,
    }


def _size(path: str) -> int | None:
    """Local inputs count with their size, so a rebuilt file of other content is a changed input."""
    return None if is_remote(path) else os.path.getsize(path)


def refusal(spec: JobSpec, storage: Storage, parts: list[Part], graph: Graph) -> str | None:
    """Why the output root cannot take this job (one line), or None. It can when it is empty or holds
    this job's inputs in this format; changed settings only make their steps (and later ones) stale."""
    if not storage.exists(JOB_FILE):
        if storage.is_empty():
            return None
        return f"{storage.uri()}: not empty and not a Loom output; choose a new output (--out)"
    mine, theirs = job_record(spec, graph), storage.read_json(JOB_FILE)
    where = storage.uri()
    every = f"every step would rerun ({', '.join(s.name for s in graph.steps)})"
    if theirs.get("inputs") != mine["inputs"]:
        then = theirs.get("inputs", {}).get("files")
        how = f"{then} files then, {len(parts)} now" if then != len(parts) else "files of other sizes"
        return (
            f"{where}: the inputs changed since this output was started ({how}): {every}; "
            "choose a new output (--out)"
        )
    for key in ("loom_version", "format_version"):
        if theirs.get(key) != mine[key]:
            return (
                f"{where}: started by {key.replace('_', ' ')} {theirs.get(key)}, this is {mine[key]}: "
                f"{every}; choose a new output (--out)"
            )
    return None


def guard_output(spec: JobSpec, storage: Storage, parts: list[Part], graph: Graph) -> None:
    """Refuse an output root that cannot take this job (:func:`refusal`); record the job."""
    why = refusal(spec, storage, parts, graph)
    if why:
        raise JobSpecError(why)
    storage.write_json(JOB_FILE, {**job_record(spec, graph), "spec": spec.model_dump(mode="json")})


class RaySession:
    """Ray, joined or started on first use (a run with nothing left to do never starts it).

    The address comes from ``--address``, then ``RAY_ADDRESS``, then the job spec; none starts local
    Ray (a new instance, never one found running on this machine). A Ray already initialised in this
    process (tests, notebooks) is used as it is. With ``logs``, Ray's driver log lines go to its file
    from the start (:class:`jobs.logs.RayLogs`).
    """

    def __init__(self, spec: JobSpec, address: str | None, logs: RayLogs | None = None):
        self.spec = spec
        self.address = address or os.environ.get("RAY_ADDRESS") or spec.ray.address
        self.logs = logs
        self._owned = False

    def ensure(self) -> None:
        import ray

        if ray.is_initialized():
            return
        if self.logs:
            self.logs.start()
        level = logging.INFO if self.logs else logging.WARNING  # with logs, info lines go to ray.log
        if self.address:
            log.info("joining Ray cluster at %s", self.address)
            ray.init(address=self.address, logging_level=level)
        else:
            log.info("starting local Ray")
            ray.init(
                address="local",  # not a cluster some other program left running here
                num_cpus=self.spec.ray.num_cpus,
                include_dashboard=False,
                logging_level=level,
            )
        self._owned = True
        if self.logs:
            self.logs.take_forwarded_lines()

    def parallelism(self) -> int:
        import ray

        self.ensure()
        return self.spec.ray.parallelism or max(1, int(ray.cluster_resources().get("CPU", 1)))

    def close(self) -> None:
        if self._owned:
            import ray

            ray.shutdown()
            self._owned = False
        if self.logs:
            self.logs.stop()


def abort_uploads(storage: Storage) -> None:
    """Abort the multipart uploads left open under an ``s3://`` output (a worker killed mid-write);
    a failure to clean up is a warning, never the job's error."""
    if storage.is_local:
        return
    try:
        if aborted := storage.abort_stale_uploads():
            log.info("aborted %d unfinished uploads under %s", aborted, storage.uri())
    except Exception as err:  # noqa: BLE001 - cleanup must not hide the job's own outcome
        log.warning("could not abort the unfinished uploads under %s: %s", storage.uri(), err)


def forget_results(storage: Storage) -> None:
    """Until the shards are rewritten, the output holds no result: no manifest, no stats."""
    for name in (MANIFEST, STATS_FILE):
        storage.delete(name)


def reopen_image_retries(storage: Storage, graph: Graph) -> int:
    """``--retry-images``: reopen the fetch parts whose log holds retryable failures (they fetch only
    those again) and every part of the steps that read them. Returns how many fetch parts reopened."""
    done = storage.list(f"work/{IMAGES}", ".done")
    reopened = [
        n for n in done if storage.read_json(f"work/{IMAGES}/{n}").get("extra", {}).get("retryable", 0)
    ]
    for n in reopened:
        storage.delete(f"work/{IMAGES}/{n}")
    if reopened:
        forget_results(storage)
        for step in graph.after(IMAGES):
            step.reopen()
    log.info("--retry-images: %d fetch parts hold retryable failures", len(reopened))
    return len(reopened)


def plan_job(spec: JobSpec) -> tuple[Storage, list[Part], Graph]:
    """The job's output root, its parts (one per input file) and its step graph; nothing runs."""
    check_inputs(spec)
    parts = plan_parts(spec.sources)
    storage = Storage(spec.output)
    graph = build_graph(spec, storage, parts, inputs_record(parts, [_size(p.args["path"]) for p in parts]))
    return storage, parts, graph


def run_job(
    spec: JobSpec,
    *,
    address: str | None = None,
    use_ray: bool = True,
    retry_images: bool = False,
    progress: JobProgress | None = None,
    verbose: bool = False,
) -> JobOutcome:
    """Run the job: ``use_ray=False`` runs every part in this process (tests, debugging);
    ``retry_images`` fetches again the image URLs that failed with a retryable status. ``progress``
    draws the steps (default: nothing drawn, the log lines); ``verbose`` keeps debug lines in
    ``loom.log`` and shows Ray's log lines on the terminal too."""
    storage, parts, graph = plan_job(spec)
    guard_output(spec, storage, parts, graph)
    logs = log_folder(storage)
    with loom_log(logs, verbose=verbose):
        try:
            abort_uploads(storage)  # what a killed run left half-uploaded
            start = time.perf_counter()
            stale = graph.stale(storage)
            if stale:
                log.info("steps to rerun: %s", ", ".join(f"{n} ({why})" for n, why in stale.items()))
                forget_results(storage)
            if retry_images and IMAGES in graph:
                reopen_image_retries(storage, graph)
            ray_logs = RayLogs(logs / RAY_LOG, verbose=verbose)
            session = RaySession(spec, address, ray_logs) if use_ray else None
            results = run_steps(graph, storage, session, progress or JobProgress())
        except Exception:
            log.warning("the job stopped; its logs: %s", logs)
            raise
    rows = storage.read_parquet(MANIFEST).to_pylist()
    storage.write_json(STATS_FILE, build_stats(spec, results, rows, time.perf_counter() - start))
    report = write_report(storage, spec) if spec.report.enabled else ""
    return JobOutcome(
        output=storage.uri(),
        manifest=storage.uri(MANIFEST),
        stats=storage.uri(STATS_FILE),
        shards=len(rows),
        samples=sum(r["samples"] for r in rows),
        tokens=sum(r["tokens"] for r in rows),
        tokenizer=storage.uri(TOKENIZER_PATH) if storage.exists(TOKENIZER_PATH) else None,
        logs=str(logs),
        report=report,
        **train_outcome(storage, results),
    )


def write_report(storage: Storage, spec: JobSpec) -> str:
    """``OUT/report/index.html`` (``[report]``); a report that cannot be built is a warning, never a
    failed job: the data is done, and ``loom report OUT`` tries again."""
    from report import build_report

    cfg = spec.report
    try:
        result = build_report(storage, samples=cfg.samples, examples=cfg.examples, seed=cfg.seed)
        log.info("report: %s (%.1f MB, %.1f s)", result.path, result.bytes / 1e6, result.seconds)
        return result.path
    except Exception as err:  # the report reads everything: a surprise there must not cost the run
        log.warning("the report could not be built (%s: %s); `loom report %s` tries again",
                    type(err).__name__, err, storage.uri())  # fmt: skip
        return ""


def run_steps(
    graph: Graph, storage: Storage, session: RaySession | None, progress: JobProgress
) -> list[StepResult]:
    """Run every step in order (on Ray with a ``session``), each drawn by ``progress``."""
    results: list[StepResult] = []
    try:
        with progress, listening(progress):
            for step in graph.steps:
                graph.start(storage, step)
                progress.step_started(step.name)
                res = step.run(ray=session)
                graph.finish(storage, step)
                log.info(
                    "step %s: %d rows in, %d out, %d parts (%d run now), %.1fs",
                    res.name,
                    res.stats.rows_in,
                    res.stats.rows_out,
                    res.parts,
                    res.ran,
                    res.wall_seconds,
                )
                progress.step_finished(res)
                results.append(res)
    finally:
        if session:
            session.close()
        abort_uploads(storage)  # every worker has stopped: an upload still open was abandoned
    return results


def log_files(folder: str) -> list[str]:
    """The log files a job wrote in ``folder`` (loom.log, ray.log), for the summary."""
    return sorted(p.name for p in Path(folder).glob("*.log")) if folder else []


def train_outcome(storage: Storage, results: list[StepResult]) -> dict[str, Any]:
    """Where the training dataset is and what it holds, when the job made one."""
    train = next((r.stats.extra for r in results if r.name == TRAIN), None)
    if train is None:
        return {}
    note = f"{train['samples']:,} samples, {train['tokens']:,} tokens in {train['shards']} shards"
    return {"train": storage.uri(TRAIN_MANIFEST), "train_note": note}


def build_stats(
    spec: JobSpec, results: list[StepResult], rows: list[dict[str, Any]], seconds: float
) -> dict[str, Any]:
    """``stats.json``: per step rows in/out, drops by reason, time; totals of the shards."""
    steps = {}
    for res in results:
        s = res.stats.to_json()
        s["parts"] = res.parts
        s["ran"] = res.ran  # parts run by this run (the others were done before it)
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
