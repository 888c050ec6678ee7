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

log = logging.getLogger(__name__)

REPORT = "report/index.html"

__all__ = ["REPORT", "ReportError", "ReportResult", "build_report"]


class ReportError(ValueError):
    """The folder is not an output the report can be built from (the message says why)."""


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
    # here, not at the top: the job spec imports report.config, and a job need not load Bokeh to start
    from report.collect import collect
    from report.page import render
    from report.samples import drop_examples, sample_documents

    started = time.perf_counter()
    data = collect(storage)
    docs = sample_documents(storage, samples, seed)
    dropped, complete = drop_examples(storage, [s["step"] for s in data.steps], examples, seed)
    if not complete:
        data.missing.append("drops by source and kind: ledgers without source and kind (an older Loom)")
    html = render(data, docs, dropped, seed).encode("utf-8")
    storage.write_bytes(REPORT, html)
    seconds = time.perf_counter() - started
    path = storage.uri(REPORT)
    log.debug("report: %s (%.1f MB, %.1f s)", path, len(html) / 1e6, seconds)
    return ReportResult(path, len(html), seconds, len(docs), len(data.scores), tuple(data.missing))
