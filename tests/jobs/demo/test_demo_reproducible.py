"""Two demo runs into two folders give byte-identical shards, training shards and manifests.

The pair table's URLs hold the image server's port, and so does every pair document's id: the demo
serves its images on a fixed port (``IMAGE_PORT``), not on one the OS picks, so that they do not
change from run to run. The runs go without Ray (``use_ray=False``), the parts in this process.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from jobs.demo import IMAGE_PORT, demo_job
from jobs.run import run_job
from pipeline.config import JobSpecError


def outputs(result: Path) -> dict[str, bytes]:
    """Every file under ``shards/`` and ``train/``, and the manifest, by their path under the job's
    output."""
    files = {
        str(path.relative_to(result)): path.read_bytes()
        for folder in ("shards", "train")
        for path in sorted((result / folder).rglob("*"))
        if path.is_file()
    }
    files["manifest.parquet"] = (result / "manifest.parquet").read_bytes()
    return files


def test_the_image_port_is_fixed_and_outside_the_ephemeral_range():
    assert not 32768 <= IMAGE_PORT <= 60999  # Linux's default net.ipv4.ip_local_port_range


def test_two_demo_runs_give_the_same_shards_and_manifest(tmp_path):
    runs = []
    for name in ("a", "b"):
        with demo_job(tmp_path / name, pages=40) as spec:
            run_job(spec, use_ray=False)
        assert json.loads((tmp_path / name / "input/image-server.json").read_text()) == {"port": IMAGE_PORT}
        runs.append(outputs(tmp_path / name / "result"))
    a, b = runs
    assert any(name.startswith("shards/demo-pairs-") for name in a)
    assert any(name.startswith("shards/demo-0") for name in a)
    assert "train/manifest.parquet" in a and "train/subsets.json" in a
    assert sorted(a) == sorted(b)
    assert [name for name in a if a[name] != b[name]] == []


def test_a_taken_port_is_one_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(JobSpecError, match=f"cannot listen on 127.0.0.1:{port} "):
            with demo_job(tmp_path / "demo", pages=20, image_port=port):
                pass
