"""``loom demo`` fetches its pair table's images from its own server on 127.0.0.1, on local Ray."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from jobs.cli import main
from jobs.demo import IMAGE_PORT, build_demo_pairs
from pipeline.storage import Storage
from shards.validate import validate_output
from tests.jobs.test_plan import DEMO_STEPS


def test_the_same_arguments_give_the_same_pair_table(tmp_path):
    a = build_demo_pairs(tmp_path / "a", "http://127.0.0.1:1")
    b = build_demo_pairs(tmp_path / "b", "http://127.0.0.1:1")
    assert a.table.read_bytes() == b.table.read_bytes()
    assert (a.images / "003.jpg").read_bytes() == (b.images / "003.jpg").read_bytes()


def test_loom_demo_fetches_the_pairs_images_once_and_puts_them_in_the_shards(local_ray, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--pages", "40"]) == 0
    assert "done: " in capsys.readouterr().out
    stats = json.loads((out / "result/stats.json").read_text())
    assert stats["step_order"] == DEMO_STEPS
    steps = stats["steps"]
    assert steps["documents"]["drops"]["bad_url"] == steps["documents"]["drops"]["empty_caption"] == 1
    assert steps["images"]["rows_in"] == 30  # 34 pair rows, the logo's URL five times
    assert steps["images"]["skipped"] == {"duplicate_url": 4}
    assert steps["images"]["drops"] == {"http_404": 2, "not_image": 1, "decode_error": 1, "noai": 1}
    assert steps["join"]["drops"] == {
        "image_http_404": 2,
        "image_not_image": 1,
        "image_decode_error": 1,
        "image_noai": 1,
    }
    assert steps["join"]["extra"]["kinds"]["pair"] == 29
    assert validate_output(Storage(str(out / "result"))).ok

    shard = next((out / "result/shards").glob("demo-pairs-*.tar"))
    with tarfile.open(shard) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    doc = json.loads(next(v for k, v in members.items() if k.endswith(".json")))
    assert doc["format"] == "loom/4" and doc["kind"] == "pair"
    ids = np.frombuffer(members[f"{doc['id']}.tokens"], "<u4")
    assert ids[:3].tolist() == [0, 3, 4] and ids[-1] == 1  # <s> <image></image> caption </s>
    assert doc["tokens"] == {"count": len(ids), "images": [1]}
    assert stats["steps"]["tokens"]["extra"]["tokens"]["by_kind"]["pair"] > 0

    # CLIP: each distinct image embedded once (the logo of five rows too), the same vector in the shards
    assert steps["clip"]["rows_in"] == steps["image_table"]["rows_out"] == 25
    clip = pq.read_table(next((out / "result/work/clip").glob("*.parquet")))
    vectors = dict(zip(clip["sha256"].to_pylist(), clip["embedding"].to_pylist(), strict=True))
    assert len(vectors) == 25
    clip_members = 0
    for tar_path in (out / "result/shards").glob("*.tar"):
        with tarfile.open(tar_path) as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        for name, data in files.items():
            if name.endswith(".json"):
                sample = json.loads(data)
                for i, im in enumerate(sample["images"]):
                    if im and f"{sample['id']}.{i}.clip" in files:
                        got = np.frombuffer(files[f"{sample['id']}.{i}.clip"], "<f2")
                        assert np.array_equal(got, np.array(vectors[im["sha256"]], np.float16))
                        clip_members += 1
    assert clip_members == stats["shards"]["embeddings"] > 0
    assert stats["shards"]["embedding_dim"] == 64
    picture = Image.open(io.BytesIO(members[f"{doc['id']}.0.jpg"]))
    assert picture.size == (doc["images"][0]["width"], doc["images"][0]["height"])
    assert max(picture.size) <= 512  # images.max_size of the demo

    port = json.loads((out / "input/image-server.json").read_text())["port"]
    assert port == IMAGE_PORT  # a fixed port: every run writes the same pair URLs
    assert main(["demo", "--out", str(out), "--pages", "40"]) == 0  # the rerun: same port, nothing to do
    assert json.loads((out / "input/image-server.json").read_text())["port"] == port
