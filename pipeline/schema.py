"""The one record: a document as an Arrow row with parallel ``texts``/``images`` lists.

``texts[i]`` is set exactly when ``images[i]`` is null (the OBELICS / MINT-1T layout). ``meta`` is a
struct with a fixed set of nullable fields: later steps add their fields here, in one place.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import xxhash

KINDS = ("text", "pair", "interleaved")

IMAGE_TYPE = pa.struct(
    [
        ("url", pa.string()),
        ("sha256", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("alt", pa.string()),
    ]
)

#: The filter scores of a document (``meta.scores``): every filter writes its measurements here, and
#: a separate threshold decides, so a kept document can be thresholded again later without rerunning
#: a model. Null where a filter did not run or does not apply (docs/FILTERS.md names each one).
#: Declared once, here, by filter; the filters take their fields from it.
SCORE_GROUPS: dict[str, tuple[str, ...]] = {
    # language identification (fastText lid.176)
    "language": ("language_score",),
    # fastText classifiers
    "classifiers": ("quality", "nsfw"),
    # safety lexicon
    "lexicon": ("lexicon_ratio", "lexicon_count"),
    "gopher_quality": (
        "words",
        "mean_word_length",
        "symbol_word_ratio",
        "bullet_lines_frac",
        "ellipsis_lines_frac",
        "alpha_words_frac",
        "stop_words",
    ),
    "gopher_repetition": (
        "dup_line_frac",
        "dup_para_frac",
        "dup_line_char_frac",
        "dup_para_char_frac",
        *(f"top_{n}gram_frac" for n in (2, 3, 4)),
        *(f"dup_{n}gram_frac" for n in (5, 6, 7, 8, 9, 10)),
    ),
    "c4": ("c4_sentences", "c4_lines_removed_frac"),
    "fineweb": ("line_punct_frac", "short_line_frac", "dup_char_frac", "newline_word_ratio"),
    # OBELICS-style node rules and per-block language id: text blocks removed from the document
    "blocks": ("blocks_dropped",),
    # CLIP (the clip_filters step): pair: image–caption cosine; interleaved: the mean over its images
    # of the image–nearby-text cosine; the highest NSFW score of its images; images it removed
    "clip": ("clip_similarity", "nsfw_image", "images_removed"),
}
#: Every score, in one order: the fields of ``meta.scores``.
SCORE_FIELDS = tuple(name for group in SCORE_GROUPS.values() for name in group)

SCORES_TYPE = pa.struct([(name, pa.float32()) for name in SCORE_FIELDS])

IMAGE_SCORES_TYPE = pa.struct(
    [
        ("position", pa.int32()),  # the index in texts/images
        ("clip_similarity", pa.float32()),  # to the caption (pair) or the text beside it (interleaved)
        ("nsfw", pa.float32()),
    ]
)

META_TYPE = pa.struct(
    [
        ("title", pa.string()),
        ("language", pa.string()),
        ("crawl_date", pa.string()),
        ("warc_path", pa.string()),
        ("warc_offset", pa.int64()),
        ("target_uri", pa.string()),
        ("payload_digest", pa.string()),
        ("charset", pa.string()),
        ("url_category", pa.string()),  # the URL blocklist category that matched, if any
        ("scores", SCORES_TYPE),
        # per image position, what the clip_filters step measured (docs/CLIP.md)
        ("image_scores", pa.list_(IMAGE_SCORES_TYPE)),
    ]
)

DOC_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("kind", pa.string()),
        ("url", pa.string()),
        ("texts", pa.list_(pa.string())),
        ("images", pa.list_(IMAGE_TYPE)),
        ("meta", META_TYPE),
    ]
)

# A stage marks a row it wants dropped by setting this column; the runner moves such rows to the
# removal ledger with the stage name, so nothing is ever silently lost.
DROP_REASON = "_drop_reason"

LEDGER_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("url", pa.string()),
        ("step", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        # the document's source and kind (null where the step's rows have none: raw records)
        ("source", pa.string()),
        ("kind", pa.string()),
        # the document's meta.scores when it was dropped (null where the step had none): with the kept
        # documents' scores, each score's distribution over every document that reached its filter
        ("scores", SCORES_TYPE),
    ]
)


def doc_id(source: str, url: str, location: str) -> str:
    """A stable id: a hash of (source, url, where the record came from) — never a uuid."""
    h = xxhash.xxh3_128()
    for part in (source, url, location):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def empty_meta() -> dict[str, Any]:
    return {field.name: None for field in META_TYPE}


def plain_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """A document's meta without its unset fields (and unset scores), as the shards carry it."""
    out = {k: v for k, v in meta.items() if v is not None and k not in ("scores", "image_scores")}
    # float32 precision: 7 significant digits (0.1, not 0.10000000149011612)
    scores = {k: float(f"{v:.7g}") for k, v in (meta.get("scores") or {}).items() if v is not None}
    if scores:
        out["scores"] = scores
    if meta.get("image_scores"):
        out["image_scores"] = [
            {k: v if k == "position" or v is None else float(f"{v:.7g}") for k, v in row.items()}
            for row in meta["image_scores"]
        ]
    return out


def conform(table: pa.Table, schema: pa.Schema = DOC_SCHEMA) -> pa.Table:
    """Select and cast ``table`` to ``schema`` (extra columns are dropped, missing ones fail)."""
    return table.select(schema.names).cast(schema)


def check_document(row: dict[str, Any]) -> list[str]:
    """Problems with one document row (empty when it is well formed)."""
    problems = []
    if row["kind"] not in KINDS:
        problems.append(f"kind {row['kind']!r} not one of {KINDS}")
    texts, images = row["texts"], row["images"]
    if len(texts) != len(images):
        problems.append("texts and images differ in length")
    for i, (t, im) in enumerate(zip(texts, images, strict=False)):
        if (t is None) == (im is None):
            problems.append(f"position {i}: exactly one of texts/images must be set")
    n_images = sum(im is not None for im in images)
    if row["kind"] == "text" and n_images:
        problems.append("a text document holds images")
    if row["kind"] in ("pair", "interleaved") and not n_images:
        problems.append(f"a {row['kind']} document holds no image")
    return problems
