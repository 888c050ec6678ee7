"""The ``clip_filters`` step: the text beside each image embedded, and the image filters on CLIP.

A part per documents part, after the image join. For each fetched image of a document it measures,
from the image's embedding (the ``clip`` step) and the text embeddings it computes here:

- ``clip_similarity``: the cosine between the image and its text. For a pair, the caption. For
  an interleaved image, the text **beside it**: the end of the text block before it and the
  start of the block after it (each cut to 300 characters, CLIP reads 77 tokens), the higher of the
  two; position matters, so the rest of the page does not count (NeMo Curator takes the maximum
  over the whole document).
- ``nsfw``: zero-shot, the softmax mass (at CLIP's logit scale 100) on unsafe concept prompts
  against safe ones, or a linear head from a file (``sigmoid(w·x + b)``).

and then applies the thresholds of ``[clip.filters]`` (a threshold of none only scores):

- size and aspect ratio of the original image (OBELICS: sides 150–20,000 px, aspect ≤ 2);
- ``nsfw_max``; ``interleaved_min_similarity`` (interleaved images only);
- ``duplicate_similarity``: an image this close to an earlier image of the same document is removed;
  a pair whose image is this close to another image of the job (``work/clip/duplicates.parquet``,
  the ``clip`` step's exact search) is dropped unless its image is the one kept (smallest sha256);
- ``pair_min_similarity``: the pair is dropped (LAION: 0.28 for ViT-B/32).

A pair whose image fails a rule is dropped (``clip_<rule>`` in the ledger). An interleaved
document loses the failing image (its position goes; a row in ``<part>.images.parquet`` says why)
and becomes a ``text`` document if no image is left. Per-image scores go into
``meta.image_scores``, document summaries into ``meta.scores``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.config import NSFW_PROMPTS, SAFE_PROMPTS, ClipFiltersConfig
from pipeline.clip.config import ClipConfig
from pipeline.clip.images import gpus_per_actor, read_embeddings
from pipeline.clip.model import ClipEncoder, model_id
from pipeline.documents import table_counts
from pipeline.images.table import files_holding
from pipeline.runner import Part
from pipeline.schema import DROP_REASON, SCORE_FIELDS
from pipeline.stage import DROP_DETAIL, Resources
from pipeline.step import Data, DocumentStep, Processed, marked_documents
from pipeline.storage import Storage

log = logging.getLogger(__name__)

CLIP_FILTERS = "clip_filters"
NEARBY_CHARS = 300

IMAGE_LEDGER_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("position", pa.int32()),
        ("url", pa.string()),
        ("sha256", pa.string()),
        ("rule", pa.string()),
        ("score", pa.float64()),
        ("threshold", pa.float64()),
    ]
)


def nearby_texts(texts: list[str | None], position: int) -> list[str]:
    """The text beside the image at ``position``: the end of the block before, the start of the one after."""
    out = []
    before = next((t for t in reversed(texts[:position]) if t), None)
    after = next((t for t in texts[position + 1 :] if t), None)
    if before:
        out.append(before[-NEARBY_CHARS:])
    if after:
        out.append(after[:NEARBY_CHARS])
    return out


def image_rule(
    f: ClipFiltersConfig, width: int | None, height: int | None
) -> tuple[str, float, float] | None:
    """The OBELICS size rule an image of this original size fails: (rule, value, threshold), or None."""
    if not width or not height:
        return None
    small, large = min(width, height), max(width, height)
    if f.min_side is not None and small < f.min_side:
        return "image_too_small", small, f.min_side
    if f.max_side is not None and large > f.max_side:
        return "image_too_large", large, f.max_side
    if f.max_aspect_ratio is not None and large / small > f.max_aspect_ratio:
        return "image_aspect_ratio", large / small, f.max_aspect_ratio
    return None


class ImageScorer:
    """Text embeddings and the NSFW score, with the model loaded once (per actor)."""

    def __init__(self, cfg: ClipConfig, nsfw_head: str | None = None):
        self.cfg = cfg
        self.encoder = ClipEncoder(cfg)
        head = nsfw_head
        if head:
            data = np.load(head)
            self.head: tuple[np.ndarray, float] | None = (
                data["weight"].astype(np.float32),
                float(data["bias"]),
            )
        else:
            self.head = None
            prompts = self.encoder.encode_texts(NSFW_PROMPTS + SAFE_PROMPTS).astype(np.float32)
            self.prompts, self.unsafe = prompts, len(NSFW_PROMPTS)

    def nsfw(self, images: np.ndarray) -> np.ndarray:
        x = images.astype(np.float32)
        if self.head is not None:
            w, b = self.head
            return 1.0 / (1.0 + np.exp(-(x @ w + b)))
        logits = 100.0 * x @ self.prompts.T
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return p[:, : self.unsafe].sum(axis=1)


class ClipFiltersStep(DocumentStep):
    """Joined documents → documents with CLIP scores, filtered by ``[clip.filters]``.

    Reads ``documents``, the image ``table`` (original sizes), the ``clip`` step's ``embeddings``
    (and ``duplicates`` when ``duplicate_similarity`` is set); writes ``documents``, ``ledger`` and
    ``images`` (a row per image removed from a kept document: rule, score, threshold)."""

    name = CLIP_FILTERS
    drop_stage = "clip"

    def __init__(
        self,
        storage: Storage,
        doc_parts: list[Part],
        documents: Data,
        clip: ClipConfig,
        cfg: ClipFiltersConfig,
        table: Data,
        embeddings: Data,
        duplicates: Data | None = None,
    ):
        super().__init__(
            storage, doc_parts, documents, table=table, embeddings=embeddings, duplicates=duplicates
        )
        self.clip = clip
        self.cfg = cfg
        self.output("images", "work/{step}/{part}.images.parquet")
        self._scorer: ImageScorer | None = None

    def settings(self) -> dict[str, Any]:
        return {"model": model_id(self.clip), "filters": self.cfg.model_dump(mode="json")}

    @property
    def resources(self) -> Resources:  # type: ignore[override]
        """Read when the step's actors start (Ray is up by then): a GPU each when the cluster has them."""
        return Resources(cpus=1, gpus=gpus_per_actor(self.clip))

    @property
    def scorer(self) -> ImageScorer:
        if self._scorer is None:
            self._scorer = ImageScorer(self.clip, self.cfg.nsfw_head)
        return self._scorer

    def _lookup(self, shas: list[str]) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, int]]]:
        """sha256 → embedding, and sha256 → original (width, height), for these images."""
        vectors = read_embeddings(self.storage, self.inputs["embeddings"], shas)
        files = files_holding(self.storage, self.inputs["table"], shas)
        if not vectors or not files:
            return vectors, {}
        sizes = self.storage.read_parquets(
            files,
            ["sha256", "original_width", "original_height"],
            pc.field("sha256").isin(pa.array(shas, pa.string())),
        )
        dims = {r["sha256"]: (r["original_width"], r["original_height"]) for r in sizes.to_pylist()}
        return vectors, dims

    def _duplicates(self, shas: list[str]) -> dict[str, float]:
        """sha256 → similarity, for these images that are near duplicates of another image of the job."""
        duplicates = self.inputs.get("duplicates")
        if self.cfg.duplicate_similarity is None or duplicates is None:
            return {}
        found = self.storage.read_parquets(
            [duplicates.path()], where=pc.field("sha256").isin(pa.array(shas, pa.string()))
        )
        return dict(zip(found["sha256"].to_pylist(), found["similarity"].to_pylist(), strict=True))

    def process(self, table: pa.Table, part: Part) -> Processed:
        f = self.cfg
        docs = table.to_pylist()
        shas = sorted({im["sha256"] for d in docs for im in d["images"] if im and im["sha256"]})
        vectors, sizes = self._lookup(shas)
        duplicates = self._duplicates(shas)
        # the texts to embed: each pair's caption, each interleaved image's neighbours
        queries: list[str] = []
        asks: dict[tuple[int, int], list[int]] = {}
        for di, d in enumerate(docs):
            for pos, im in enumerate(d["images"]):
                if im is None or im["sha256"] not in vectors:
                    continue
                near = [t for t in d["texts"] if t] if d["kind"] == "pair" else nearby_texts(d["texts"], pos)
                asks[(di, pos)] = list(range(len(queries), len(queries) + len(near)))
                queries.extend(near)
        scorer = self.scorer if vectors else None
        text_vecs = scorer.encoder.encode_texts(queries).astype(np.float32) if scorer and queries else None
        nsfw = (
            dict(zip(vectors, scorer.nsfw(np.stack(list(vectors.values()))), strict=True)) if scorer else {}
        )
        kept, image_ledger = [], []
        removed_by: Counter = Counter()
        scored = 0
        for di, d in enumerate(docs):
            kept_positions, scores, drop = [], [], None
            kept_vecs: list[np.ndarray] = []
            for pos, im in enumerate(d["images"]):
                if im is None or im["sha256"] not in vectors:
                    kept_positions.append(pos)
                    continue
                vec = vectors[im["sha256"]].astype(np.float32)
                rows = asks.get((di, pos), [])
                sim = float(max(text_vecs[rows] @ vec)) if rows and text_vecs is not None else None
                unsafe = float(nsfw[im["sha256"]])
                scores.append({"position": pos, "clip_similarity": sim, "nsfw": unsafe})
                rule = image_rule(f, *sizes.get(im["sha256"], (None, None)))
                if rule is None and f.nsfw_max is not None and unsafe > f.nsfw_max:
                    rule = ("image_nsfw", unsafe, f.nsfw_max)
                if rule is None and d["kind"] == "interleaved" and f.interleaved_min_similarity is not None:
                    if sim is not None and sim < f.interleaved_min_similarity:
                        rule = ("image_text_similarity", sim, f.interleaved_min_similarity)
                if rule is None and f.duplicate_similarity is not None and kept_vecs:
                    closest = float(max(np.stack(kept_vecs) @ vec))
                    if closest >= f.duplicate_similarity:
                        rule = ("image_duplicate", closest, f.duplicate_similarity)
                if rule is None and d["kind"] == "pair" and im["sha256"] in duplicates:
                    rule = ("image_near_duplicate", duplicates[im["sha256"]], f.duplicate_similarity)
                if d["kind"] == "pair" and rule is None and f.pair_min_similarity is not None:
                    if sim is not None and sim < f.pair_min_similarity:
                        rule = ("pair_similarity", sim, f.pair_min_similarity)
                if rule is None:
                    kept_positions.append(pos)
                    kept_vecs.append(vec)
                    continue
                removed_by[rule[0]] += 1
                image_ledger.append(
                    {
                        "id": d["id"],
                        "position": pos,
                        "url": im["url"],
                        "sha256": im["sha256"],
                        "rule": rule[0],
                        "score": rule[1],
                        "threshold": rule[2],
                    }
                )
                if d["kind"] == "pair":
                    drop = rule
            scored += len(scores)
            meta = dict(d["meta"])
            meta["image_scores"] = scores or None
            doc_scores = dict(meta["scores"] or dict.fromkeys(SCORE_FIELDS))
            sims = [s["clip_similarity"] for s in scores if s["clip_similarity"] is not None]
            doc_scores["clip_similarity"] = float(np.mean(sims)) if sims else None
            doc_scores["nsfw_image"] = max((s["nsfw"] for s in scores), default=None)
            doc_scores["images_removed"] = float(len(d["images"]) - len(kept_positions)) if scores else None
            meta["scores"] = doc_scores
            if drop is not None:
                detail = json.dumps({"score": round(drop[1], 6), "threshold": drop[2]})
                kept.append({**d, DROP_REASON: f"clip_{drop[0]}", DROP_DETAIL: detail})
                continue
            out = {**d, "meta": meta}
            if len(kept_positions) < len(d["images"]):
                out["texts"] = [d["texts"][p] for p in kept_positions]
                out["images"] = [d["images"][p] for p in kept_positions]
                if d["kind"] == "interleaved" and not any(i is not None for i in out["images"]):
                    out["kind"] = "text"
                    out["texts"], out["images"] = ["\n\n".join(t for t in out["texts"] if t)], [None]
            kept.append(out)
        table = marked_documents(kept)  # the pairs it drops marked, for the ledger
        self.storage.write_parquet(
            self["images"].path(part.name), pa.Table.from_pylist(image_ledger, schema=IMAGE_LEDGER_SCHEMA)
        )
        return Processed(
            table,
            extra={
                "images_scored": scored,
                "images_removed": dict(sorted(removed_by.items())),
                **table_counts(table.filter(pc.is_null(table[DROP_REASON]))),
            },
        )
