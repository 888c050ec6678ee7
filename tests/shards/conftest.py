"""The demo's output, made once for the tests of the trainer's side (exports and the loader)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.demo import demo_job
from jobs.run import run_job
from tests.ports import free_port


@pytest.fixture(scope="session")
def demo_result(tmp_path_factory) -> Path:
    """The demo (40 pages, no Ray) run once: ``train/`` (the mixture) and ``shards/``. Tests add
    files beside the shards (exports) but never change a shard."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    with demo_job(out, pages=40, image_port=free_port()) as spec:
        run_job(spec, use_ray=False)
    return out / "result"
