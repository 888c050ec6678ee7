"""The stage contract: stages mark rows, the runner's helper moves them to the ledger."""

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.schema import DROP_REASON
from pipeline.stage import Resources, apply_stages, merged_resources, stage


@stage("too_short")
def too_short(batch: pa.Table) -> pa.Table:
    short = pc.less(pc.utf8_length(batch["text"]), 5)
    return batch.append_column(DROP_REASON, pc.if_else(short, "short_text", pa.scalar(None, pa.string())))


@stage("length", Resources(cpus=2))
def add_length(batch: pa.Table) -> pa.Table:
    return batch.append_column("length", pc.utf8_length(batch["text"]))


def test_marked_rows_go_to_the_ledger_with_stage_and_reason():
    batch = pa.table(
        {"id": ["a", "b", "c"], "url": ["u1", "u2", "u3"], "text": ["hello world", "hi", "a long one"]}
    )
    out = apply_stages(batch, [too_short, add_length], step="documents")
    assert out.kept["id"].to_pylist() == ["a", "c"]
    assert out.kept["length"].to_pylist() == [11, 10]
    assert DROP_REASON not in out.kept.column_names
    assert out.dropped.to_pylist() == [
        {
            "id": "b",
            "url": "u2",
            "step": "documents",
            "stage": "too_short",
            "reason": "short_text",
            "detail": None,
            "source": None,  # the rows had no source, kind or meta.scores
            "kind": None,
            "scores": None,
        }
    ]


def test_a_worker_gets_the_largest_needs_of_its_stages():
    assert merged_resources([too_short, add_length]) == Resources(cpus=2)
    assert Resources(cpus=1, gpus=0.5).ray_options() == {"num_cpus": 1, "num_gpus": 0.5}
