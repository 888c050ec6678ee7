"""Dedup step 4, ``dedup``: each documents part keeps the documents that lead their cluster.

Part ``P`` reads its rows of every labels file (node → label, the cluster's smallest node) and of
every rules file (node → the strongest rule that linked it), computes its documents' nodes again and
drops each document whose label is another node. A dropped document is a ledger row: reason
``exact_url``, ``exact_text``, ``exact_images`` or ``minhash``, detail ``{"cluster": …, "kept": …}``
— the cluster id (a hash of the kept node) and the id of the document kept in its place.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from pipeline.dedup.components import ComponentsStep, read_partition
from pipeline.dedup.keys import RULES, node_id, nodes_of
from pipeline.documents import table_counts
from pipeline.runner import Part
from pipeline.schema import DROP_REASON, LEDGER_SCHEMA
from pipeline.stage import DROP_DETAIL
from pipeline.step import Data, DocumentStep, Processed
from pipeline.storage import Storage

DEDUP = "dedup"


def cluster_id(label: str) -> str:
    return xxhash.xxh3_64_hexdigest(label.encode())


class DedupStep(DocumentStep):
    """Documents + clusters → the documents kept, and a ledger row for each one removed."""

    name = DEDUP

    def __init__(
        self,
        storage: Storage,
        doc_parts: list[Part],
        documents: Data,
        keep: str,
        components: ComponentsStep,
    ):
        super().__init__(
            storage, doc_parts, documents, result=components["result"], rules=components.buckets["rules"]
        )
        self.keep = keep
        self.rules_files = components.buckets.rules_files()

    def settings(self) -> dict[str, Any]:
        return {"keep": self.keep}

    def _lookup(self, index: int) -> tuple[dict[str, str], dict[str, int]]:
        """node → label and node → rule, for the nodes of documents part ``index``."""
        result = self.storage.read_json(self.inputs["result"].path())
        labels = read_partition(self.storage, result["labels"], "part", index)
        rules = read_partition(self.storage, self.rules_files, "part", index)
        label_of = (
            dict(zip(labels["node"].to_list(), labels["label"].to_list(), strict=True))
            if labels.height
            else {}
        )
        rule_of: dict[str, int] = {}
        if rules.height:
            for node, rule in zip(rules["node"].to_list(), rules["rule"].to_list(), strict=True):
                rule_of[node] = min(rule, rule_of.get(node, rule))
        return label_of, rule_of

    def process(self, docs: pa.Table, part: Part) -> Processed:
        label_of, rule_of = self._lookup(part.args["index"])
        order = self.keep  # only what the keep score reads is turned into Python
        needed = ["id", "meta"] + (["texts", "images"] if order in ("text_chars", "images") else [])
        nodes = nodes_of(docs.select(needed).to_pylist(), part.args["index"], order)
        reasons: list[str | None] = []
        details: list[str | None] = []
        clusters = 0
        for node in nodes:
            label = label_of.get(node, node)
            if node in label_of and label == node:
                clusters += 1
            dropped = label != node
            reasons.append(RULES[rule_of.get(node, len(RULES) - 1)] if dropped else None)
            details.append(
                json.dumps({"cluster": cluster_id(label), "kept": node_id(label)}) if dropped else None
            )
        marked = docs.append_column(DROP_REASON, pa.array(reasons, pa.string()))
        marked = marked.append_column(DROP_DETAIL, pa.array(details, pa.string()))
        kept = docs.filter(pc.is_null(marked[DROP_REASON]))
        return Processed(marked, extra={**table_counts(kept), "clusters": clusters})


def removed_ids(storage: Storage) -> pa.Table:
    """Every ledger row of the dedup step (for tests and reports)."""
    files = [f"work/{DEDUP}/{n}" for n in storage.list(f"work/{DEDUP}", ".ledger.parquet")]
    if not files:
        return LEDGER_SCHEMA.empty_table()
    table = storage.read_parquets(files)
    return table.filter(pc.equal(table["step"], DEDUP))
