"""The join step: fetch results back onto the documents, one documents part at a time.

A fetched image gets its ``sha256`` (the image table's key) and the size of the stored image. An
image that failed leaves its document: an interleaved document keeps its text (adjacent text blocks
merge; with no image left it becomes a ``text`` document), a pair is dropped. Every removal is a
ledger row — ``stage`` ``image`` for an image taken out of a kept document, ``document`` for a
dropped pair — with the reason ``image_<status>`` and img2dataset's error message.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.documents import table_counts
from pipeline.images.table import image_urls
from pipeline.runner import Part
from pipeline.schema import DROP_REASON, LEDGER_SCHEMA
from pipeline.stage import DROP_DETAIL
from pipeline.step import Data, DocumentStep, Processed, marked_documents
from pipeline.storage import Storage

JOIN = "join"


class JoinStep(DocumentStep):
    """Documents + fetch logs → documents whose images are in the image table. ``fetching``: the
    documents parts whose images were fetched (the others pass through as they are)."""

    name = JOIN
    drop_stage = "document"

    def __init__(
        self, storage: Storage, doc_parts: list[Part], documents: Data, log: Data, fetching: list[Part]
    ):
        super().__init__(storage, doc_parts, documents, log=log)
        self._fetching = {p.name for p in fetching}

    def settings(self) -> dict[str, Any]:
        return {"fetching": sorted(self._fetching)}

    def _results(self, urls: list[str]) -> dict[str, dict[str, Any]]:
        log = self.inputs["log"]
        done = self.storage.list(f"work/{log.step}", ".done")
        logs = [log.path(n.removesuffix(".done")) for n in done]
        if not urls or not logs:
            return {}
        where = pc.field("url").isin(pa.array(urls, pa.string()))
        found = self.storage.read_parquets(
            logs, ["url", "status", "error", "sha256", "width", "height"], where
        )
        return {r["url"]: r for r in found.to_pylist()}

    def process(self, docs: pa.Table, part: Part) -> Processed:
        fetching = part.name in self._fetching
        results = self._results(sorted(set(image_urls(docs).to_pylist()))) if fetching else {}
        rows, removed_images = [], []
        for doc in docs.to_pylist():
            rows.append(attach(doc, results, removed_images) if fetching else doc)
        table = marked_documents(rows)
        kept = table.filter(pc.is_null(table[DROP_REASON]))
        removed = Counter(r["reason"] for r in removed_images)
        return Processed(
            table,
            ledger=pa.Table.from_pylist(removed_images, schema=LEDGER_SCHEMA),
            extra={**table_counts(kept), "images_removed": dict(removed)},
        )


def attach(doc: dict[str, Any], results: dict[str, dict[str, Any]], removed: list[dict]) -> dict:
    """``doc`` with its fetched images (sha256, stored size), the failed ones taken out and recorded
    in ``removed`` (ledger rows, stage ``image``); marked dropped (``_drop_reason``) when the document
    itself goes: a pair whose image failed, a page left with nothing."""
    texts: list[str | None] = []
    images: list[dict | None] = []
    for text, image in zip(doc["texts"], doc["images"], strict=True):
        if image is None:
            if texts and texts[-1] is not None:  # an image between two text blocks was removed
                texts[-1] = f"{texts[-1]}\n\n{text}"
            else:
                texts.append(text)
                images.append(None)
            continue
        got = results.get(image["url"]) or {"status": "not_fetched", "error": None}
        if got["status"] == "ok":
            texts.append(None)
            images.append({**image, "sha256": got["sha256"], "width": got["width"], "height": got["height"]})
            continue
        reason = f"image_{got['status']}"
        if doc["kind"] == "pair":
            return {**doc, DROP_REASON: reason, DROP_DETAIL: got["error"]}
        removed.append(_ledger_row(doc["id"], image["url"], "image", reason, got["error"]))
    if not texts:
        return {**doc, DROP_REASON: "no_content_left", DROP_DETAIL: None}
    kind = doc["kind"] if any(im is not None for im in images) else "text"
    return {**doc, "kind": kind, "texts": texts, "images": images}


def _ledger_row(doc: str, url: str, stage: str, reason: str, detail: str | None) -> dict[str, Any]:
    return {"id": doc, "url": url, "step": JOIN, "stage": stage, "reason": reason, "detail": detail}
