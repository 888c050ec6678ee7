"""Shared fixtures: the real data beside the repo, a local Ray for the end-to-end tests, and the
demo's output made once (for the trainer's side and the report)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.s3server"]  # the `s3` fixture: a SeaweedFS server on 127.0.0.1

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real web data); tests that need it skip with a clear message without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (see the README, 'Test data')")
    return SHARED_DATA


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray instance for the whole session (the runner reuses it)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def demo_result(tmp_path_factory) -> Path:
    """The demo (40 pages, no Ray) run once: ``train/`` (the mixture) and ``shards/``. Tests add
    files beside the shards (exports, the report) but never change a shard."""
    from jobs.demo import demo_job
    from jobs.run import run_job
    from tests.ports import free_port

    out = tmp_path_factory.mktemp("demo") / "demo"
    with demo_job(out, pages=40, image_port=free_port()) as spec:
        run_job(spec, use_ray=False)
    return out / "result"
