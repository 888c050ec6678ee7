"""Ray clusters of our own for the tests: a token-authenticated head, and more nodes beside it.

Every process binds 127.0.0.1 and runs under its own ``--temp-dir``, so a local ``ray.init()`` of
other tests neither finds nor collides with it. Teardown stops only these processes (SIGTERM to
each ``ray start --block``, then a sweep of processes whose command line or cwd lies under the
temp dir) — never ``ray stop``, which would kill every Ray on the machine.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

HEAD_START_TIMEOUT_S = 120.0
LOOPBACK = "127.1"  # 127.0.0.1, spelled so that Ray does not replace it (see add_node)


@dataclass
class RayHead:
    """A running single-node Ray cluster; ``address`` is its dashboard (Jobs API)."""

    address: str
    token: str
    token_path: Path
    temp_dir: Path
    proc: subprocess.Popen
    log_path: Path
    gcs: str = ""  # host:port that ``ray.init(address=…)`` and other nodes join
    nodes: list[subprocess.Popen] = field(default_factory=list)  # nodes added beside the head

    def log_tail(self, n: int = 40) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        return "\n".join(lines[-n:])


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 right now."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def ray_executable() -> str:
    exe = Path(sys.executable).parent / "ray"
    return str(exe) if exe.exists() else (shutil.which("ray") or pytest.skip("no `ray` executable"))


def head_env(token_path: Path) -> dict[str, str]:
    """The environment of ``ray start``: token auth on, loopback only, this venv's python first."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN_PATH=str(token_path),
        # On Linux Ray swaps 127.0.0.1 for the host's outward IP unless this is off (it is what
        # makes the head, GCS and raylet bind and talk on loopback, as on macOS).
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",  # SIGTERM tears down at once
        RAY_USAGE_STATS_ENABLED="0",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def start_head(num_cpus: int = 2) -> RayHead:
    """Start ``ray start --head --block`` and wait (bounded) until its Jobs API answers with the token."""
    temp_dir = Path(tempfile.mkdtemp(prefix="loomray-", dir="/tmp"))  # short: unix socket paths
    token = secrets.token_hex(32)
    token_path = temp_dir / "auth_token"
    token_path.write_text(token)
    token_path.chmod(0o600)
    gcs, dash, client, agent = free_ports(4)
    cmd = [
        ray_executable(), "start", "--head", "--block", "--disable-usage-stats",
        f"--port={gcs}", "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", "--include-dashboard=true",
        f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent}",
        f"--num-cpus={num_cpus}", f"--temp-dir={temp_dir / 'ray'}",
    ]  # fmt: skip
    log_path = temp_dir / "ray_start.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            cmd, env=head_env(token_path), cwd=temp_dir, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    head = RayHead(
        f"http://127.0.0.1:{dash}", token, token_path, temp_dir, proc, log_path, f"127.0.0.1:{gcs}"
    )
    try:
        wait_for_jobs_api(head)
    except BaseException:
        stop_head(head)
        raise
    return head


def add_node(head: RayHead, num_cpus: int = 1, timeout: float = HEAD_START_TIMEOUT_S) -> None:
    """Start a second raylet on 127.0.0.1 that joins ``head`` (its own ports, the head's token) and
    wait until the cluster counts it."""
    manager, objects, agent, grpc, metrics, runtime = free_ports(6)
    cmd = [
        ray_executable(), "start", f"--address={head.gcs.replace('127.0.0.1', LOOPBACK)}", "--block",
        "--disable-usage-stats", f"--node-ip-address={LOOPBACK}", f"--num-cpus={num_cpus}",
        f"--node-manager-port={manager}", f"--object-manager-port={objects}",
        f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={grpc}",
        f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={runtime}",
    ]  # fmt: skip
    # Ray refuses to join a second node while its loopback-only mode is on (the flag below, which
    # the head needs), and with it off it swaps "127.0.0.1" for the host's outward IP; "127.1" is
    # the same loopback address, which Ray does not recognise as "localhost" and leaves alone.
    node_env = {**head_env(head.token_path), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}
    with open(head.temp_dir / f"node-{len(head.nodes) + 1}.log", "wb") as out:
        proc = subprocess.Popen(
            cmd, env=node_env, cwd=head.temp_dir, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    head.nodes.append(proc)
    deadline, want = time.monotonic() + timeout, len(head.nodes) + 1
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (head.temp_dir / f"node-{len(head.nodes)}.log").read_text(errors="replace")
            raise RuntimeError(f"ray start (node) exited with {proc.returncode}:\n{log[-3000:]}")
        if alive_nodes(head) >= want:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the cluster at {head.gcs} has not counted {want} nodes after {timeout:.0f}s")


def alive_nodes(head: RayHead) -> int:
    """Nodes the head's dashboard reports alive."""
    try:
        r = requests.get(
            f"{head.address}/nodes?view=summary", headers={"Authorization": f"Bearer {head.token}"}, timeout=5
        )
        summary = r.json()["data"]["summary"]
    except (requests.RequestException, ValueError, KeyError):
        return 0
    return sum(1 for n in summary if n.get("raylet", {}).get("state") == "ALIVE")


def wait_for_jobs_api(head: RayHead, timeout: float = HEAD_START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {head.token}"}
    last = "no answer yet"
    while time.monotonic() < deadline:
        if head.proc.poll() is not None:
            raise RuntimeError(f"ray start exited with {head.proc.returncode}:\n{head.log_tail()}")
        try:
            r = requests.get(f"{head.address}/api/jobs/", headers=headers, timeout=2)
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except requests.RequestException as err:
            last = type(err).__name__
        time.sleep(0.25)
    raise RuntimeError(
        f"Ray Jobs API at {head.address} not up after {timeout:.0f}s ({last}):\n{head.log_tail()}"
    )


def _proc_under(pid: int, root: str) -> bool:
    """Whether process ``pid`` belongs to the head under ``root`` (its command line or cwd says so)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        if root in cmdline:
            return True
        return os.readlink(f"/proc/{pid}/cwd").startswith(root)
    except OSError:
        return False


def _sweep(root: str) -> list[int]:
    """SIGKILL every process left over from the head under ``root``; returns their pids."""
    if not Path("/proc").is_dir():
        return []
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and int(p.name) != os.getpid()]
    killed = []
    for pid in pids:
        if _proc_under(pid, root):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
    return killed


def stop_head(head: RayHead, timeout: float = 30.0) -> None:
    """Stop this cluster only: SIGTERM to its nodes then its head (Ray kills their children), SIGKILL
    after ``timeout``, then sweep."""
    for proc in [*head.nodes, head.proc]:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
    root = str(head.temp_dir)
    deadline = time.monotonic() + 10
    while _sweep(root) and time.monotonic() < deadline:
        time.sleep(0.2)
    shutil.rmtree(head.temp_dir, ignore_errors=True)
