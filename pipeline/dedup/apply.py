"""Dedup step 4, ``dedup``: each documents part keeps the documents that lead their cluster.

Part ``P`` reads its rows of every labels file (node → label, the cluster's smallest node) and of
every rules file (node → the strongest rule that linked it), computes its documents' nodes again and
drops each document whose label is another node. A dropped document is a ledger row: reason
``exact_url``, ``exact_text``, ``exact_images`` or ``minhash``, detail ``{"cluster": …, "kept": …}``
— the cluster id (a hash of the kept node) and the id of the document kept in its place.
"""

from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from pipeline.config import JobSpec
from pipeline.dedup.components import RESULT, read_partition, rules_files
from pipeline.dedup.keys import RULES, input_path, node_id, nodes_of, partitions
from pipeline.runner import Part, PartStats
from pipeline.schema import LEDGER_SCHEMA
from pipeline.steps import PerDocumentPart, ledger_path, table_counts
from pipeline.storage import Storage

DEDUP = "dedup"


def dedup_path(part: str) -> str:
    return f"work/{DEDUP}/{part}.parquet"


def cluster_id(label: str) -> str:
    return xxhash.xxh3_64_hexdigest(label.encode())


class DedupStep(PerDocumentPart):
    """Documents + clusters → the documents kept, and a ledger row for each one removed."""

    name = DEDUP

    def __init__(self, spec: JobSpec, storage: Storage, doc_parts: list[Part]):
        super().__init__(spec, storage, doc_parts)
        self.n = partitions(spec, doc_parts)

    def _lookup(self, index: int) -> tuple[dict[str, str], dict[str, int]]:
        """node → label and node → rule, for the nodes of documents part ``index``."""
        result = self.storage.read_json(RESULT)
        labels = read_partition(self.storage, result["labels"], "part", index)
        rules = read_partition(self.storage, rules_files(self.n), "part", index)
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

    def run_part(self, part: Part) -> PartStats:
        docs = self.storage.read_parquet(input_path(self.spec, part.name))
        label_of, rule_of = self._lookup(part.args["index"])
        order = self.spec.dedup.keep  # only what the keep score reads is turned into Python
        needed = ["id", "meta"] + (["texts", "images"] if order in ("text_chars", "images") else [])
        nodes = nodes_of(docs.select(needed).to_pylist(), part.args["index"], order)
        keep, ledger, clusters = [], [], 0
        ids, urls = docs["id"].to_pylist(), docs["url"].to_pylist()
        for i, node in enumerate(nodes):
            label = label_of.get(node, node)
            keep.append(label == node)
            if node in label_of and label == node:
                clusters += 1
            if label != node:
                ledger.append(
                    {
                        "id": ids[i],
                        "url": urls[i],
                        "step": self.name,
                        "stage": self.name,
                        "reason": RULES[rule_of.get(node, len(RULES) - 1)],
                        "detail": json.dumps({"cluster": cluster_id(label), "kept": node_id(label)}),
                    }
                )
        kept = docs.filter(pa.array(keep, pa.bool_())) if docs.num_rows else docs
        dropped = pa.Table.from_pylist(ledger, schema=LEDGER_SCHEMA)
        self.storage.write_parquet(dedup_path(part.name), kept)
        self.storage.write_parquet(ledger_path(self.name, part.name), dropped)
        return PartStats(
            rows_in=docs.num_rows,
            rows_out=kept.num_rows,
            drops=Counter(dropped["reason"].to_pylist()),
            extra={**table_counts(kept), "clusters": clusters},
        )


def removed_ids(storage: Storage) -> pa.Table:
    """Every ledger row of the dedup step (for tests and reports)."""
    files = [f"work/{DEDUP}/{n}" for n in storage.list(f"work/{DEDUP}", ".ledger.parquet")]
    if not files:
        return LEDGER_SCHEMA.empty_table()
    table = storage.read_parquets(files)
    return table.filter(pc.equal(table["step"], DEDUP))
