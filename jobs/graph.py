"""The job spec turned into the step graph, in one place.

Each step receives the outputs it reads from the steps before it. A step that is off is not added,
and the next one is handed whatever stands before it: the documents flow through ``documents`` →
``filters`` → ``join`` → ``clip_filters`` → ``dedup`` → ``tokens`` → ``shards``, skipping the
steps the spec turns off; with ``[mix]``, the tokenized documents also go ``mix`` → ``shuffle`` →
``train`` (the training dataset). This is the only place that reads the spec's on/off switches.
"""

from __future__ import annotations

import hashlib
from typing import Any

from filters.clip import ClipFiltersStep
from filters.step import FiltersStep
from jobs.spec import JobSpec
from pipeline import __version__
from pipeline.clip.images import ClipImagesStep
from pipeline.dedup.apply import DedupStep
from pipeline.dedup.components import BucketsStep, ComponentsStep
from pipeline.dedup.keys import DedupKeysStep, partitions
from pipeline.documents import DocumentsStep
from pipeline.graph import Graph
from pipeline.images.join import JoinStep
from pipeline.images.table import ImagesStep, ImageTableStep, fetching_parts
from pipeline.runner import Part
from pipeline.storage import Storage
from shards.mix import MixStep
from shards.shuffle import ShuffleStep
from shards.train import TrainStep
from shards.writer import FORMAT_VERSION, ShardsStep
from tokenizer.step import TokenizerStep, TokensStep


def inputs_record(parts: list[Part], sizes: list[int | None]) -> dict[str, Any]:
    """The job's input files: how many, and a hash of their paths and sizes."""
    listing = "\n".join(f"{p.args['path']}\t{size}" for p, size in zip(parts, sizes, strict=True)).encode()
    return {"files": len(parts), "sha256": hashlib.sha256(listing).hexdigest()}


def build_graph(spec: JobSpec, storage: Storage, parts: list[Part], inputs: dict[str, Any]) -> Graph:
    """The steps of ``spec`` over the input ``parts``; ``inputs`` (:func:`inputs_record`) is part of
    every step's fingerprint, with the format and Loom versions."""
    graph = Graph(base={"inputs": inputs, "format": FORMAT_VERSION, "loom": __version__})
    rows, run = spec.run.batch_rows, spec.run
    reading = DocumentsStep(storage, parts, spec.sources, spec.extract, rows, run.download_seconds)
    reading.stall_seconds = run.stall_seconds or None
    docs = graph.add(reading)["documents"]
    if spec.filters.enabled:
        docs = graph.add(FiltersStep(storage, parts, docs, spec.filters, rows))["documents"]
    table = embeddings = model = None
    if spec.images.fetch:
        fetching = fetching_parts(spec.sources, parts)
        images = graph.add(ImagesStep(storage, fetching, docs, spec.images))
        images.stall_seconds = run.stall_seconds or None
        table_step = graph.add(ImageTableStep(storage, images))
        table = table_step["table"]
        if spec.clip.enabled:
            dup = spec.clip.filters.duplicate_similarity
            clip = graph.add(ClipImagesStep(storage, spec.clip, table_step, dup))
            embeddings, model = clip["embeddings"], clip["model"]
        docs = graph.add(JoinStep(storage, parts, docs, images["log"], fetching))["documents"]
        if spec.clip.enabled:
            step = ClipFiltersStep(
                storage,
                parts,
                docs,
                spec.clip,
                spec.clip.filters,
                table,
                embeddings,
                clip.outputs.get("duplicates"),
            )
            docs = graph.add(step)["documents"]
    if spec.dedup.enabled:
        keys = graph.add(DedupKeysStep(storage, parts, docs, spec.dedup))["keys"]
        n = partitions(spec.dedup, parts)
        buckets = graph.add(BucketsStep(storage, keys, parts, n, spec.dedup.threshold))
        components = graph.add(ComponentsStep(storage, buckets))
        docs = graph.add(DedupStep(storage, parts, docs, spec.dedup.keep, components))["documents"]
    if spec.tokenizer.enabled:
        tokenizer = graph.add(TokenizerStep(storage, parts, docs, spec.tokenizer))["tokenizer"]
        docs = graph.add(TokensStep(storage, parts, docs, tokenizer, spec.tokenizer, rows))["documents"]
    graph.add(ShardsStep(storage, parts, docs, spec.shards, table, embeddings, model))
    if spec.mix.enabled:
        mix = graph.add(MixStep(storage, parts, docs, spec.mix))
        shuffle = ShuffleStep(storage, parts, docs, mix["plan"], mix["positions"], spec.mix)
        shuffled = graph.add(shuffle)["documents"]
        graph.add(TrainStep(storage, parts, shuffled, mix["plan"], spec.mix, table, embeddings, model))
    for step in graph.steps:
        step.worker_restarts = run.worker_restarts
    return graph
