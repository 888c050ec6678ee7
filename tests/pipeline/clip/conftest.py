"""A tiny open_clip model saved as a checkpoint (the path real weights take), and real photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.clip.config import ClipConfig
from pipeline.clip.model import write_tiny_model


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> ClipConfig:
    config, checkpoint = write_tiny_model(tmp_path_factory.mktemp("clip"), seed=7)
    return ClipConfig(
        enabled=True,
        model="loom-tiny-clip",
        pretrained=str(checkpoint),
        model_config_path=str(config),
        batch_size=8,
    )


@pytest.fixture(scope="session")
def photos(shared_data: Path) -> list[bytes]:
    """The 18 CC-BY photos and the 7 JPEGs of varied aspect ratio."""
    files = sorted((shared_data / "images/conceptual-captions-openimages").glob("*.jpg"))
    files += sorted((shared_data / "images/img2dataset-resize").glob("*.jpg"))
    assert len(files) >= 20
    return [f.read_bytes() for f in files]
