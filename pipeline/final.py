"""Where each documents part stands once every document step has run (what is tokenized and sharded)."""

from __future__ import annotations

from pipeline.config import JobSpec
from pipeline.dedup.apply import dedup_path
from pipeline.images.join import joined_path
from pipeline.steps import kept_documents_path


def final_documents_path(spec: JobSpec, part: str) -> str:
    """The documents of ``part`` after filters, image join and dedup (whichever of them run)."""
    if spec.dedup.enabled:
        return dedup_path(part)
    return joined_path(part) if spec.images.fetch else kept_documents_path(spec, part)
