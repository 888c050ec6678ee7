"""``loom plan`` and per-step fingerprints: a changed setting reruns exactly its step and what reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.cli import main
from jobs.demo import demo_job
from jobs.run import run_job
from jobs.spec import load_job
from tests.ports import free_port

#: The default job's steps, in run order.
DEMO_STEPS = [
    "documents",
    "filters",
    "images",
    "image_table",
    "clip",
    "join",
    "clip_filters",
    "dedup_keys",
    "dedup_buckets",
    "dedup_components",
    "dedup",
    "tokenizer",
    "tokens",
    "shards",
    "mix",
    "shuffle",
    "train",
]
MIX_STEPS = ["mix", "shuffle", "train"]
DEDUP_AND_AFTER = DEMO_STEPS[DEMO_STEPS.index("dedup_keys") :]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The demo job run once (in this process), and its spec in JSON form beside it."""
    out = tmp_path_factory.mktemp("plan") / "demo"
    with demo_job(out, image_port=free_port()) as spec:
        run_job(spec, use_ray=False)
    spec_file = out / "spec.json"
    spec_file.write_text(json.dumps(spec.model_dump(mode="json")))
    return spec_file


def plan(capsys, spec: Path) -> dict:
    assert main(["plan", str(spec), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def changed(spec: Path, name: str, section: str, key: str, value) -> Path:
    """A copy of the spec the output last ran with (its ``job.json``), with one setting changed."""
    data = json.loads((spec.parent / "result" / "job.json").read_text())["spec"]
    data[section][key] = value
    copy = spec.with_name(name)
    copy.write_text(json.dumps(data))
    return copy


def test_the_plan_lists_the_default_graph_with_every_part_done(demo, capsys):
    got = plan(capsys, demo)
    assert [s["step"] for s in got["steps"]] == DEMO_STEPS
    assert all(s["state"] == "done" and s["done"] == s["parts"] for s in got["steps"]), got["steps"]
    assert got["rerun"] == [] and got["refused"] is None
    by_name = {s["step"]: s for s in got["steps"]}
    # inputs are named outputs of earlier steps: dedup reads clip_filters' documents, shards the tokens
    assert by_name["dedup_keys"]["inputs"] == {"documents": "clip_filters.documents"}
    assert by_name["shards"]["inputs"]["documents"] == "tokens.documents"
    assert main(["plan", str(demo)]) == 0
    assert "every step is done" in capsys.readouterr().out


def test_the_demo_mixture_holds_its_weights_and_its_subsets_are_nested(demo):
    stats = json.loads((demo.parent / "result" / "stats.json").read_text())
    mix = stats["steps"]["mix"]["extra"]["mix"]
    for component in mix["components"].values():
        assert abs(component["delivered_share"] - component["requested_share"]) <= 0.005, mix
    assert mix["components"]["pair"]["epochs"] == 4.0  # the short captions repeat, up to max_epochs
    train = stats["steps"]["train"]["extra"]
    assert train["tokens"] == mix["tokens"] and train["repeats"] > 0
    subsets = json.loads((demo.parent / "result" / "train" / "subsets.json").read_text())["subsets"]
    assert [s["fraction"] for s in subsets] == [0.25, 0.5]
    assert subsets[0]["samples"] < subsets[1]["samples"] < train["samples"]


def test_a_changed_setting_reruns_exactly_its_step_and_the_steps_after_it(demo, capsys):
    spec = changed(demo, "dedup.json", "dedup", "threshold", 0.8)
    got = plan(capsys, spec)
    assert got["rerun"] == DEDUP_AND_AFTER
    reasons = {s["step"]: s["reason"] for s in got["steps"] if s["state"] == "stale"}
    assert reasons["dedup_keys"] == "settings changed"
    assert reasons["shards"] == "reads tokens, which reruns"

    before = {p.name: p.stat().st_mtime_ns for p in (demo.parent / "result" / "work" / "filters").iterdir()}
    outcome = run_job(load_job(spec), use_ray=False)
    stats = json.loads(Path(outcome.stats).read_text())
    ran = {name: stats["steps"][name]["ran"] for name in stats["step_order"]}
    assert {n for n, count in ran.items() if count} == set(DEDUP_AND_AFTER), ran
    after = {p.name: p.stat().st_mtime_ns for p in (demo.parent / "result" / "work" / "filters").iterdir()}
    assert after == before  # upstream outputs untouched
    assert plan(capsys, spec)["rerun"] == []


def test_a_setting_of_a_late_step_leaves_everything_before_it(demo, capsys):
    spec = changed(demo, "shards.json", "shards", "max_samples", 20)
    assert plan(capsys, spec)["rerun"] == ["shards"]


def test_a_new_mixture_recipe_reruns_only_the_mix_steps(demo, capsys):
    weights = {"interleaved": 0.55, "text": 0.4, "pair": 0.05}
    spec = changed(demo, "mix.json", "mix", "weights", weights)
    assert plan(capsys, spec)["rerun"] == MIX_STEPS
    outcome = run_job(load_job(spec), use_ray=False)
    stats = json.loads(Path(outcome.stats).read_text())
    ran = {name for name in stats["step_order"] if stats["steps"][name]["ran"]}
    assert ran == set(MIX_STEPS)
    delivered = stats["steps"]["mix"]["extra"]["mix"]["components"]
    assert {k: round(v["requested_share"], 2) for k, v in delivered.items()} == weights
    for component in delivered.values():
        assert abs(component["delivered_share"] - component["requested_share"]) <= 0.005
    # only the subsets changed: the train step alone reruns
    assert plan(capsys, changed(demo, "subsets.json", "mix", "subsets", [0.1, 0.5]))["rerun"] == ["train"]


def test_other_inputs_are_refused_naming_the_steps_that_would_rerun(demo, tmp_path, capsys):
    data = json.loads(demo.read_text())
    warc = Path(data["sources"][0]["paths"][0])
    copy = tmp_path / "other.warc.gz"
    copy.write_bytes(warc.read_bytes()[: warc.stat().st_size // 2])
    data["sources"][0]["paths"] = [str(copy)]
    spec = tmp_path / "other.json"
    spec.write_text(json.dumps(data))
    refused = plan(capsys, spec)["refused"]
    assert "the inputs changed" in refused and "every step would rerun (documents, filters" in refused
    assert main(["run", str(spec)]) == 2
    assert "choose a new output" in capsys.readouterr().err


def test_a_bad_spec_is_one_line_and_exit_2(tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text('output = "o"\n[[sources]]\npaths = ["x"]\n[shards]\nmax_sample = 3\n')
    assert main(["plan", str(spec)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("shards.max_sample: unknown key") and "\n" not in err


def test_missing_inputs_still_show_the_graph_then_one_line_and_exit_2(tmp_path, capsys):
    spec = tmp_path / "demo.toml"
    spec.write_text((Path(__file__).resolve().parents[2] / "jobs" / "demo.toml").read_text())
    assert main(["plan", str(spec)]) == 2
    out, err = capsys.readouterr()
    assert [line.split()[1] for line in out.splitlines()[2:]] == DEMO_STEPS
    assert err.strip().startswith("loom: error: sources.0.paths: no file matches")
