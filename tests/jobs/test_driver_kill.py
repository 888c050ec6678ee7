"""The driver killed by SIGKILL at part and step boundaries and in the middle of parts, then rerun:
the same shards, byte for byte, as a run never killed, and the last run ran only the parts that
had no completion marker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from jobs.run import run_job
from tests.jobs.test_run_ray import demo_spec

REPO = Path(__file__).resolve().parents[2]
DRIVER = """\
import sys
from jobs.run import run_job
from jobs.spec import JobSpec
run_job(JobSpec.model_validate_json(open(sys.argv[1]).read()), use_ray=False)
"""


def markers(out: Path) -> set[str]:
    work = out / "work"
    return {str(p.relative_to(out)) for p in work.glob("*/*.done")} if work.is_dir() else set()


def run_until(spec_file: Path, log: Path, out: Path, *, step: tuple[str, int] | None = None, mid: int = 0):
    """Start the driver and SIGKILL it at a step boundary (``step``: once that step's ``n`` parts
    have their marker) or inside a part (``mid``: as soon as ``mid`` parts have their marker: the
    driver runs parts back to back, so it is then inside the next one, before its marker and
    usually before its output); neither: let it finish. Returns its exit code (None: killed)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(log, "ab") as err:
        driver = subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(spec_file)], env=env, stdout=subprocess.DEVNULL, stderr=err
        )
        while driver.poll() is None:
            if step is not None:
                due = len(list((out / "work" / step[0]).glob("*.done"))) >= step[1]
            else:
                due = mid > 0 and len(markers(out)) >= mid
            if due:
                driver.send_signal(signal.SIGKILL)
                driver.wait(30)
                return None
            time.sleep(0.005)  # polling the output folder, not a timing assertion
    return driver.returncode


def test_killing_the_driver_at_boundaries_and_mid_part_then_rerunning_gives_the_same_shards(tmp_path):
    reference = Path(run_job(demo_spec(tmp_path / "ref", "out"), use_ray=False).output)
    spec = demo_spec(tmp_path / "killed", "out")
    out = Path(spec.output)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(spec.model_dump_json())

    total = len(markers(reference))
    ref_steps = json.loads((reference / "stats.json").read_text())["steps"]
    log = tmp_path / "driver.log"
    points: list[tuple[int, dict]] = [(total // 4, dict(mid=total // 4)), (total // 2, dict(mid=total // 2))]
    reached = 0
    for name in list(ref_steps)[:-1]:  # the end of every step but the last
        parts = len(list((reference / "work" / name).glob("*.done")))
        reached += parts
        if parts:  # dedup_components keeps its markers per round, in subfolders
            points.append((reached, dict(step=(name, parts))))
    points.sort(key=lambda p: p[0])  # in the order the job reaches them
    for _, kill in points:
        code = run_until(spec_file, log, out, **kill)
        assert code is None, f"the job ended ({code}) before the kill {kill}: {log.read_text()[-2000:]}"
    assert len(points) >= 10  # two mid-part kills and one per step boundary
    done_before = markers(out)
    code = run_until(spec_file, log, out)
    assert code == 0, log.read_text()[-4000:]

    for manifest in ("manifest.parquet", "train/manifest.parquet"):  # sha256 of every shard
        assert pq.read_table(out / manifest) == pq.read_table(reference / manifest), manifest
    steps = json.loads((out / "stats.json").read_text())["steps"]
    for name, step in steps.items():  # the last run ran exactly the parts without a marker
        if name == "dedup_components":
            continue  # its markers are per round (work/dedup_components/r000-large/…), not per part
        done = sum(m.startswith(f"work/{name}/") for m in done_before)
        assert step["ran"] == step["parts"] - done, (name, step["ran"], step["parts"], done)
