"""The documents step: every source file is one part; its rows run through the document stages."""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import CommonCrawlSource, JobSpec, JobSpecError, PairsSource, is_remote
from pipeline.runner import Part, PartStats
from pipeline.schema import DOC_SCHEMA, LEDGER_SCHEMA, conform
from pipeline.sources.commoncrawl import RAW_SCHEMA, HtmlToDocuments, list_files, read_archive
from pipeline.sources.pairs import PairsToDocuments, read_pair_batches
from pipeline.sources.paths import expand_paths
from pipeline.stage import Resources, Stage, apply_stages, merged_resources
from pipeline.storage import Storage

DOCUMENTS = "documents"


def documents_path(part: str) -> str:
    return f"work/{DOCUMENTS}/{part}.parquet"


def ledger_path(step: str, part: str) -> str:
    return f"work/{step}/{part}.ledger.parquet"


def document_stages(spec: JobSpec, source_index: int) -> list[Stage]:
    """The stages every document of a source goes through, in order."""
    src = spec.sources[source_index]
    if isinstance(src, PairsSource):
        return [PairsToDocuments(src.name)]
    return [HtmlToDocuments(src.name, spec.extract)]


def raw_batches(spec: JobSpec, source_index: int, path: str, counts: Counter) -> Iterator[pa.Table]:
    """The raw rows of one input file, in Arrow batches of ``run.batch_rows``, for the first stage."""
    src = spec.sources[source_index]
    rows = spec.run.batch_rows
    if isinstance(src, PairsSource):
        yield from read_pair_batches(path, src, rows, counts)
        return
    records = read_archive(path, spec.extract.max_page_bytes, counts)
    while batch := list(itertools.islice(records, rows)):
        yield pa.Table.from_pylist(batch, schema=RAW_SCHEMA)


def table_counts(docs: pa.Table) -> dict:
    """Documents by kind and image count of a document table (for the step stats)."""
    kinds = Counter(docs["kind"].to_pylist())
    n_images = int(pc.sum(pc.is_valid(pc.list_flatten(docs["images"]))).as_py() or 0) if docs.num_rows else 0
    return {"kinds": dict(sorted(kinds.items())), "images": n_images}


def plan_parts(spec: JobSpec) -> list[Part]:
    """The input files of every source, one part each, named ``<source>-<index>``.

    Listed once per run; ``job.json`` records a hash of the list so that a rerun whose inputs
    changed (a new file in a glob, a longer listing) is refused instead of mixing two inputs.
    """
    parts = []
    for i, src in enumerate(spec.sources):
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


class DocumentsStep:
    """Sources → documents: read each input file, build documents, run the document stages."""

    name = DOCUMENTS

    def __init__(self, spec: JobSpec, storage: Storage, parts: list[Part]):
        self.spec = spec
        self.storage = storage
        self._parts = parts
        self._stages: dict[int, list[Stage]] = {}
        self.resources: Resources = merged_resources(document_stages(spec, 0))

    def parts(self) -> list[Part]:
        return self._parts

    def stages(self, source_index: int) -> list[Stage]:
        if source_index not in self._stages:  # built once per worker, on first use
            self._stages[source_index] = document_stages(self.spec, source_index)
        return self._stages[source_index]

    def run_part(self, part: Part) -> PartStats:
        stages = self.stages(part.args["source"])
        counts: Counter = Counter()
        kept, dropped, rows_in = [], [], 0
        for batch in raw_batches(self.spec, part.args["source"], part.args["path"], counts):
            rows_in += batch.num_rows
            out = apply_stages(batch, stages, self.name)
            kept.append(conform(out.kept))
            dropped.append(out.dropped)
        docs = pa.concat_tables(kept) if kept else DOC_SCHEMA.empty_table()
        ledger = pa.concat_tables(dropped) if dropped else LEDGER_SCHEMA.empty_table()
        self.storage.write_parquet(documents_path(part.name), docs)
        self.storage.write_parquet(ledger_path(self.name, part.name), ledger)
        records = counts.pop("records", 0) + counts.pop("rows", 0)
        return PartStats(
            rows_in=rows_in,
            rows_out=docs.num_rows,
            drops=Counter(ledger["reason"].to_pylist()),
            skipped=counts,
            extra={"records": records, **table_counts(docs)},
        )
