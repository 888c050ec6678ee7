"""``loom report``: a finished output as one self-contained HTML page (``OUT/report/index.html``).

The page holds the funnel (rows in and out of every step, drops and skips by reason), token lengths
by kind with 8k and 32k marked, tokens by source, kind and language, images per document, image
sizes and fetch statuses, every filter score's distribution over the documents that reached its
filter with the thresholds drawn, dedup cluster sizes and removals by rule, the training mixture
(requested and delivered shares, subsets), a seeded sample of kept documents rendered from the shard
bytes, and examples of dropped documents per reason. docs/REPORT.md describes each part.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from pipeline.storage import Storage
from report.collect import ReportData, ReportError, collect
from report.page import render
from report.samples import drop_examples, sample_documents

log = logging.getLogger(__name__)

REPORT = "report/index.html"

__all__ = ["REPORT", "ReportError", "ReportResult", "build_report"]


@dataclass(frozen=True)
class ReportResult:
    path: str  # where the page was written (a local path or an s3:// URI)
    bytes: int
    seconds: float
    samples: int
    scores: int
    missing: tuple[str, ...]  # sections that could not be built, and why


def build_report(storage: Storage, samples: int = 12, examples: int = 3, seed: int = 0) -> ReportResult:
    """Write ``OUT/report/index.html`` for the finished output at ``storage``."""
    started = time.perf_counter()
    data: ReportData = collect(storage)
    docs = sample_documents(storage, samples, seed)
    dropped = drop_examples(storage, [s["step"] for s in data.steps], examples, seed)
    html = render(data, docs, dropped, seed).encode("utf-8")
    storage.write_bytes(REPORT, html)
    seconds = time.perf_counter() - started
    path = storage.uri(REPORT)
    log.debug("report: %s (%.1f MB, %.1f s)", path, len(html) / 1e6, seconds)
    return ReportResult(path, len(html), seconds, len(docs), len(data.scores), tuple(data.missing))
