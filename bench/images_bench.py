"""Benchmark: images/s through Loom's acquisition stage vs img2dataset run alone, same URLs, same server.

    .venv/bin/python bench/images_bench.py [--quick] [--urls N] [--threads T] [--rounds R]

Images: the real photos of ``../shared/data/images/conceptual-captions-openimages`` and
``../shared/data/images/img2dataset-resize`` (25 JPEGs, 123-680 px a side), served by Loom's
``ImageServer`` on 127.0.0.1 in a process of its own (so that neither tool shares its GIL with the
server). N distinct URLs are made by adding a query string (``/x.jpg?i=17``): the server ignores it,
and distinct URLs defeat Loom's URL dedup, so both tools download the same N images.

Three figures, every tool with the same settings (T threads, ``image_size`` 1024,
``keep_ratio_largest``, only if bigger, jpg quality 95, timeout 10 s, no retries, sha256, no EXIF):

* ``img2dataset_images_s`` — ``img2dataset.download`` on a parquet of the URLs, one shard, one
  process, parquet output: what a user runs (it spawns its worker and logger processes);
  ``img2dataset_shard_images_s`` is the same runs timed by img2dataset's own shard stats (the
  download loop only, no process start-up): the stricter reference;
* ``loom_images_s`` — ``pipeline.images.fetch.fetch_urls``: img2dataset's ``Downloader`` behind Loom's
  request guard, the pixel pre-check and the status classification, the bytes kept in memory;
* ``loom_step_images_s`` — the images and image_table steps (``ImagesStep.run_part`` then
  ``ImageTableStep.run_part``) of a job on a pairs table of the URLs, its graph built as ``loom run``
  builds it (``jobs.run.plan_job``): the URLs read from the kept documents, bucketed, fetched, the
  fetch log written, the image table built. The steps the graph puts before them (``documents``,
  then ``filters`` when on) run first, untimed.

After one warm-up run each, the tools take turns for R rounds (the order flips every round) so that
machine noise hits all of them alike; each figure is the median over the rounds.
``overhead_pct`` = (img2dataset_images_s / loom_images_s - 1) * 100 (the issue's target: ≤ 15);
``overhead_vs_shard_pct`` is the same against ``img2dataset_shard_images_s``.
The last line printed is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages, not another's

from jobs.run import plan_job
from jobs.spec import JobSpec, parse_job
from pipeline.config import ImagesConfig
from pipeline.graph import Graph
from pipeline.images.fetch import fetch_urls
from pipeline.images.serve import ImageServer
from pipeline.images.table import IMAGE_TABLE, IMAGES
from pipeline.storage import Storage

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT.parent / "shared" / "data"
IMAGE_DIRS = ("conceptual-captions-openimages", "img2dataset-resize")
WARMUP_URLS = 100

log = logging.getLogger("bench.images")


@dataclass(frozen=True)
class Run:
    """One timed run of one tool."""

    seconds: float
    ok: int
    inner_seconds: float | None = None  # img2dataset: its own shard duration


# --------------------------------------------------------------------------------------------------
# Inputs: the images, a server in its own process, the URLs
# --------------------------------------------------------------------------------------------------


def image_files(images_dir: Path) -> list[str]:
    """The photos, as paths relative to ``images_dir`` (empty when the data is absent)."""
    files: list[str] = []
    for sub in IMAGE_DIRS:
        files += sorted(f"{sub}/{p.name}" for p in (images_dir / sub).glob("*.jpg"))
    return files


def _serve(root: str, conn: Connection) -> None:
    """Child process: serve ``root`` until the parent says stop (or goes away)."""
    logging.getLogger("pipeline.images.serve").setLevel(logging.WARNING)
    with ImageServer(Path(root)) as server:
        conn.send(server.url)
        with contextlib.suppress(EOFError):
            conn.recv()


@contextlib.contextmanager
def image_server(root: Path) -> Iterator[str]:
    """``ImageServer(root)`` on 127.0.0.1 in a process of its own; yields its base URL."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(str(root), child), daemon=True)
    proc.start()
    try:
        deadline = time.monotonic() + 60
        while not parent.poll(0.1):
            if not proc.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the image server did not start (exit code {proc.exitcode})")
        yield parent.recv()
    finally:
        with contextlib.suppress(OSError):
            parent.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.terminate()


def make_urls(base: str, files: list[str], n: int, start: int = 0) -> list[str]:
    """``n`` distinct URLs over ``files`` round-robin: ``{base}/{file}?i={k}``."""
    return [f"{base}/{files[k % len(files)]}?i={k}" for k in range(start, start + n)]


# --------------------------------------------------------------------------------------------------
# The tools
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send fd 1 to fd 2 (img2dataset and its child processes print to stdout): stdout keeps only
    the figures."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def run_img2dataset(urls: list[str], work: Path, threads: int) -> Run:
    """``img2dataset.download`` alone, one shard in one process, parquet output."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations would phone home on import
    import img2dataset

    defaults = ImagesConfig()
    url_list, out = work / "urls.parquet", work / "i2d-out"
    shutil.rmtree(out, ignore_errors=True)
    pq.write_table(pa.table({"url": pa.array(urls, pa.string())}), url_list)
    sigint = signal.getsignal(signal.SIGINT)  # download() installs its own handler
    start = time.perf_counter()
    with stdout_to_stderr():
        img2dataset.download(
            url_list=str(url_list),
            input_format="parquet",
            url_col="url",
            output_folder=str(out),
            output_format="parquet",  # Loom too keeps the bytes in memory and writes parquet
            processes_count=1,
            thread_count=threads,
            image_size=defaults.max_size,
            resize_mode=defaults.resize_mode,
            resize_only_if_bigger=defaults.resize_only_if_bigger,
            encode_format=defaults.format,
            encode_quality=defaults.quality,
            timeout=int(defaults.timeout),
            retries=defaults.retries,
            compute_hash="sha256",
            extract_exif=False,  # Loom does not extract EXIF: the same work on both sides
            number_sample_per_shard=len(urls),
            distributor="multiprocessing",
            enable_wandb=False,
            user_agent_token=defaults.user_agent_token,
            disallowed_header_directives=defaults.disallowed_header_directives,
            # a fresh folder each run; "overwrite" is broken in img2dataset 1.47.0: it creates
            # <output>/_tmp, then removes the whole output folder, _tmp included, and fails
            incremental_mode="incremental",
        )
    seconds = time.perf_counter() - start
    signal.signal(signal.SIGINT, sigint)
    stats = json.loads((out / "00000_stats.json").read_text())
    table = pq.read_table(out / "00000.parquet", columns=["status", "error_message"])
    ok = table["status"].to_pylist().count("success")
    if ok != stats["successes"]:
        log.warning("img2dataset: %d successes in its parquet, %d in its stats", ok, stats["successes"])
    _log_failures("img2dataset", table["status"].to_pylist(), table["error_message"].to_pylist())
    shutil.rmtree(out, ignore_errors=True)
    url_list.unlink()
    return Run(seconds, ok, stats["duration"])


def loom_config(threads: int, n: int) -> ImagesConfig:
    return ImagesConfig(
        allow_networks=["127.0.0.1/32"],
        threads=threads,
        max_size=1024,
        format="jpg",
        quality=95,
        timeout=10,
        urls_per_part=max(1, n),  # the step: one fetch part
    )


def run_loom_fetch(urls: list[str], work: Path, threads: int) -> Run:
    """Loom's acquisition: ``fetch_urls`` (img2dataset's Downloader behind the guard)."""
    cfg = loom_config(threads, len(urls))
    start = time.perf_counter()
    table, images = fetch_urls(urls, cfg)
    seconds = time.perf_counter() - start
    statuses = table["status"].to_pylist()
    ok = statuses.count("ok")
    if images.num_rows != ok:
        log.warning("loom: %d images for %d ok URLs", images.num_rows, ok)
    _log_failures("loom", statuses, table["error"].to_pylist(), ok_status="ok")
    return Run(seconds, ok)


def plan_after_documents(urls: list[str], work: Path, cfg: ImagesConfig) -> tuple[JobSpec, Storage, Graph]:
    """A pairs table of the URLs (one caption each), a job on it planned as ``loom run`` plans it
    (``jobs.run.plan_job``), and the steps its graph puts before the images step run as the job runs
    them: ``documents``, then ``filters`` when the spec has them on (the default)."""
    table = work / "pairs.parquet"
    captions = [f"A photograph of a scene, number {k}." for k in range(len(urls))]
    pq.write_table(pa.table({"url": urls, "caption": captions}), table)
    spec = parse_job(
        {
            "output": str(work / "loom-out"),
            "sources": [{"type": "pairs", "name": "pairs", "paths": [str(table)]}],
            "images": cfg.model_dump(mode="json"),
        }
    )
    storage, _, graph = plan_job(spec)
    for step in graph.steps[: [s.name for s in graph.steps].index(IMAGES)]:
        graph.start(storage, step)
        res = step.run(ray=None)
        graph.finish(storage, step)
        if res.stats.rows_out != len(urls):
            raise RuntimeError(f"step {step.name} kept {res.stats.rows_out} of {len(urls)} pairs")
    return spec, storage, graph


def run_loom_step(urls: list[str], work: Path, threads: int) -> Run:
    """The images and image_table steps of the job's graph, timed, after the steps before them
    (untimed): the kept documents read, their URLs bucketed, fetched, the fetch log written, the
    image table built."""
    spec, storage, graph = plan_after_documents(urls, work, loom_config(threads, len(urls)))
    assert spec.images.threads == threads
    step, table = graph[IMAGES], graph[IMAGE_TABLE]
    parts = step.parts()
    assert len(parts) == 1, f"{len(parts)} fetch parts, expected one"
    graph.start(storage, step)
    graph.start(storage, table)
    start = time.perf_counter()
    stats = step.run_part(parts[0])
    distinct = table.run_part(table.parts()[0]).extra["distinct_images"]
    seconds = time.perf_counter() - start
    if stats.drops:
        log.warning("loom step: failures %s", dict(stats.drops))
    log.debug("loom step: %d ok, %d distinct images", stats.rows_out, distinct)
    shutil.rmtree(spec.output, ignore_errors=True)
    (work / "pairs.parquet").unlink()
    return Run(seconds, stats.rows_out)


def _log_failures(tool: str, statuses: list, errors: list, ok_status: str = "success") -> None:
    failed = [(s, e) for s, e in zip(statuses, errors, strict=True) if s != ok_status]
    if failed:
        log.warning("%s: %d failures, e.g. %s", tool, len(failed), failed[:3])


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------

Tool = Callable[[list[str], Path, int], Run]
TOOLS: dict[str, Tool] = {"img2dataset": run_img2dataset, "loom": run_loom_fetch, "loom_step": run_loom_step}


def rounds(
    urls: list[str], warmup: list[str], work: Path, threads: int, n_rounds: int
) -> dict[str, list[Run]]:
    """One warm-up run per tool, then ``n_rounds`` rounds of every tool, the order flipped each round."""
    for name, tool in TOOLS.items():
        run = tool(warmup, work, threads)
        log.info("warm-up %-12s %5d URLs %6.2fs", name, len(warmup), run.seconds)
    runs: dict[str, list[Run]] = {name: [] for name in TOOLS}
    names = list(TOOLS)
    for r in range(n_rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            run = TOOLS[name](urls, work, threads)
            runs[name].append(run)
            inner = f" (shard {len(urls) / run.inner_seconds:6.1f}/s)" if run.inner_seconds else ""
            log.info(
                "round %d %-12s %5d/%d ok %6.2fs %7.1f images/s%s",
                r + 1,
                name,
                run.ok,
                len(urls),
                run.seconds,
                len(urls) / run.seconds,
                inner,
            )
    return runs


def figures(runs: dict[str, list[Run]], n: int, threads: int, n_rounds: int, mb: float) -> dict:
    def rate(seconds: list[float]) -> float:
        return n / statistics.median(seconds)

    i2d = rate([r.seconds for r in runs["img2dataset"]])
    i2d_shard = rate([r.inner_seconds or 0.0 for r in runs["img2dataset"]])
    loom = rate([r.seconds for r in runs["loom"]])
    step = rate([r.seconds for r in runs["loom_step"]])
    oks = {name: min(r.ok for r in rs) for name, rs in runs.items()}
    return {
        "bench": "images",
        "urls": n,
        "threads": threads,
        "rounds": n_rounds,
        "mb_served": round(mb, 1),
        "img2dataset_images_s": round(i2d, 1),
        "img2dataset_shard_images_s": round(i2d_shard, 1),
        "loom_images_s": round(loom, 1),
        "loom_step_images_s": round(step, 1),
        "overhead_pct": round((i2d / loom - 1) * 100, 1),
        "overhead_vs_shard_pct": round((i2d_shard / loom - 1) * 100, 1),
        "loom_ok": oks["loom"],
        "loom_step_ok": oks["loom_step"],
        "img2dataset_ok": oks["img2dataset"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="300 URLs, one round (under a minute)")
    ap.add_argument("--urls", type=int, default=None, help="URLs per run (default 2000, quick 300)")
    ap.add_argument("--threads", type=int, default=16, help="download threads, both tools")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds (default 3, quick 1)")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)

    images_dir = args.data_dir / "images"
    files = image_files(images_dir)
    if not files:
        print(
            f"no photos under {images_dir}/{{{','.join(IMAGE_DIRS)}}} (see ../shared/data/README.md)",
            file=sys.stderr,
        )
        print(json.dumps({"bench": "images", "skipped": "no test data"}))
        return 0
    n = args.urls or (300 if args.quick else 2000)
    n_rounds = args.rounds or (1 if args.quick else 3)
    sizes = {f: (images_dir / f).stat().st_size for f in files}
    mb = sum(sizes[files[k % len(files)]] for k in range(n)) / 1e6
    log.info(
        "%d photos; %d URLs (%.1f MB) per run, %d threads, %d rounds",
        len(files),
        n,
        mb,
        args.threads,
        n_rounds,
    )

    with image_server(images_dir) as base, tempfile.TemporaryDirectory(prefix="loom-bench-images-") as tmp:
        urls = make_urls(base, files, n)
        warmup = make_urls(base, files, min(n, WARMUP_URLS), start=n)
        runs = rounds(urls, warmup, Path(tmp), args.threads, n_rounds)

    result = figures(runs, n, args.threads, n_rounds, mb)
    bad = {k: v for k, v in result.items() if k.endswith("_ok") and v != n}
    if bad:
        log.error("not every URL succeeded: %s of %d", bad, n)
    print(json.dumps(result))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
