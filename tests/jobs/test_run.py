"""The whole job on real WARC files: documents, shards, stats, resume, reproducibility."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import webdataset as wds

from jobs.cli import main
from jobs.run import run_job
from jobs.spec import parse_job
from pipeline.config import JobSpecError
from pipeline.storage import Storage
from shards.validate import validate_output


def spec_for(out: Path, *paths: Path, **extra):
    """A job on real crawl files; their image URLs point at the internet, so images are not fetched."""
    return parse_job(
        {
            "name": "test",
            "output": str(out),
            "sources": [{"paths": [str(p) for p in paths]}],
            "images": {"fetch": False},
            **extra,
        }
    )


def manifest(out: Path) -> list[dict]:
    return pq.read_table(out / "manifest.parquet").to_pylist()


def samples(out: Path) -> list[dict]:
    urls = sorted(str(p) for p in (out / "shards").glob("*.tar"))
    return [json.loads(s["json"]) for s in wds.WebDataset(urls, shardshuffle=False)]


@pytest.fixture(scope="module")
def cc_job(shared_data, tmp_path_factory):
    """The CC excerpt and the dolma capture, run once without Ray; without the filters, which would
    drop most of these short, spammy pages (tests/filters/test_step.py runs them)."""
    out = tmp_path_factory.mktemp("cc") / "out"
    spec = spec_for(
        out,
        shared_data / "warc/resiliparse/warcfile.warc.gz",
        shared_data / "warc/dolma/sample-0000.warc.gz",
        shards={"max_samples": 8},
        filters={"enabled": False},
    )
    outcome = run_job(spec, use_ray=False)
    return spec, out, outcome


def test_real_pages_become_documents_with_images_in_order(cc_job):
    _, out, outcome = cc_job
    stats = json.loads((out / "stats.json").read_text())
    docs = stats["steps"]["documents"]
    assert docs["rows_in"] == 16 + 22  # HTML responses of the two files
    assert docs["rows_out"] + sum(docs["drops"].values()) == docs["rows_in"]
    # two live-radsport.ch pages of the dolma capture have the same main text: one goes
    assert stats["steps"]["dedup"]["drops"] == {"exact_text": 1}
    assert docs["rows_out"] - 1 == outcome.samples == sum(r["samples"] for r in manifest(out))
    got = samples(out)
    kinds = {d["kind"] for d in got}
    assert kinds == {"text", "interleaved"}
    for d in got:
        assert all((t is None) != (i is None) for t, i in zip(d["texts"], d["images"], strict=True))
        assert all(i["url"].startswith("http") for i in d["images"] if i)
        assert d["meta"]["warc_path"] in ("warcfile.warc.gz", "sample-0000.warc.gz")


def test_validate_passes_and_catches_a_changed_shard(cc_job, tmp_path):
    _, out, _ = cc_job
    assert validate_output(Storage(str(out))).ok
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    shard = sorted((copy / "shards").glob("*.tar"))[0]
    shard.write_bytes(shard.read_bytes()[:-1024])
    report = validate_output(Storage(str(copy)))
    assert not report.ok and any("sha256" in p for p in report.problems)


def test_the_same_input_gives_byte_identical_shards(cc_job, tmp_path):
    spec, out, _ = cc_job
    run_job(spec.model_copy(update={"output": str(tmp_path / "again")}), use_ray=False)
    assert manifest(tmp_path / "again") == manifest(out)


def test_a_rerun_skips_finished_parts_and_a_killed_part_reruns(cc_job, tmp_path, caplog):
    spec, out, _ = cc_job
    copy = tmp_path / "resumed"
    shutil.copytree(out, copy)
    spec = spec.model_copy(update={"output": str(copy)})
    caplog.set_level("INFO")
    run_job(spec, use_ray=False)
    assert "step documents: 2 parts, 0 to run" in caplog.text
    # a job killed in the middle of part cc-00001: its outputs are partial, its marker missing
    (copy / "work/documents/cc-00001.done").unlink()
    (copy / "work/shards/cc-00001.done").unlink()
    for shard in (copy / "shards").glob("cc-00001-*.tar"):
        shard.write_bytes(b"partial")
    caplog.clear()
    run_job(spec, use_ray=False)
    assert "step documents: 2 parts, 1 to run" in caplog.text
    assert manifest(copy) == manifest(out)
    assert validate_output(Storage(str(copy))).ok


def test_an_output_of_other_inputs_is_refused_naming_what_would_rerun(cc_job):
    spec, out, _ = cc_job
    fewer = spec.sources[0].model_copy(update={"paths": spec.sources[0].paths[:1]})
    other = spec.model_copy(update={"sources": [fewer]})
    with pytest.raises(JobSpecError, match=r"inputs changed .*2 files then, 1 now.*every step would rerun"):
        run_job(other, use_ray=False)


def test_a_folder_that_is_not_a_loom_output_is_refused(tmp_path, cc_job):
    spec, _, _ = cc_job
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(JobSpecError, match="not empty and not a Loom output"):
        run_job(spec.model_copy(update={"output": str(tmp_path)}), use_ray=False)


def test_every_warc_edge_case_runs_through_loom_run_with_reasons(shared_data, tmp_path, local_ray, capsys):
    warc = shared_data / "warc"
    dirs = ("warcio", "pywb", "resiliparse")
    files = [p for d in dirs for p in sorted((warc / d).iterdir()) if p.name not in ("LICENSE", "iana.cdxj")]
    job = tmp_path / "edge.toml"
    job.write_text(
        f'name = "edge"\noutput = "out"\n[images]\nfetch = false\n'
        f"[[sources]]\npaths = {json.dumps([str(p) for p in files])}\n"
    )
    assert main(["run", str(job)]) == 0
    assert "done: " in capsys.readouterr().out
    stats = json.loads((tmp_path / "out/stats.json").read_text())["steps"]["documents"]
    assert stats["parts"] == len(files) == 20
    assert stats["drops"] == {"http_status": 9, "not_html": 32, "truncated_record": 1}
    assert stats["skipped"]["corrupt_archive"] == 1  # example-trunc.warc: the cut-off record
    assert stats["skipped"]["record_revisit"] == 138
    # 5 revisits become copies of a page of their file (pywb example, example-bad, dupes; warcio
    # example, example-bad-non-chunked); 131 have no HTML original in their file; 2 carry no HTTP
    assert stats["skipped"]["revisit_unresolved"] == 131
    assert stats["skipped"]["revisit_not_http"] == 2  # pywb/example-extra.warc: Content-Length 0
    assert stats["extra"]["revisit_copies"] == 5
    assert stats["rows_out"] == 45 + 5
    assert main(["validate", str(tmp_path / "out")]) == 0


def test_a_rerun_on_changed_inputs_is_refused(shared_data, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(shared_data / "warc/warcio/example.warc.gz", inputs)
    spec = spec_for(tmp_path / "out", inputs / "*.warc.gz")
    run_job(spec, use_ray=False)
    shutil.copy(shared_data / "warc/warcio/example.arc.gz", inputs / "more.warc.gz")
    with pytest.raises(
        JobSpecError, match=r"the inputs changed since this output was started \(1 files then, 2 now\)"
    ):
        run_job(spec, use_ray=False)


def test_loom_run_reports_a_bad_spec_in_one_line(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text('output = "o"\n[[sources]]\npaths = ["x"]\nbogus = 1\n')
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "run", str(spec)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"loom: error: {spec}: sources.0.bogus: unknown key"]


def test_a_budget_past_max_epochs_stops_at_the_mix_step_in_one_line(cc_job, tmp_path, capsys):
    spec, out, _ = cc_job
    data = spec.model_dump(mode="json")
    data["mix"] = {"weights": {"text": 0.5, "interleaved": 0.5}, "tokens": 10**9}
    path = tmp_path / "mix.json"
    path.write_text(json.dumps(data))
    shutil.copytree(out, tmp_path / "out")
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the log lines of the steps that ran
    assert err.startswith(
        "loom: error: mix.tokens: 1,000,000,000 tokens at a share of 0.5 need 500,000,000 tokens"
    )
    assert "mix.max_epochs allows 1" in err
    # the steps before it are kept: with a budget the data can give, the rerun starts at mix
    data["mix"]["tokens"] = None
    path.write_text(json.dumps(data))
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 0
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert {n for n in stats["step_order"] if stats["steps"][n]["ran"]} == {"mix", "shuffle", "train"}
    assert validate_output(Storage(str(tmp_path / "out"))).ok
