"""Storage on an ``s3://`` root, against a real (SeaweedFS) S3 server with authentication on."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pytest
from botocore.exceptions import ClientError

from pipeline.storage import Storage
from tests.s3server import S3Server

BUCKET = "loom-storage-test"


@pytest.fixture(scope="module")
def server(s3: S3Server) -> S3Server:
    """The session's S3 server, with this module's bucket made."""
    s3.make_bucket(BUCKET)
    return s3


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A prefix of its own for each test, so tests do not see each other's objects."""
    return f"runs/{request.node.name}"


@pytest.fixture
def store(server: S3Server, prefix: str) -> Storage:
    return Storage(server.uri(BUCKET, prefix))


def keys(server: S3Server, prefix: str) -> list[str]:
    listing = server.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [obj["Key"] for obj in listing.get("Contents", [])]


def test_the_root_is_remote(store: Storage) -> None:
    assert not store.is_local


def test_bytes_json_and_parquet_round_trip(server: S3Server, store: Storage, prefix: str) -> None:
    table = pa.table({"id": [1, 2, 3], "text": ["a", "bb", "ccc"]})

    store.write_bytes("raw/blob.bin", b"\x00\x01loom")
    store.write_json("stats.json", {"docs": 3, "langs": ["en", "fr"]})
    store.write_parquet("manifest.parquet", table)

    assert store.read_bytes("raw/blob.bin") == b"\x00\x01loom"
    assert store.read_json("stats.json") == {"docs": 3, "langs": ["en", "fr"]}
    assert store.read_parquet("manifest.parquet").equals(table)
    # real objects under the prefix, as any S3 client sees them
    written = {f"{prefix}/raw/blob.bin", f"{prefix}/stats.json", f"{prefix}/manifest.parquet"}
    assert written <= set(keys(server, prefix))
    body = server.client().get_object(Bucket=BUCKET, Key=f"{prefix}/stats.json")["Body"].read()
    assert json.loads(body) == {"docs": 3, "langs": ["en", "fr"]}


def test_parquet_reads_only_the_columns_and_rows_asked_for(store: Storage) -> None:
    store.write_parquet("t/a.parquet", pa.table({"k": ["a", "b"], "v": [1, 2]}))
    store.write_parquet("t/b.parquet", pa.table({"k": ["c", "d"], "v": [3, 4]}))

    assert store.read_parquet("t/a.parquet", ["v"]).to_pylist() == [{"v": 1}, {"v": 2}]
    found = store.read_parquets(["t/a.parquet", "t/b.parquet"], ["k"], pc.field("v") > 1)
    assert sorted(found.column("k").to_pylist()) == ["b", "c", "d"]


def test_delete_removes_one_file(store: Storage) -> None:
    store.write_bytes("work/a.done", b"")
    store.write_bytes("work/b.done", b"")

    store.delete("work/a.done")
    store.delete("work/a.done")  # already gone: nothing to do

    assert not store.exists("work/a.done")
    assert store.list("work") == ["b.done"]


def test_overwriting_replaces_the_object(store: Storage) -> None:
    store.write_bytes("done", b"first")
    store.write_bytes("done", b"second")
    assert store.read_bytes("done") == b"second"


def test_list_is_sorted_filtered_by_suffix_and_stays_in_its_folder(
    server: S3Server, store: Storage, prefix: str
) -> None:
    for name in ["b.tar", "a.tar", "a.json", ".a.tar.tmp", "sub/c.tar"]:
        store.write_bytes(f"shards/{name}", b"x")
    store.write_bytes("shards-old/z.tar", b"x")  # same string prefix, another folder
    Storage(server.uri(BUCKET, f"{prefix}-other")).write_bytes("shards/y.tar", b"x")  # a sibling root

    assert store.list("shards", ".tar") == ["a.tar", "b.tar"]
    assert store.list("shards") == ["a.json", "a.tar", "b.tar"]  # no hidden files, no sub-folders
    assert store.list("shards/sub") == ["c.tar"]
    assert store.list("no-such-folder") == []


def test_exists_and_is_empty(server: S3Server, store: Storage, prefix: str) -> None:
    # objects under a sibling root whose name starts with ours do not count
    Storage(server.uri(BUCKET, f"{prefix}-other")).write_bytes("x.json", b"{}")
    assert store.is_empty()
    assert not store.exists("x.json")

    store.write_json("shards/a.json", {})

    assert not store.is_empty()
    assert store.exists("shards/a.json")
    assert store.exists("shards")  # a "folder" exists once something is under it
    assert not store.exists("shards/b.json")
    assert not store.exists("shard")


def test_an_unused_bucket_is_empty(server: S3Server) -> None:
    assert Storage(server.uri(server.make_bucket("loom-empty"))).is_empty()


def test_put_file_uploads_a_local_file(server: S3Server, store: Storage, prefix: str, tmp_path: Path) -> None:
    local = tmp_path / "shard-000000.tar"
    local.write_bytes(os.urandom(12 << 20))  # above pyarrow's part size, so a multipart upload

    store.put_file(str(local), "shards/shard-000000.tar")

    head = server.client().head_object(Bucket=BUCKET, Key=f"{prefix}/shards/shard-000000.tar")
    assert head["ContentLength"] == local.stat().st_size
    assert store.read_bytes("shards/shard-000000.tar") == local.read_bytes()


def test_uri_keeps_the_endpoint_query_last(server: S3Server, store: Storage, prefix: str) -> None:
    query = f"?endpoint_override={server.endpoint}&scheme=http"
    assert store.uri() == f"s3://{BUCKET}/{prefix}{query}"
    assert store.uri("shards/a.tar") == f"s3://{BUCKET}/{prefix}/shards/a.tar{query}"

    # and such a URI is itself a usable root
    store.write_bytes("shards/a.tar", b"tar")
    assert Storage(store.uri("shards")).read_bytes("a.tar") == b"tar"


def test_storage_pickles_for_ray_workers(store: Storage) -> None:
    store.write_bytes("a.txt", b"a")  # the filesystem is resolved and cached before pickling
    copy = pickle.loads(pickle.dumps(store))
    assert copy == store
    assert copy.read_bytes("a.txt") == b"a"


def test_from_uri_takes_credentials_from_the_environment(server: S3Server) -> None:
    assert os.environ["AWS_ACCESS_KEY_ID"] == server.access_key  # set by the fixture

    fs, path = pafs.FileSystem.from_uri(server.uri(BUCKET, "auth/hello.txt"))
    with fs.open_output_stream(path) as f:
        f.write(b"hello")

    assert path == f"{BUCKET}/auth/hello.txt"
    assert server.client().get_object(Bucket=BUCKET, Key="auth/hello.txt")["Body"].read() == b"hello"


def test_a_wrong_secret_key_is_refused(server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    server.client().put_object(Bucket=BUCKET, Key="auth/secret.txt", Body=b"secret")

    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        server.client(secret_key="not-the-secret").get_object(Bucket=BUCKET, Key="auth/secret.txt")

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    fs, path = pafs.FileSystem.from_uri(server.uri(BUCKET, "auth/secret.txt"))
    with pytest.raises(OSError, match="ACCESS_DENIED"):
        fs.open_input_stream(path).read()
