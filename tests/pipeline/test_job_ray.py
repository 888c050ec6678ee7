"""The demo job on a local Ray instance: the same shards as in-process, resumable, valid."""

import json
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.config import load_job
from pipeline.demo import DOCUMENT_KINDS, build_demo_corpus, demo_plan
from pipeline.job import run_job
from pipeline.storage import Storage
from shards.validate import validate_output

REPO = Path(__file__).resolve().parents[2]


def demo_spec(tmp_path, name: str):
    warc = build_demo_corpus(tmp_path / "input", pages=60)
    spec = load_job(REPO / "jobs" / "demo.toml", output=str(tmp_path / name))
    return spec.model_copy(update={"sources": [spec.sources[0].model_copy(update={"paths": [str(warc)]})]})


def test_the_demo_job_on_local_ray_matches_an_in_process_run(local_ray, tmp_path):
    on_ray = demo_spec(tmp_path, "ray")
    outcome = run_job(on_ray, use_ray=True)
    plan = demo_plan(pages=60)
    assert outcome.samples == sum(n for kind, n in plan.kind_counts().items() if kind in DOCUMENT_KINDS)
    assert validate_output(Storage(outcome.output)).ok

    local = run_job(demo_spec(tmp_path, "local"), use_ray=False)
    assert pq.read_table(f"{outcome.output}/manifest.parquet") == pq.read_table(
        f"{local.output}/manifest.parquet"
    )

    rerun = run_job(on_ray, use_ray=True)  # everything is done: nothing runs again
    stats = json.loads((tmp_path / "ray/stats.json").read_text())
    assert rerun.samples == outcome.samples and stats["steps"]["documents"]["parts"] == 1
