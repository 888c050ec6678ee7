"""The documents step: every source file is one part; its rows run through the document stages.

WARC revisit records (identical payload) do not run through the stages: they are set aside, and
once the whole file is read each one becomes a copy of the first document of the file with the same
``meta.payload_digest``, with its own id, url, crawl date and offset, appended after the file's other
documents in record order. Dedup then removes the copy as an exact duplicate, and the removal ledger
shows it. A revisit whose original is not a document of the same file (not HTML, dropped, or in
another file) is counted as skipped ``revisit_unresolved``: it never was a document.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import CommonCrawlSource, ExtractConfig, JobSpecError, PairsSource, Source, is_remote
from pipeline.runner import Part, PartStats
from pipeline.schema import DOC_SCHEMA, LEDGER_SCHEMA, conform, doc_id
from pipeline.sources.commoncrawl import (
    DOWNLOAD_SECONDS,
    EMPTY_INPUT,
    RAW_SCHEMA,
    HtmlToDocuments,
    list_files,
    read_archive,
)
from pipeline.sources.pairs import PairsToDocuments, read_pair_batches
from pipeline.sources.paths import expand_paths, input_size
from pipeline.stage import Stage, apply_stages, merged_resources
from pipeline.step import Step
from pipeline.storage import Storage

DOCUMENTS = "documents"


def document_stages(src: Source, extract: ExtractConfig) -> list[Stage]:
    """The stages every document of a source goes through, in order."""
    if isinstance(src, PairsSource):
        return [PairsToDocuments(src.name, src.max_caption_chars, src.long_captions)]
    return [HtmlToDocuments(src.name, extract)]


def raw_batches(
    src: Source,
    extract: ExtractConfig,
    path: str,
    rows: int,
    counts: Counter,
    deadline_s: float = DOWNLOAD_SECONDS,
) -> Iterator[pa.Table]:
    """The raw rows of one input file, in Arrow batches of ``rows``, for the first stage."""
    if isinstance(src, PairsSource):
        yield from read_pair_batches(path, src, rows, counts)
        return
    records = read_archive(path, extract.max_page_bytes, counts, deadline_s)
    while batch := list(itertools.islice(records, rows)):
        yield pa.Table.from_pylist(batch, schema=RAW_SCHEMA)


def split_revisits(batch: pa.Table) -> tuple[pa.Table, list[dict]]:
    """(the rows for the stages, the revisit rows as dicts in record order) of one raw batch."""
    if "revisit" not in batch.column_names:
        return batch, []
    is_revisit = pc.fill_null(batch["revisit"], False)
    revisits = batch.filter(is_revisit).select(
        ["url", "warc_path", "warc_offset", "crawl_date", "payload_digest"]
    )
    return batch.filter(pc.invert(is_revisit)), revisits.to_pylist()


def resolve_revisits(docs: pa.Table, revisits: list[dict], source: str) -> tuple[pa.Table, int]:
    """Revisit rows → copies of the first document of ``docs`` with the same payload digest.

    Returns (the copies, in revisit order, as DOC_SCHEMA rows; how many revisits had no original).
    Only an index digest → row position is built; the originals are taken from ``docs``.
    """
    first: dict[str, int] = {}
    digests = pc.struct_field(docs["meta"], "payload_digest").to_pylist() if docs.num_rows else []
    for pos, digest in enumerate(digests):
        if digest is not None:
            first.setdefault(digest, pos)
    found = [(r, first[r["payload_digest"]]) for r in revisits if r["payload_digest"] in first]
    if not found:
        return DOC_SCHEMA.empty_table(), len(revisits)
    copies = docs.take(pa.array([pos for _, pos in found], pa.int64())).to_pylist()
    # the same formula HtmlToDocuments uses, so the copy's id is as stable as any other
    locations = [f"{r['warc_path']}:{r['warc_offset']}" for r, _ in found]
    keys = [doc_id(source, r["url"], loc) for (r, _), loc in zip(found, locations, strict=True)]
    # Records that share one gzip member (a WARC not compressed record by record) share its offset:
    # there a revisit of the same URL would get its original's id, so it takes another location.
    clashes = pc.is_in(pa.array(keys, pa.string()), value_set=docs["id"]).to_pylist()
    used: set[str] = set()
    for i, ((r, _), doc) in enumerate(zip(found, copies, strict=True)):
        key = keys[i]
        if clashes[i] or key in used:
            key = doc_id(source, r["url"], f"{locations[i]}:revisit:{i}")
        used.add(key)
        doc["id"] = key
        doc["url"] = r["url"]
        doc["meta"].update(crawl_date=r["crawl_date"], warc_offset=r["warc_offset"], target_uri=r["url"])
    return pa.Table.from_pylist(copies, schema=DOC_SCHEMA), len(revisits) - len(found)


def empty_input_row(source: str, path: str, step: str) -> pa.Table:
    """The ledger row of an input file with no bytes: it is counted, not mistaken for an empty part."""
    row = {
        "id": doc_id(source, path, "file"),
        "url": path,
        "step": step,
        "stage": "read",
        "reason": EMPTY_INPUT,
        "detail": "the input file has 0 bytes",
        "source": source,
    }
    return pa.Table.from_pylist([row], schema=LEDGER_SCHEMA)


def table_counts(docs: pa.Table) -> dict:
    """Documents by kind and image count of a document table (for the step stats)."""
    kinds = Counter(docs["kind"].to_pylist())
    n_images = int(pc.sum(pc.is_valid(pc.list_flatten(docs["images"]))).as_py() or 0) if docs.num_rows else 0
    return {"kinds": dict(sorted(kinds.items())), "images": n_images}


def plan_parts(sources: list[Source]) -> list[Part]:
    """The input files of every source, one part each, named ``<source>-<index>``.

    Listed once per run; ``job.json`` records a hash of the list so that a rerun whose inputs
    changed (a new file in a glob, a longer listing) is refused instead of mixing two inputs.
    """
    parts = []
    for i, src in enumerate(sources):
        files = (
            list_files(src) if isinstance(src, CommonCrawlSource) else expand_paths(src.paths)[: src.limit]
        )
        missing = [f for f in files if not is_remote(f) and not os.path.isfile(f)]
        if missing:
            raise JobSpecError(
                f"sources.{i}: {len(missing)} of {len(files)} input files not found (first: {missing[0]})"
            )
        if not files:
            raise JobSpecError(f"sources.{i}: no input files")
        parts.extend(Part(f"{src.name}-{j:05d}", {"source": i, "path": path}) for j, path in enumerate(files))
    return parts


class DocumentsStep(Step):
    """Sources → documents: read each input file (a part), build documents, run the document stages.

    Outputs: ``documents`` and ``ledger`` (every response or row dropped, with its reason)."""

    name = DOCUMENTS

    def __init__(
        self,
        storage: Storage,
        parts: list[Part],
        sources: list[Source],
        extract: ExtractConfig,
        batch_rows: int = 256,
        download_seconds: float = DOWNLOAD_SECONDS,
    ):
        super().__init__(storage)
        self.sources = sources
        self.extract = extract
        self.batch_rows = batch_rows
        self.download_seconds = download_seconds
        self._parts = parts
        self._stages: dict[int, list[Stage]] = {}
        self.resources = merged_resources(document_stages(sources[0], extract))
        self.output("documents", "work/{step}/{part}.parquet")
        self.output("ledger", "work/{step}/{part}.ledger.parquet")

    def settings(self) -> dict[str, Any]:
        """The sources (the input files themselves are in the graph's base) and extraction."""
        return {
            "sources": [s.model_dump(mode="json", exclude={"fetch_images"}) for s in self.sources],
            "extract": self.extract.model_dump(mode="json"),
        }

    def parts(self) -> list[Part]:
        return self._parts

    def stages(self, source_index: int) -> list[Stage]:
        if source_index not in self._stages:  # built once per worker, on first use
            self._stages[source_index] = document_stages(self.sources[source_index], self.extract)
        return self._stages[source_index]

    def run_part(self, part: Part) -> PartStats:
        src = self.sources[part.args["source"]]
        stages = self.stages(part.args["source"])
        counts: Counter = Counter()
        cut_before = sum(getattr(st, "captions_cut", 0) for st in stages)
        kept, dropped, revisits, rows_in = [], [], [], 0
        path = part.args["path"]
        empty = input_size(path) == 0
        batches = (
            iter(())
            if empty
            else raw_batches(src, self.extract, path, self.batch_rows, counts, self.download_seconds)
        )
        for batch in batches:
            if isinstance(src, CommonCrawlSource):
                batch, found = split_revisits(batch)
                revisits.extend(found)
                if not batch.num_rows:
                    continue
            rows_in += batch.num_rows
            out = apply_stages(batch, stages, self.name)
            kept.append(conform(out.kept))
            dropped.append(out.dropped)
        docs = pa.concat_tables(kept) if kept else DOC_SCHEMA.empty_table()
        extra: dict = {}
        if revisits:
            copies, unresolved = resolve_revisits(docs, revisits, src.name)
            docs = pa.concat_tables([docs, copies])
            # rows_in: the raw rows that went through the stages plus the revisits that became
            # documents, so rows_in == rows_out + drops still holds; an unresolved revisit is a
            # skipped record like a request or a metadata record.
            rows_in += copies.num_rows
            extra["revisit_copies"] = copies.num_rows
            if unresolved:
                counts["revisit_unresolved"] += unresolved
        if empty or counts.pop(EMPTY_INPUT, 0):  # the file is the one row in, and it is dropped
            rows_in += 1
            dropped.append(empty_input_row(src.name, path, self.name))
        ledger = pa.concat_tables(dropped) if dropped else LEDGER_SCHEMA.empty_table()
        self.storage.write_parquet(self["documents"].path(part.name), docs)
        self.storage.write_parquet(self["ledger"].path(part.name), ledger)
        records = counts.pop("records", 0) + counts.pop("rows", 0)
        if cut := sum(getattr(st, "captions_cut", 0) for st in stages) - cut_before:
            extra["captions_cut"] = cut
        return PartStats(
            rows_in=rows_in,
            rows_out=docs.num_rows,
            drops=Counter(ledger["reason"].to_pylist()),
            skipped=counts,
            extra={"records": records, **extra, **table_counts(docs)},
        )
