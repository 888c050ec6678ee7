"""Connected components by star rounds equal union-find, on graphs made to need many rounds."""

from __future__ import annotations

import random

import polars as pl
import pytest

from pipeline.dedup.components import RESULT, BucketsStep, ComponentsStep, both_directions, write_grouped
from pipeline.step import Data
from pipeline.storage import Storage


def node(i: int, part: int = 0) -> str:
    return f"{random.Random(i).getrandbits(128):032x}{part:08x}"


def union_find_labels(edges: list[tuple[str, str]]) -> dict[str, str]:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in list(parent)}


def components(tmp_path, edges: list[tuple[str, str]], n: int) -> tuple[dict[str, str], int]:
    """Run the components step on ``edges`` as the buckets step would have written them."""
    storage = Storage(str(tmp_path))
    keys = Data("dedup_keys", "keys", "work/dedup_keys/{part}.parquet")
    buckets = BucketsStep(storage, keys, [], n, None)
    pairs = pl.DataFrame(
        {"a": [a for a, _ in edges], "b": [b for _, b in edges]}, schema=[("a", pl.String), ("b", pl.String)]
    )
    df = both_directions(pairs, n)
    for j, part in enumerate(buckets.parts()):  # spread the edges over the bucket outputs
        write_grouped(storage, buckets["edges"].path(part.name), df[j::n], "dest")
    result = ComponentsStep(storage, buckets).run(ray=None)
    labels = storage.read_parquets(storage.read_json(RESULT)["labels"]).to_pylist()
    return {r["node"]: r["label"] for r in labels}, result.stats.extra["rounds"]


@pytest.mark.parametrize("n", [1, 3])
def test_a_long_chain_is_one_cluster_around_its_smallest_node(tmp_path, n):
    chain = [node(i) for i in range(300)]
    edges = list(zip(chain, chain[1:], strict=False))
    labels, rounds = components(tmp_path, edges, n)
    assert labels == union_find_labels(edges)
    assert set(labels.values()) == {min(chain)}
    assert rounds > 3  # a chain is the hard case: no single round settles it


def test_random_graphs_match_union_find(tmp_path):
    rng = random.Random(5)
    nodes = [node(i, part=i % 4) for i in range(2000)]
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(1500)]
    edges = [(a, b) for a, b in edges if a != b]
    labels, _ = components(tmp_path, edges, 4)
    assert labels == union_find_labels(edges)


def test_no_edges_no_clusters(tmp_path):
    labels, rounds = components(tmp_path, [], 2)
    assert labels == {} and rounds == 1
