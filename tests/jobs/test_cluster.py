"""The demo job on a Ray cluster of two nodes (a head and a second raylet on 127.0.0.1, token
authentication on), and with its Ray workers killed by PID while it runs: the same shards as an
in-process run, parts on both nodes, nothing lost or repeated."""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jobs.run import run_job
from tests.jobs.test_run_ray import demo_spec

REPO = Path(__file__).resolve().parents[2]
JOB_TIMEOUT_S = 600

DRIVER = """\
import sys
from jobs.run import run_job
from jobs.spec import JobSpec
spec = JobSpec.model_validate_json(open(sys.argv[1]).read())
outcome = run_job(spec, address=sys.argv[2])
print("samples", outcome.samples)
"""


CLUSTER = """\
import json, sys
from ray.cluster_utils import Cluster
node = {"num_cpus": 1, "node_ip_address": "127.0.0.1"}
cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
cluster.add_node(**node)
found = {"address": cluster.address, "session": cluster.head_node.get_session_dir_path()}
print(json.dumps(found), flush=True)
sys.stdin.read()  # until the test closes it (or dies)
cluster.shutdown()
"""


class TwoNodes:
    """A Ray cluster of a head and one more raylet, 1 CPU each, on 127.0.0.1 with token auth: Ray's
    own ``ray.cluster_utils.Cluster``, run by a process of its own (Ray reads its auth mode once per
    process, so this one's environment decides it)."""

    def __init__(self, tmp: Path):
        self.token_path = tmp / "auth_token"
        self.token_path.write_text(secrets.token_hex(32))
        self.token_path.chmod(0o600)
        self.env = {
            **os.environ,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.token_path),
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # bind and talk on loopback only
            "RAY_USAGE_STATS_ENABLED": "0",
            "PYTHONPATH": str(REPO),
        }
        self.env.pop("RAY_ADDRESS", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CLUSTER], cwd=tmp, env=self.env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self.proc.stdout.readline()  # bounded: Cluster raises when a node does not come up
        if not line:
            raise RuntimeError(f"the cluster did not start (exit {self.proc.wait(60)})")
        found = json.loads(line)
        self.address, self.session = found["address"], found["session"]

    def run(self, spec, tmp: Path) -> subprocess.CompletedProcess:
        """The job, driven by a process of its own (``run_job(spec, address=…)``), with the token."""
        spec_file = tmp / f"{Path(spec.output).name}.json"
        spec_file.write_text(spec.model_dump_json())
        log = open(tmp / f"{Path(spec.output).name}.log", "w")  # a file: a pipe left unread would block
        driver = subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(spec_file), self.address],
            cwd=tmp,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        driver.log_path = Path(log.name)  # type: ignore[attr-defined]
        log.close()
        return driver

    def workers(self) -> list[int]:
        """PIDs of this cluster's Ray Data workers that run parts (children of its raylets)."""
        raylets = {p for p in _pids() if "raylet" in _cmdline(p) and self.session in _cmdline(p)}
        return [p for p in _pids() if _parent(p) in raylets and "MapWorker" in _cmdline(p)]

    def shutdown(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory) -> Iterator[TwoNodes]:
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc to find Ray's processes")
    cluster = TwoNodes(tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def in_process(tmp_path_factory) -> Path:
    """The same job run in this process, no Ray: the reference."""
    tmp = tmp_path_factory.mktemp("reference")
    return Path(run_job(demo_spec(tmp, "local"), use_ray=False).output)


def finish(driver: subprocess.Popen) -> str:
    driver.wait(timeout=JOB_TIMEOUT_S)
    log = driver.log_path.read_text(errors="replace")
    assert driver.returncode == 0, log[-4000:]
    return log


def same_result(out: Path, reference: Path) -> None:
    for manifest in ("manifest.parquet", "train/manifest.parquet"):
        assert pq.read_table(out / manifest) == pq.read_table(reference / manifest), manifest
    steps = json.loads((out / "stats.json").read_text())["steps"]
    expected = json.loads((reference / "stats.json").read_text())["steps"]
    for name, step in expected.items():  # 0 lost, 0 duplicated: every count of every step
        for key in ("rows_in", "rows_out", "drops", "skipped", "parts"):
            assert steps[name][key] == step[key], (name, key)


def test_the_demo_job_on_two_nodes_runs_parts_on_both_and_matches_an_in_process_run(
    two_nodes, in_process, tmp_path
):
    driver = two_nodes.run(demo_spec(tmp_path, "two-nodes"), tmp_path)
    finish(driver)
    out = tmp_path / "two-nodes"
    same_result(out, in_process)
    steps = json.loads((out / "stats.json").read_text())["steps"]
    nodes = {node for step in steps.values() for node in step.get("nodes", {})}
    assert len(nodes) == 2 and "local" not in nodes, nodes  # parts ran on both nodes


def test_killing_ray_workers_five_times_loses_and_repeats_nothing(two_nodes, in_process, tmp_path):
    driver = two_nodes.run(demo_spec(tmp_path, "killed"), tmp_path)
    rng, killed, stop = random.Random(7), [], threading.Event()

    def killer() -> None:
        while len(killed) < 5 and not stop.wait(rng.uniform(0.5, 3.0)):
            if workers := two_nodes.workers():
                pid = rng.choice(workers)
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        finish(driver)
    finally:
        stop.set()
        thread.join(10)
    assert len(killed) == 5, f"only {len(killed)} workers were killed before the job ended"
    same_result(tmp_path / "killed", in_process)


def test_a_worker_that_keeps_dying_fails_the_step_in_one_line(two_nodes, tmp_path):
    spec = demo_spec(tmp_path, "fails")
    spec = spec.model_copy(update={"run": spec.run.model_copy(update={"worker_restarts": 0})})
    driver = two_nodes.run(spec, tmp_path)
    while driver.poll() is None:  # kill the first worker that runs a part, and every one after it
        for pid in two_nodes.workers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        threading.Event().wait(0.05)
    log = driver.log_path.read_text(errors="replace")
    assert driver.returncode != 0
    failure = next(line for line in log.splitlines() if line.startswith("pipeline.runner.StepFailed"))
    assert "Ray failed (" in failure and "run.worker_restarts" in failure
