"""Where each documents part stands once every document step has run (what is tokenized and sharded)."""

from __future__ import annotations

from pipeline.config import JobSpec
from pipeline.dedup.apply import dedup_path
from pipeline.images.join import imaged_documents_path


def final_documents_path(spec: JobSpec, part: str) -> str:
    """The documents of ``part`` after filters, image join, CLIP filters and dedup (whichever run)."""
    return dedup_path(part) if spec.dedup.enabled else imaged_documents_path(spec, part)
