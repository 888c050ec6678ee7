"""What every filter shares: the text it reads, the scores it writes, the rows and blocks it drops.

A filter is a stage (``pipeline.stage``): ``(pa.Table) -> pa.Table`` over document rows. It

* writes its measurements into ``meta.scores`` with :func:`with_scores` (and ``meta.language`` /
  ``meta.url_category`` with :func:`with_meta`), for every document it looks at;
* marks documents that fail a threshold with :func:`mark_drops`: the reason is the rule's name, the
  detail a JSON object ``{"score": …, "threshold": …}`` (:func:`drop_detail`);
* edits text with :func:`edit_blocks`: a text block set to ``""`` is removed with its position, and
  each removed block or paragraph may be reported (reason + detail); the filters step writes those
  to the block ledger. A document left with neither text nor images is dropped (``no_text_left``);
* may count things that are neither scores nor drops (lines C4 removed, redactions) in a
  ``counters`` attribute (a ``Counter``), which the filters step adds to its stats and resets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.schema import DROP_REASON, SCORES_TYPE

#: Text blocks of a document joined into one text: a block boundary is a paragraph boundary.
BLOCK_SEP = "\n\n"

#: The column through which a stage reports removed blocks/paragraphs: per document a list of
#: {reason, detail}; the filters step moves it into the block ledger.
BLOCKS_DROPPED = "_blocks_dropped"
BLOCKS_TYPE = pa.list_(pa.struct([("reason", pa.string()), ("detail", pa.string())]))

NO_TEXT_LEFT = "no_text_left"


def block_texts(table: pa.Table) -> list[list[str | None]]:
    """Each document's ``texts`` list (None at image positions)."""
    return table["texts"].to_pylist()


def joined_text(blocks: Sequence[str | None]) -> str:
    """A document's text: its text blocks, in order, separated by a blank line."""
    return BLOCK_SEP.join(t for t in blocks if t)


def doc_texts(table: pa.Table) -> list[str]:
    """Each document's text as one string (:func:`joined_text`)."""
    return [joined_text(blocks) for blocks in block_texts(table)]


def kind_mask(table: pa.Table, kinds: Sequence[str]) -> list[bool]:
    """Whether each document's kind is one of ``kinds``."""
    return pc.is_in(table["kind"], value_set=pa.array(list(kinds), pa.string())).to_pylist()


def meta_values(table: pa.Table, field: str) -> list[Any]:
    """Each document's ``meta.<field>``; ``scores.<name>`` reads one score."""
    column = table["meta"].combine_chunks()
    for name in field.split("."):
        column = pc.struct_field(column, name)
    return column.to_pylist()


def _replace_meta(table: pa.Table, updates: Mapping[str, pa.Array]) -> pa.Table:
    meta = table["meta"].combine_chunks()
    fields = list(meta.type)
    children = [updates[f.name] if f.name in updates else pc.struct_field(meta, f.name) for f in fields]
    new = pa.StructArray.from_arrays(children, fields=fields)
    return table.set_column(table.schema.get_field_index("meta"), "meta", new)


def with_meta(table: pa.Table, field: str, values: Sequence[Any] | pa.Array) -> pa.Table:
    """Set ``meta.<field>`` of every row (``values``: one per row, None leaves a null)."""
    typ = table.schema.field("meta").type.field(field).type
    return _replace_meta(table, {field: pa.array(values, typ)})


def with_scores(table: pa.Table, values: Mapping[str, Sequence[float | None] | pa.Array]) -> pa.Table:
    """Set the named ``meta.scores`` fields of every row; the other scores stay as they are."""
    unknown = set(values) - {f.name for f in SCORES_TYPE}
    if unknown:
        raise KeyError(f"not score fields (pipeline.schema.SCORE_FIELDS): {sorted(unknown)}")
    if not table.num_rows:
        return table
    scores = pc.struct_field(table["meta"].combine_chunks(), "scores")
    children = [
        pa.array(values[f.name], pa.float32()) if f.name in values else pc.struct_field(scores, f.name)
        for f in SCORES_TYPE
    ]
    return _replace_meta(table, {"scores": pa.StructArray.from_arrays(children, fields=list(SCORES_TYPE))})


def drop_detail(score: float | None, threshold: float | None, **more: Any) -> str:
    """The ledger detail of a drop: the score, the threshold it failed, anything else worth seeing."""
    rounded = None if score is None else round(float(score), 4)
    body: dict[str, Any] = {"score": rounded, "threshold": threshold}
    body.update(more)
    return json.dumps(body, ensure_ascii=False, sort_keys=True)


def mark_drops(table: pa.Table, reasons: Sequence[str | None], details: Sequence[str | None]) -> pa.Table:
    """Mark rows to drop (reason None: keep). Marks already on the table win (the first rule)."""
    reasons_arr = pa.array(reasons, pa.string())
    details_arr = pa.array(details, pa.string())
    if DROP_REASON in table.column_names:
        earlier = table[DROP_REASON].combine_chunks()
        had = pc.is_valid(earlier)
        reasons_arr = pc.if_else(had, earlier, reasons_arr)
        details_arr = pc.if_else(had, table["_drop_detail"].combine_chunks(), details_arr)
        table = table.drop_columns([DROP_REASON, "_drop_detail"])
    return table.append_column(DROP_REASON, reasons_arr).append_column("_drop_detail", details_arr)


def edit_blocks(
    table: pa.Table,
    texts: Sequence[Sequence[str | None]],
    removed: Sequence[Sequence[tuple[str, str]]] | None = None,
) -> pa.Table:
    """Replace each document's text blocks with ``texts`` (same length and image positions as
    before); a text block set to ``""`` is removed together with its position. ``removed`` lists,
    per document, (reason, detail) of each removed block or paragraph, for the block ledger.
    A document with no text and no image left is marked ``no_text_left``."""
    old_images = table["images"].to_pylist()
    new_texts, new_images, reasons = [], [], []
    for blocks, images in zip(texts, old_images, strict=True):
        images = images or [None] * len(blocks)
        keep = [i for i, t in enumerate(blocks) if t != ""]
        new_texts.append([blocks[i] for i in keep])
        new_images.append([images[i] for i in keep])
        reasons.append(None if keep else NO_TEXT_LEFT)
    texts_i = table.schema.get_field_index("texts")
    images_i = table.schema.get_field_index("images")
    table = table.set_column(texts_i, "texts", pa.array(new_texts, table.schema.field("texts").type))
    table = table.set_column(images_i, "images", pa.array(new_images, table.schema.field("images").type))
    if removed is not None:
        rows = [[{"reason": r, "detail": d} for r, d in doc] for doc in removed]
        if BLOCKS_DROPPED in table.column_names:
            before = table[BLOCKS_DROPPED].to_pylist()
            rows = [(b or []) + r for b, r in zip(before, rows, strict=True)]
            table = table.drop_columns([BLOCKS_DROPPED])
        table = table.append_column(BLOCKS_DROPPED, pa.array(rows, BLOCKS_TYPE))
    if any(reasons):
        table = mark_drops(table, reasons, [None] * len(reasons))
    return table
