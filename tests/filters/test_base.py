"""The helpers every filter uses: scores into meta.scores, drop marks, block edits."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from filters.base import BLOCKS_DROPPED, NO_TEXT_LEFT, drop_detail, edit_blocks, mark_drops, with_scores
from pipeline.schema import DOC_SCHEMA, DROP_REASON, plain_meta
from pipeline.stage import split_dropped

IMAGE = {"url": "https://img.example/a.jpg", "sha256": None, "width": 64, "height": 64, "alt": ""}


def docs() -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "id": "t",
                "source": "s",
                "kind": "text",
                "url": "https://a.example/",
                "texts": ["One text."],
                "images": [None],
            },
            {
                "id": "i",
                "source": "s",
                "kind": "interleaved",
                "url": "https://b.example/",
                "texts": ["Before.", None, "After."],
                "images": [None, IMAGE, None],
            },
        ],
        schema=DOC_SCHEMA,
    )


def scores(table: pa.Table) -> list[dict]:
    return [plain_meta(m).get("scores", {}) for m in table["meta"].to_pylist()]


def test_scores_accumulate_field_by_field():
    table = with_scores(docs(), {"words": [2, 1]})
    table = with_scores(table, {"quality": [0.25, None]})
    assert scores(table) == [{"words": 2.0, "quality": 0.25}, {"words": 1.0}]


def test_an_unknown_score_is_an_error():
    with pytest.raises(KeyError, match="not score fields"):
        with_scores(docs(), {"made_up": [1, 2]})


def test_the_first_mark_wins_and_split_dropped_ledgers_it():
    table = mark_drops(docs(), [None, "gopher_min_words"], [None, drop_detail(1, 50)])
    table = mark_drops(table, [None, "c4_min_sentences"], [None, None])
    out = split_dropped(table, "filters", "gopher_quality")
    assert out.kept["id"].to_pylist() == ["t"]
    [row] = out.dropped.to_pylist()
    assert (row["id"], row["stage"], row["reason"]) == ("i", "gopher_quality", "gopher_min_words")
    assert json.loads(row["detail"]) == {"score": 1.0, "threshold": 50}


def test_removing_a_block_removes_its_position_and_is_reported():
    table = edit_blocks(docs(), [["One text."], ["", None, "After."]], [[], [("node_min_words", "{}")]])
    assert table["texts"].to_pylist() == [["One text."], [None, "After."]]
    assert [im is None for im in table["images"].to_pylist()[1]] == [False, True]
    assert table[BLOCKS_DROPPED].to_pylist() == [[], [{"reason": "node_min_words", "detail": "{}"}]]
    assert DROP_REASON not in table.column_names


def test_a_document_left_empty_is_marked():
    table = edit_blocks(docs(), [[""], ["Before.", None, "After."]])
    assert table[DROP_REASON].to_pylist() == [NO_TEXT_LEFT, None]
