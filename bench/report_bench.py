"""Benchmark: ``loom report``'s build time and page size, on the demo's output and on a large generated one.

    .venv/bin/python bench/report_bench.py [--quick] [--documents N]

Two outputs, each made first (not timed): the demo (``jobs.demo.demo_job``, 40 pages, every step,
in-process) and a text-only job over ``--documents`` generated pages (``synthetic_web.py``: 100,000;
``--quick`` 2,000) with the filters and dedup of ``pipeline_bench.py``. For each, ``build_report`` is
timed in a fresh spawned process (its imports included: what ``loom report`` costs), with the HTML
size, the number of score plots and sample documents.

The peer, "a plain script": pandas reading the same columns (tokens per document by kind, each
filter score of the kept and the dropped documents) and numpy binning them, as a data engineer
would write it, without plots (matplotlib is not installed here; the plotting side is Bokeh's
fixed ~1.3 MB runtime plus a few KB per plot). ``ratio_collect_vs_pandas`` is the pandas script's
time over the report's data collection (``report.collect.collect``) on the same output.

The page must stay small whatever the size of the output: ``html_growth`` is the generated
output's page size over the demo's (bins, not points: close to 1).

The last line printed is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from childproc import in_child  # noqa: E402

log = logging.getLogger("bench.report")


def make_demo(out: Path) -> dict[str, Any]:
    from jobs.demo import demo_job
    from jobs.run import run_job
    from tests.ports import free_port

    with demo_job(out, pages=40, image_port=free_port()) as spec:
        run_job(spec, use_ray=False)
    return {"root": str(out / "result")}


def make_generated(out: Path, documents: int) -> dict[str, Any]:
    from pipeline_bench import loom_spec, train_bench_tokenizer
    from synthetic_web import write_generated_warcs

    from jobs.run import run_job

    files = write_generated_warcs(documents, 2, out / "input")
    tokenizer = train_bench_tokenizer(files[:1], out, 8000)
    run_job(loom_spec(files, out / "result", tokenizer), use_ray=False)
    shutil.rmtree(out / "input")
    return {"root": str(out / "result")}


def time_report(root: str) -> dict[str, Any]:
    """``build_report`` in this (fresh) process, imports included; then ``collect`` alone."""
    t0 = time.perf_counter()
    from pipeline.storage import Storage
    from report import build_report
    from report.collect import collect

    result = build_report(Storage(root))
    total = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = collect(Storage(root))
    collect_s = time.perf_counter() - t0
    return {
        "build_s": round(total, 2),
        "collect_s": round(collect_s, 3),
        "html_kb": round(result.bytes / 1024, 1),
        "score_plots": result.scores,
        "samples": result.samples,
        "documents": data.totals.get("documents", 0),
        "missing": list(result.missing),
    }


def pandas_script(root: str) -> dict[str, Any]:
    """The same figures' data with pandas and numpy: token lengths by kind, and every filter score of
    the kept and the dropped documents, in 40 bins each."""
    import glob

    import numpy as np
    import pandas as pd

    t0 = time.perf_counter()
    work = Path(root) / "work"
    docs = [f for f in glob.glob(str(work / "tokens" / "*.parquet")) if not f.endswith(".ledger.parquet")]
    tokens = pd.concat([pd.read_parquet(f, columns=["kind", "tokens"]) for f in docs])
    tokens["length"] = tokens["tokens"].map(len)
    bins = {k: np.histogram(g["length"], bins=40)[0] for k, g in tokens.groupby("kind")}
    kept = [f for f in glob.glob(str(work / "filters" / "*.parquet")) if not f.endswith((".ledger.parquet",
            ".blocks.parquet"))]  # fmt: skip
    scores = pd.DataFrame([m["scores"] for f in kept for m in pd.read_parquet(f, columns=["meta"])["meta"]])
    ledgers = glob.glob(str(work / "filters" / "*.ledger.parquet"))
    dropped = pd.DataFrame([s for f in ledgers for s in pd.read_parquet(f)["scores"] if s is not None])
    every = pd.concat([f for f in (scores, dropped) if len(f)])
    for column in every.columns:
        values = every[column].dropna()
        if len(values):
            bins[column] = np.histogram(values, bins=40)[0]
    return {"seconds": round(time.perf_counter() - t0, 3), "figures": len(bins)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="2,000 generated pages (under a minute)")
    ap.add_argument("--documents", type=int, default=None, help="generated pages (100000; quick 2000)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    documents = args.documents or (2_000 if args.quick else 100_000)
    result: dict[str, Any] = {"bench": "report", "quick": args.quick, "generated_pages": documents}
    tmp = Path(tempfile.mkdtemp(prefix="report-bench-"))
    try:
        outputs = {}
        for name, fn, fn_args in (
            ("demo", make_demo, (tmp / "demo",)),
            ("generated", make_generated, (tmp / "generated", documents)),
        ):
            t0 = time.perf_counter()
            made = in_child(fn, *fn_args)
            if "error" in made:
                raise SystemExit(f"report_bench: making the {name} output failed: {made['error']}")
            log.info("%s output made in %.1fs", name, time.perf_counter() - t0)
            outputs[name] = made["root"]
        for name, root in outputs.items():
            timed = in_child(time_report, root)
            if "error" in timed:
                raise SystemExit(f"report_bench: the {name} report failed: {timed['error']}")
            peer = in_child(pandas_script, root)
            timed["pandas_s"] = peer.get("seconds")
            timed["ratio_collect_vs_pandas"] = (
                round(peer["seconds"] / timed["collect_s"], 2)
                if "seconds" in peer and timed["collect_s"]
                else None
            )
            result[name] = timed
            log.info("%s: %s", name, timed)
        result["html_growth"] = round(result["generated"]["html_kb"] / result["demo"]["html_kb"], 2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
