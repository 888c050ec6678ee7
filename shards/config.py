"""The ``[shards]`` table of the job spec: how the per-file webdataset shards are cut."""

from __future__ import annotations

from pydantic import Field

from pipeline.config import Config


class ShardsConfig(Config):
    max_samples: int = Field(1000, ge=1, description="Samples per shard at most.")
    max_bytes: int = Field(512 * 1024 * 1024, ge=1024, description="Shard size at most (approximate).")
