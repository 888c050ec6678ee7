"""The demo job on a local Ray instance: the same shards as in-process, resumable, valid."""

import json
from pathlib import Path

import pyarrow.parquet as pq

from jobs.demo import DOCUMENT_KINDS, build_demo_corpus, demo_filters, demo_plan
from jobs.run import run_job
from jobs.spec import load_job
from pipeline.storage import Storage
from shards.validate import validate_output

REPO = Path(__file__).resolve().parents[2]


def demo_spec(tmp_path, name: str):
    """The demo job on three demo WARCs (three parts, so both local workers get work)."""
    warcs = [str(build_demo_corpus(tmp_path / f"input-{seed}", pages=40, seed=seed)) for seed in range(3)]
    spec = load_job(REPO / "jobs" / "demo.toml", output=str(tmp_path / name))
    return spec.model_copy(
        update={
            "sources": [spec.sources[0].model_copy(update={"paths": warcs})],
            "filters": demo_filters(spec.filters, tmp_path / "filters"),
            "clip": spec.clip.model_copy(update={"enabled": False}),  # the WARCs' images are not fetched
            # no pair source: the mixture of the two kinds the WARCs make
            "mix": spec.mix.model_copy(
                update={"weights": {"interleaved": 0.6, "text": 0.4}, "max_epochs": 1.0}
            ),
        }
    )


def test_the_demo_job_on_local_ray_matches_an_in_process_run(local_ray, tmp_path, caplog):
    on_ray = demo_spec(tmp_path, "ray")
    outcome = run_job(on_ray, use_ray=True)
    plans = [demo_plan(pages=40, seed=seed) for seed in range(3)]
    expected = sum(n for plan in plans for kind, n in plan.kind_counts().items() if kind in DOCUMENT_KINDS)
    steps = json.loads((tmp_path / "ray/stats.json").read_text())["steps"]
    removed = steps["dedup"]["drops"]
    assert removed.get("exact_text", 0) + removed.get("exact_url", 0) >= 3  # one exact copy per corpus
    filtered = sum(steps["filters"]["drops"].values())
    assert filtered >= 3 * 3  # each corpus plants a German, a boilerplate and a spam page
    assert outcome.samples == expected - filtered - sum(removed.values())
    assert validate_output(Storage(outcome.output)).ok

    local = run_job(demo_spec(tmp_path, "local"), use_ray=False)
    assert pq.read_table(f"{outcome.output}/manifest.parquet") == pq.read_table(
        f"{local.output}/manifest.parquet"
    )
    # the training dataset too: the shuffle's two passes on Ray workers give the same shards
    assert pq.read_table(f"{outcome.output}/train/manifest.parquet") == pq.read_table(
        f"{local.output}/train/manifest.parquet"
    )

    caplog.set_level("INFO")
    rerun = run_job(on_ray, use_ray=True)  # everything is done: nothing runs again
    assert (
        "step documents: 3 parts, 0 to run" in caplog.text and "step shards: 3 parts, 0 to run" in caplog.text
    )
    stats = json.loads((tmp_path / "ray/stats.json").read_text())
    assert rerun.samples == outcome.samples and stats["steps"]["documents"]["parts"] == 3
