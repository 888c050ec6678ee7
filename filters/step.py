"""The ``filters`` step: every documents part runs through the filter stages, in a fixed order.

It runs right after ``documents`` and before images are fetched, so a page the filters drop never
costs a download. The order is cheapest-first and each filter sees what the ones before it left:

``url_blocklist`` → ``language`` → ``decontaminate`` → ``lexicon`` → ``node_rules`` →
``gopher_repetition`` → ``gopher_quality`` → ``c4`` → ``fineweb`` → ``quality`` → ``nsfw`` → ``pii``

The safety lexicon reads the text as the page had it, before the node rules and C4 remove
paragraphs and lines (a spam page whose spam sits in lines C4 removes is still flagged as spam).
Decontamination reads it so too: a page that quotes an evaluation item goes, whatever the later
filters would have cut from it, and costs them nothing.

A filter that is off (``enabled = false``, or no model/list configured) is left out. Outputs per
part: ``work/filters/<part>.parquet`` (the kept documents, scores in ``meta.scores``), the removal
ledger ``<part>.ledger.parquet`` (a row per dropped document: stage, rule, ``{"score", "threshold"}``)
and ``<part>.blocks.parquet`` (the same columns, a row per text block or paragraph removed from a
kept or dropped document). The stats hold, per filter, documents in and out, and the blocks
removed by rule.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa

from filters.base import BLOCKS_DROPPED, meta_values, with_scores
from filters.config import FiltersConfig
from pipeline.documents import table_counts
from pipeline.runner import Part
from pipeline.schema import LEDGER_SCHEMA, conform
from pipeline.stage import Resources, Stage, merged_resources, split_dropped
from pipeline.step import Data, DocumentStep, Processed
from pipeline.storage import Storage

#: The filters in the order they run (a filter that is off is left out).
ORDER = (
    "url_blocklist",
    "language",
    "decontaminate",
    "lexicon",
    "node_rules",
    "gopher_repetition",
    "gopher_quality",
    "c4",
    "fineweb",
    "quality",
    "nsfw",
    "pii",
)


FILTERS = "filters"


def filter_stages(cfg: FiltersConfig) -> list[Stage]:
    """The filter stages of ``cfg`` in :data:`ORDER`; the ones that are off left out."""
    from filters.classifier import Classifier
    from filters.decontaminate import Decontaminate
    from filters.heuristics import C4Rules, FineWebRules, GopherQuality, GopherRepetition
    from filters.langid import LanguageId
    from filters.lexicon import Lexicon
    from filters.nodes import NodeRules
    from filters.pii import RedactPii
    from filters.urls import UrlBlocklist

    stages: list[Stage] = []
    if cfg.url_blocklist.path:
        stages.append(UrlBlocklist(cfg.url_blocklist))
    if cfg.language.enabled:
        stages.append(LanguageId(cfg.language))
    if cfg.decontaminate.paths:
        stages.append(Decontaminate(cfg.decontaminate))
    if cfg.lexicon.paths:
        stages.append(Lexicon(cfg.lexicon))
    if cfg.node_rules.enabled:
        stages.append(NodeRules(cfg.node_rules, cfg.lexicon))
    for enabled, make in (
        (cfg.gopher_repetition.enabled, lambda: GopherRepetition(cfg.gopher_repetition)),
        (cfg.gopher_quality.enabled, lambda: GopherQuality(cfg.gopher_quality)),
        (cfg.c4.enabled, lambda: C4Rules(cfg.c4)),
        (cfg.fineweb.enabled, lambda: FineWebRules(cfg.fineweb)),
    ):
        if enabled:
            stages.append(make())
    if cfg.quality.model:
        stages.append(Classifier(cfg.quality, "quality"))
    if cfg.nsfw.model:
        stages.append(Classifier(cfg.nsfw, "nsfw"))
    if cfg.pii.enabled:
        stages.append(RedactPii(cfg.pii))
    return stages


def take_blocks(batch: pa.Table, step: str, stage: str) -> tuple[pa.Table, pa.Table]:
    """Move a stage's ``_blocks_dropped`` reports into block-ledger rows and add their number to
    ``meta.scores.blocks_dropped``. Returns (the batch without the column, the ledger rows)."""
    if BLOCKS_DROPPED not in batch.column_names:
        return batch, LEDGER_SCHEMA.empty_table()
    reports = batch[BLOCKS_DROPPED].to_pylist()
    batch = batch.drop_columns([BLOCKS_DROPPED])
    ids, urls = batch["id"].to_pylist(), batch["url"].to_pylist()
    rows = [
        {"id": ids[i], "url": urls[i], "step": step, "stage": stage, **r}
        for i, doc in enumerate(reports)
        for r in doc or []
    ]
    if rows:
        before = meta_values(batch, "scores.blocks_dropped")
        counts = [(b or 0) + len(doc) if doc else b for b, doc in zip(before, reports, strict=True)]
        batch = with_scores(batch, {"blocks_dropped": counts})
    return batch, pa.Table.from_pylist(rows, schema=LEDGER_SCHEMA)


class FiltersStep(DocumentStep):
    """Documents → the documents every filter keeps, with their scores; ledgers of what went.

    Outputs: ``documents``, ``ledger`` (a row per dropped document) and ``blocks`` (a row per text
    block or paragraph removed)."""

    name = FILTERS

    def __init__(
        self,
        storage: Storage,
        doc_parts: list[Part],
        documents: Data,
        cfg: FiltersConfig,
        batch_rows: int = 256,
    ):
        super().__init__(storage, doc_parts, documents)
        self.cfg = cfg
        self.batch_rows = batch_rows
        self.output("blocks", "work/{step}/{part}.blocks.parquet")
        self._stages: list[Stage] | None = None
        self.resources: Resources = merged_resources(self.stages())

    def settings(self) -> dict[str, Any]:
        return self.cfg.model_dump(mode="json")

    def stages(self) -> list[Stage]:
        if self._stages is None:  # cheap: models and lists load on a stage's first batch
            self._stages = filter_stages(self.cfg)
        return self._stages

    def process(self, docs: pa.Table, part: Part) -> Processed:
        stages = self.stages()
        for st in stages:  # counts of an earlier part this worker ran are not this part's
            getattr(st, "counters", Counter()).clear()
        retention = {st.name: {"in": 0, "out": 0} for st in stages}
        kept, dropped, blocks = [], [], []
        for batch in docs.to_batches(max_chunksize=self.batch_rows):
            table = pa.Table.from_batches([batch])
            for st in stages:
                retention[st.name]["in"] += table.num_rows
                if not table.num_rows:
                    continue
                table, block_rows = take_blocks(st(table), self.name, st.name)
                out = split_dropped(table, self.name, st.name)
                table = out.kept
                retention[st.name]["out"] += table.num_rows
                dropped.append(out.dropped)
                blocks.append(block_rows)
            kept.append(conform(table))
        result = pa.concat_tables(kept) if kept else docs.slice(0, 0)
        ledger = pa.concat_tables(dropped) if dropped else LEDGER_SCHEMA.empty_table()
        block_ledger = pa.concat_tables(blocks) if blocks else LEDGER_SCHEMA.empty_table()
        self.storage.write_parquet(self["blocks"].path(part.name), block_ledger)
        extra: dict[str, Any] = {
            "filters": retention,
            "order": [st.name for st in stages],
            "blocks": dict(Counter(block_ledger["reason"].to_pylist())),
            **table_counts(result),
        }
        counters: Counter = Counter()
        for st in stages:
            counters.update(getattr(st, "counters", Counter()))
        if counters:
            extra["counters"] = dict(counters)
        return Processed(result, dropped=ledger, extra=extra)
