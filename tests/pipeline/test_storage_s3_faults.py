"""Storage on S3 under faults: 503 SlowDown, reset connections, stalled responses and an outage in the
middle of multipart uploads, injected by ``tests/s3faults.py`` between pyarrow and SeaweedFS; and a
real SeaweedFS of the module's own, killed (``kill -9``) and started again in the middle of a
multipart upload.

What must hold: the reads and writes succeed (retried), with the right bytes; a write that fails
publishes nothing and leaves no multipart upload open; a stall ends in an error or a retry, never a
hang; and the demo job run through the faults writes the same shards as a clean run.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.storage import OP_ATTEMPTS, Storage
from tests.ports import free_port
from tests.s3faults import FaultProxy, fault, s3_faults  # noqa: F401
from tests.s3server import S3Server, Seaweed, seaweed

BUCKET = "loom-faults-test"
READS = ("GetObject", "HeadObject", "ListObjects")
UPLOADS = ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")


@pytest.fixture(scope="module")
def server(s3: S3Server) -> S3Server:
    s3.make_bucket(BUCKET)
    return s3


@pytest.fixture
def proxy(server: S3Server, s3_faults: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> FaultProxy:  # noqa: F811
    """The proxy in front of the server; S3 requests that send nothing for 2 s fail (and retry)."""
    monkeypatch.setenv("LOOM_S3_REQUEST_TIMEOUT_S", "2")
    monkeypatch.setenv("LOOM_S3_CONNECT_TIMEOUT_S", "2")
    return s3_faults


@pytest.fixture(scope="module")
def restartable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    """A SeaweedFS of this module's own, so that restarting it disturbs no other test."""
    with seaweed(tmp_path_factory.mktemp("restartable")) as running:
        running.server.make_bucket(BUCKET)
        yield running


@pytest.fixture
def restarting_proxy(restartable: Seaweed, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A proxy in front of ``restartable`` whose outages restart the server for real."""
    for key, value in restartable.server.env().items():  # its credentials, for pyarrow
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LOOM_S3_REQUEST_TIMEOUT_S", "2")
    monkeypatch.setenv("LOOM_S3_CONNECT_TIMEOUT_S", "2")
    with FaultProxy(restartable.server) as proxy:
        proxy.outage_s = 0.5
        proxy.during_outage = restartable.restart
        yield proxy


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    return f"runs/{request.node.name}"


@pytest.fixture
def store(proxy: FaultProxy, prefix: str) -> Storage:
    return Storage(proxy.uri(BUCKET, prefix))


def objects(server: S3Server, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix``, read straight from the server (not through the proxy)."""
    client = server.client()
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/").get("Contents", [])
    return {
        o["Key"].removeprefix(f"{prefix}/"): client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
        for o in listing
    }


def open_uploads(server: S3Server, prefix: str = "") -> list[str]:
    found = server.client().list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])
    return [u["Key"] for u in found]


def test_reads_and_writes_succeed_through_slowdowns_and_resets(
    server: S3Server, proxy: FaultProxy, store: Storage, prefix: str, tmp_path: Path
) -> None:
    table = pa.table({"id": list(range(1000)), "text": [f"doc {i}" for i in range(1000)]})
    shard = tmp_path / "shard.tar"
    shard.write_bytes(os.urandom(12 << 20))  # two parts of pyarrow's multipart upload
    blob = os.urandom(300_000)
    proxy.inject(
        # of each kind some for sure, on the multipart calls too; then a seeded share of all requests
        fault("slowdown", ["UploadPart"], every=3, limit=2),
        fault("reset_request", ["CompleteMultipartUpload"], every=3),
        fault("reset_response", ["GetObject"], every=4),
        fault("slowdown", share=0.1),
        fault("reset_request", share=0.05),
        fault("reset_response", READS, share=0.1),
    )

    store.write_bytes("raw/blob.bin", blob)
    store.write_json("stats.json", {"docs": 3})
    store.write_parquet("t/a.parquet", table)
    store.write_parquet_groups("t/b.parquet", table, "id")
    store.put_file(str(shard), "shards/shard-000000.tar")

    assert store.read_bytes("raw/blob.bin") == blob
    assert store.read_json("stats.json") == {"docs": 3}
    assert store.read_parquet("t/a.parquet").equals(table)
    assert store.read_parquets(["t/a.parquet", "t/b.parquet"], ["id"], pc.field("id") < 2).num_rows == 4
    assert store.read_groups("t/b.parquet", "id", 7).to_pylist() == [{"id": 7, "text": "doc 7"}]
    assert store.list("shards", ".tar") == ["shard-000000.tar"]
    proxy.clear()
    stored = objects(server, prefix)
    assert stored["raw/blob.bin"] == blob
    assert stored["shards/shard-000000.tar"] == shard.read_bytes()
    assert sorted(stored) == [
        "raw/blob.bin",
        "shards/shard-000000.tar",
        "stats.json",
        "t/a.parquet",
        "t/b.parquet",
    ]
    assert open_uploads(server, prefix) == []
    for kind in ("slowdown", "reset_request", "reset_response"):  # every kind of fault was met
        assert proxy.fired(kind) > 0, kind
    assert proxy.fired(op="UploadPart") and proxy.fired(op="CompleteMultipartUpload")


def test_a_fill_that_fails_publishes_nothing_and_leaves_no_upload(
    server: S3Server, store: Storage, prefix: str
) -> None:
    store.write_bytes("shards/a.tar", b"the good one")

    def fill(f):
        f.write(os.urandom(14 << 20))  # one part uploaded, the next one buffered
        raise RuntimeError("the shard writer failed")

    with pytest.raises(RuntimeError, match="shard writer failed"):
        store._publish("shards/a.tar", fill)  # over an object: it stays as it was
    with pytest.raises(RuntimeError, match="shard writer failed"):
        store._publish("shards/b.tar", fill)

    assert objects(server, prefix) == {"shards/a.tar": b"the good one"}
    assert open_uploads(server, prefix) == []


def test_pyarrow_alone_publishes_the_part_written_when_a_with_block_fails(
    server: S3Server, store: Storage, prefix: str
) -> None:
    """Why Storage does not write through ``with fs.open_output_stream()``: its close on the error
    completes the upload."""
    fs, base = store._fs_and_base
    with pytest.raises(RuntimeError), fs.open_output_stream(f"{base}/half.tar") as f:
        f.write(b"first half")
        raise RuntimeError("failed half-way")
    assert objects(server, prefix) == {"half.tar": b"first half"}


def test_an_upload_whose_parts_keep_failing_publishes_nothing(
    server: S3Server, proxy: FaultProxy, store: Storage, prefix: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("LOOM_S3_MAX_ATTEMPTS", "2")
    store = Storage(store.root)  # the settings are read when the filesystem is made
    shard = tmp_path / "shard.tar"
    shard.write_bytes(os.urandom(24 << 20))
    proxy.inject(fault("reset_request", ["UploadPart"], every=1, after=1))  # the first part gets through

    with pytest.raises(OSError, match="UploadPart"):
        store.put_file(str(shard), "shards/shard-000000.tar")

    proxy.clear()
    assert proxy.fired("reset_request", "UploadPart") >= 2 * OP_ATTEMPTS  # each upload tried again
    assert proxy.seen("CreateMultipartUpload") == OP_ATTEMPTS
    assert proxy.seen("CompleteMultipartUpload") == 0
    assert objects(server, prefix) == {}
    assert open_uploads(server, prefix) == []  # aborted when the write failed


def test_an_outage_in_the_middle_of_a_multipart_upload_is_retried(
    server: S3Server, proxy: FaultProxy, store: Storage, prefix: str, tmp_path: Path
) -> None:
    """A server restart as the client sees it: the part in flight is reset, connections are refused
    for a while, then the upload goes on (the server kept its parts) and completes."""
    shard = tmp_path / "shard.tar"
    shard.write_bytes(os.urandom(30 << 20))
    proxy.outage_s = 1.5
    proxy.inject(fault("outage", ["UploadPart"], every=2, limit=1))

    store.put_file(str(shard), "shards/shard-000000.tar")

    assert proxy.fired("outage") == 1
    proxy.clear()
    assert objects(server, prefix) == {"shards/shard-000000.tar": shard.read_bytes()}
    assert open_uploads(server, prefix) == []


def test_a_real_server_restart_in_the_middle_of_a_multipart_upload_is_retried(
    restartable: Seaweed, restarting_proxy: FaultProxy, prefix: str, tmp_path: Path
) -> None:
    """SeaweedFS killed with SIGKILL after the first part of an upload and started again: the upload
    goes on (or starts over) once it answers, and completes whole; nothing is left open."""
    shard = tmp_path / "shard.tar"
    shard.write_bytes(os.urandom(30 << 20))
    restarts = restartable.restarts
    restarting_proxy.inject(fault("outage", ["UploadPart"], every=2, limit=1))

    Storage(restarting_proxy.uri(BUCKET, prefix)).put_file(str(shard), "shards/shard-000000.tar")

    assert restartable.restarts == restarts + 1
    restarting_proxy.clear()
    assert objects(restartable.server, prefix) == {"shards/shard-000000.tar": shard.read_bytes()}
    assert open_uploads(restartable.server, prefix) == []


def test_a_stalled_response_is_retried(server: S3Server, proxy: FaultProxy, store: Storage, prefix) -> None:
    store.write_bytes("a.json", b"{}")
    proxy.inject(fault("stall", ["GetObject"], first=1), fault("stall", ["CompleteMultipartUpload"], first=1))

    assert store.read_bytes("a.json") == b"{}"
    store.write_bytes("b.json", b"[]")  # the server completed it; the retry finds it completed

    assert proxy.fired("stall") == 2
    assert objects(server, prefix) == {"a.json": b"{}", "b.json": b"[]"}


def test_a_response_that_always_stalls_is_an_error_not_a_hang(
    proxy: FaultProxy, store: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOM_S3_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("LOOM_S3_REQUEST_TIMEOUT_S", "1")
    store = Storage(store.root)
    store.write_bytes("a.json", b"{}")
    proxy.inject(fault("stall", ["GetObject"], every=1))

    start = time.monotonic()
    with pytest.raises(OSError, match="(?i)timeout|too slow"):
        store.read_bytes("a.json")
    # the client gave up on its own: the proxy would have held each response for stall_s
    assert time.monotonic() - start < proxy.stall_s
    assert proxy.fired("stall") >= 2 * OP_ATTEMPTS  # the SDK's 2 attempts, for each of Storage's


def test_abort_stale_uploads_aborts_the_open_uploads_under_the_root_only(
    server: S3Server, proxy: FaultProxy, store: Storage, prefix: str
) -> None:
    client = server.client()
    for key in (f"{prefix}/shards/a.tar", f"{prefix}/work/b/c.parquet", f"{prefix}-other/d.tar"):
        client.create_multipart_upload(Bucket=BUCKET, Key=key)
    assert store.open_uploads() == [f"{BUCKET}/{prefix}/shards/a.tar", f"{BUCKET}/{prefix}/work/b/c.parquet"]

    assert store.abort_stale_uploads(older_than_s=3600) == 0  # all of them started just now
    proxy.inject(fault("slowdown", ["ListMultipartUploads", "AbortMultipartUpload"], every=2))
    assert store.abort_stale_uploads() == 2

    assert proxy.fired("slowdown") >= 1
    assert open_uploads(server, prefix + "/") == []
    assert open_uploads(server, f"{prefix}-other/") == [f"{prefix}-other/d.tar"]  # a sibling root's
    assert Storage(str(Path("/nonexistent-loom-root"))).abort_stale_uploads() == 0  # local: none


def test_storage_pickles_without_its_filesystem(store: Storage) -> None:
    import pickle

    store.write_bytes("a.txt", b"a")
    copy = pickle.loads(pickle.dumps(store))
    assert copy == store and "_fs_and_base" not in vars(copy)
    assert copy.read_bytes("a.txt") == b"a"


def test_the_demo_job_through_faults_and_a_server_restart_writes_the_shards_of_a_clean_run(
    restartable: Seaweed, restarting_proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """503s, resets, stalls, and SeaweedFS killed and restarted between a multipart upload's create
    and its complete: the job succeeds and writes a clean run's shards, byte for byte."""
    from jobs.demo import demo_job
    from jobs.run import run_job
    from shards.validate import validate_output

    server, proxy = restartable.server, restarting_proxy
    monkeypatch.setenv("LOOM_S3_MAX_ATTEMPTS", "10")
    restarts = restartable.restarts
    with demo_job(tmp_path / "demo", pages=20, image_port=free_port()) as spec:
        clean = run_job(spec, use_ray=False)  # on local disk
        on_s3 = spec.model_copy(update={"output": proxy.uri(BUCKET, "runs/demo-faults")})
        proxy.inject(
            fault("slowdown", share=0.06),
            fault("reset_request", share=0.03),
            fault("reset_response", READS, share=0.03),
            fault("stall", ["GetObject", "PutObject", "UploadPart"], every=40, limit=2),
            fault("outage", ["UploadPart"], every=60, limit=1),  # between a Create and its Complete
        )
        faulty = run_job(on_s3, use_ray=False)
        proxy.clear()

    assert restartable.restarts == restarts + 1
    assert (faulty.shards, faulty.samples) == (clean.shards, clean.samples)
    manifest = pq.read_table(Path(clean.manifest))
    stored = objects(server, "runs/demo-faults")
    assert pq.read_table(pa.BufferReader(stored["manifest.parquet"])) == manifest
    for row in manifest.to_pylist():  # the shard objects themselves are the clean run's, byte for byte
        assert hashlib.sha256(stored[row["shard"]]).hexdigest() == row["sha256"]
    shards = {k for k in stored if k.startswith("shards/")}
    assert shards == {row["shard"] for row in manifest.to_pylist()}  # and nothing else under shards/
    assert open_uploads(server, "runs/demo-faults/") == []
    assert validate_output(Storage(server.uri(BUCKET, "runs/demo-faults"))).ok
    for kind in ("slowdown", "reset_request", "reset_response", "stall", "outage"):
        assert proxy.fired(kind) > 0, kind


def test_an_upload_the_abort_cannot_reach_is_deleted_if_the_close_publishes_it(
    server: S3Server, proxy: FaultProxy, store: Storage, prefix: str, monkeypatch, caplog
) -> None:
    """The last resort: when the abort fails, closing the stream publishes the part written; it is
    deleted at once (and the failure logged)."""
    monkeypatch.setenv("LOOM_S3_MAX_ATTEMPTS", "2")
    store = Storage(store.root)
    proxy.inject(fault("slowdown", ["ListMultipartUploads"], every=1))

    def fill(f):
        f.write(b"half a shard")
        raise RuntimeError("the shard writer failed")

    with pytest.raises(RuntimeError, match="shard writer failed"):
        store._publish("shards/a.tar", fill)

    proxy.clear()
    assert "a failed upload of" in caplog.text and "deleting it" in caplog.text
    assert objects(server, prefix) == {}
    assert open_uploads(server, prefix) == []


def test_loom_run_aborts_the_uploads_a_killed_run_left_open(s3):
    """An upload left open under the output (a worker killed mid-write) is aborted by the next run."""
    from jobs.run import abort_uploads

    bucket = s3.make_bucket("leftover")
    client = s3.client()
    client.create_multipart_upload(Bucket=bucket, Key="out/shards/x-00000-00000.tar")
    storage = Storage(s3.uri(bucket, "out"))
    assert storage.open_uploads()
    abort_uploads(storage)
    assert not storage.open_uploads()
