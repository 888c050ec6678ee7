"""A whole job on S3: a pair table read from a bucket, images fetched, output written to a bucket."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from jobs.run import run_job
from jobs.spec import parse_job
from pipeline.images.serve import ImageServer
from pipeline.storage import Storage
from shards.validate import validate_output


def test_pairs_from_s3_to_shards_on_s3(s3, shared_data, tmp_path):
    s3.make_bucket("laion")
    s3.make_bucket("runs")
    photos = sorted((shared_data / "images/img2dataset-resize").glob("*.jpg"))
    with ImageServer(photos[0].parent) as server:
        table = tmp_path / "part-00000.parquet"
        rows = {
            "URL": [f"{server.url}/{p.name}" for p in photos],
            "TEXT": [f"photo {p.stem}" for p in photos],
        }
        pq.write_table(pa.table(rows), table)
        s3.client().upload_file(str(table), "laion", "tables/part-00000.parquet")
        spec = parse_job(
            {
                "name": "s3",
                "output": s3.uri("runs", "job-1"),
                "sources": [
                    {"type": "pairs", "preset": "laion", "paths": [s3.uri("laion", "tables/*.parquet")]}
                ],
                "images": {"allow_networks": ["127.0.0.1/32"], "max_size": 256},
            }
        )
        outcome = run_job(spec, use_ray=False)
    assert outcome.samples == len(photos)
    storage = Storage(spec.output)
    report = validate_output(storage)
    assert report.ok, report.problems
    assert json.loads(storage.read_bytes("stats.json"))["shards"]["image_files"] == len(photos)
    keys = s3.client().list_objects_v2(Bucket="runs", Prefix="job-1/work/images/")["Contents"]
    assert {k["Key"].rsplit("/", 1)[1] for k in keys if not k["Key"].endswith("/")} == {
        "images-00000.urls.parquet",
        "images-00000.done",
        "step.json",  # the step's fingerprint
    }
    # the server is gone: the rerun finds every part done on S3 and fetches nothing
    assert run_job(spec, use_ray=False).samples == len(photos)
