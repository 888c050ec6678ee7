"""The ``[report]`` table of the job spec: the run report ``loom run`` writes when a job ends."""

from __future__ import annotations

from pydantic import Field

from pipeline.config import Config


class ReportConfig(Config):
    """``[report]``: ``OUT/report/index.html``, one offline page (``docs/REPORT.md``)."""

    enabled: bool = Field(True, description="Write the report when the job ends (`loom report` rebuilds it).")
    samples: int = Field(12, ge=0, le=200, description="Kept documents shown in the sample browser.")
    examples: int = Field(3, ge=0, le=50, description="Dropped documents shown per drop reason.")
    seed: int = Field(0, description="The seed of both draws.")
