"""The clip_filters step: similarity, NSFW, size and duplicate rules drop exactly the rows expected."""

import hashlib

import numpy as np
import pyarrow as pa
import pytest

from filters.clip import ClipFiltersStep, image_rule, nearby_texts
from jobs.spec import parse_job
from pipeline.clip.images import embeddings_table, near_duplicates
from pipeline.images.table import IMAGE_TABLE_SCHEMA
from pipeline.runner import Part
from pipeline.schema import DOC_SCHEMA, empty_meta
from pipeline.step import Data
from pipeline.storage import Storage

#: What the step reads, as the steps before it in the job's graph write them.
JOINED = Data("join", "documents", "work/join/{part}.parquet")
TABLE = Data("image_table", "table", "work/image_table/{part}.parquet")
EMBEDDINGS = Data("clip", "embeddings", "work/clip/{part}.parquet")

E = np.eye(4, dtype=np.float32)
#: image sha256 → (embedding, original width, original height); e[3] carries the stub's NSFW score
IMAGES = {
    "a": (E[0], 640, 480),
    "b": (E[1], 640, 480),
    "small": (E[0], 100, 100),
    "dup": ((0.99 * E[0] + 0.141 * E[1]) / np.linalg.norm(0.99 * E[0] + 0.141 * E[1]), 640, 480),
    "wide": (E[1], 1000, 300),
    "unsafe": ((E[0] + E[3]) / np.sqrt(2), 640, 480),
}
#: the image table keys images by sha256 (hex): each name's stands in
SHA = {name: hashlib.sha256(name.encode()).hexdigest() for name in IMAGES}
TEXTS = {"a red kite": E[0], "tax law": E[2], "about the kite": E[0], "the end": E[2]}


class StubEncoder:
    def encode_texts(self, texts):
        return np.stack([TEXTS[t] for t in texts]).astype(np.float16)


class StubScorer:
    """Text vectors from TEXTS; the NSFW score is an image's last coordinate (as if from a head)."""

    encoder = StubEncoder()

    def nsfw(self, images):
        return images.astype(np.float32)[:, 3]


def image(sha):
    return {
        "url": f"https://img.example/{sha}.jpg",
        "sha256": SHA.get(sha),
        "width": 64,
        "height": 64,
        "alt": "",
    }


def doc(id_, kind, texts, images):
    return {
        "id": id_,
        "source": "s",
        "kind": kind,
        "url": f"https://s.example/{id_}",
        "texts": texts,
        "images": images,
        "meta": empty_meta(),
    }


@pytest.fixture
def run(tmp_path):
    spec = parse_job(
        {
            "output": str(tmp_path),
            "sources": [{"paths": ["x"]}],
            "clip": {
                "enabled": True,
                "filters": {
                    "nsfw_max": 0.5,
                    "duplicate_similarity": 0.95,
                    "interleaved_min_similarity": None,
                },
            },
        }
    )
    storage = Storage(str(tmp_path))
    rows = [
        {
            "sha256": SHA[sha],
            "format": "jpg",
            "image": b"",
            "width": 64,
            "height": 64,
            "original_width": w,
            "original_height": h,
            "urls": [],
        }
        for sha, (_, w, h) in IMAGES.items()
    ]
    storage.write_parquet(TABLE.path("table-00000"), pa.Table.from_pylist(rows, schema=IMAGE_TABLE_SCHEMA))
    vectors = np.stack([v for v, _, _ in IMAGES.values()]).astype(np.float16)
    storage.write_parquet(
        EMBEDDINGS.path("table-00000"), embeddings_table([SHA[n] for n in IMAGES], vectors, 4)
    )
    docs = [
        doc("pair-kept", "pair", [None, "a red kite"], [image("a"), None]),
        doc("pair-unrelated", "pair", [None, "tax law"], [image("b"), None]),
        doc("pair-small", "pair", [None, "a red kite"], [image("small"), None]),
        doc("pair-unsafe", "pair", [None, "a red kite"], [image("unsafe"), None]),
        doc(
            "page",
            "interleaved",
            ["about the kite", None, None, None, "the end"],
            [None, image("a"), image("dup"), image("wide"), None],
        ),
        doc("page-wide", "interleaved", ["about the kite", None], [None, image("wide")]),
        doc(
            "page-unfetched", "interleaved", ["about the kite", None], [None, {**image("x"), "sha256": None}]
        ),
    ]
    storage.write_parquet(JOINED.path("cc-00000"), pa.Table.from_pylist(docs, schema=DOC_SCHEMA))
    parts = [Part("cc-00000")]
    step = ClipFiltersStep(storage, parts, JOINED, spec.clip, spec.clip.filters, TABLE, EMBEDDINGS)
    step._scorer = StubScorer()
    stats = step.run_part(step.parts()[0])
    kept = {d["id"]: d for d in storage.read_parquet(step["documents"].path("cc-00000")).to_pylist()}
    ledger = {r["id"]: r["reason"] for r in storage.read_parquet(step["ledger"].path("cc-00000")).to_pylist()}
    removed = storage.read_parquet(step["images"].path("cc-00000")).to_pylist()
    return stats, kept, ledger, removed


def test_pairs_are_dropped_by_similarity_size_and_nsfw(run):
    stats, kept, ledger, _ = run
    assert ledger == {
        "pair-unrelated": "clip_pair_similarity",
        "pair-small": "clip_image_too_small",
        "pair-unsafe": "clip_image_nsfw",
    }
    assert stats.drops == {"clip_pair_similarity": 1, "clip_image_too_small": 1, "clip_image_nsfw": 1}
    scores = kept["pair-kept"]["meta"]["image_scores"]
    assert scores == [{"position": 0, "clip_similarity": pytest.approx(1.0, abs=1e-3), "nsfw": 0.0}]
    assert kept["pair-kept"]["meta"]["scores"]["clip_similarity"] == pytest.approx(1.0, abs=1e-3)


def test_an_interleaved_page_loses_duplicate_and_misshapen_images_in_place(run):
    _, kept, _, removed = run
    page = kept["page"]
    assert page["kind"] == "interleaved"
    assert page["texts"] == ["about the kite", None, "the end"]
    assert [im["sha256"] if im else None for im in page["images"]] == [None, SHA["a"], None]
    assert page["meta"]["scores"]["images_removed"] == 2
    rules = {(r["id"], r["position"]): r["rule"] for r in removed}
    assert rules[("page", 2)] == "image_duplicate" and rules[("page", 3)] == "image_aspect_ratio"


def test_a_page_left_without_images_becomes_a_text_document(run):
    _, kept, _, _ = run
    assert kept["page-wide"]["kind"] == "text"
    assert kept["page-wide"]["texts"] == ["about the kite"] and kept["page-wide"]["images"] == [None]
    assert kept["page-unfetched"]["kind"] == "interleaved"  # an image without bytes is left alone
    assert kept["page-unfetched"]["meta"]["image_scores"] is None


def test_the_text_beside_an_image_is_the_end_before_and_the_start_after():
    texts = ["intro " * 100 + "just before", None, "just after" + " more" * 100, None]
    before, after = nearby_texts(texts, 1)
    assert before.endswith("just before") and len(before) == 300
    assert after.startswith("just after") and len(after) == 300
    assert nearby_texts(texts, 3) == [texts[2][-300:]]


def test_obelics_size_rules():
    cfg = parse_job({"output": "o", "sources": [{"paths": ["x"]}], "clip": {"enabled": True}}).clip.filters
    assert image_rule(cfg, 640, 480) is None
    assert image_rule(cfg, 149, 400)[0] == "image_too_small"
    assert image_rule(cfg, 30_000, 20_000)[0] == "image_too_large"
    assert image_rule(cfg, 601, 300)[0] == "image_aspect_ratio"
    assert image_rule(cfg, 600, 300) is None  # 2.0 exactly is allowed
    assert image_rule(cfg, None, 300) is None  # size unknown: not judged


def test_near_duplicate_images_across_the_job_keep_the_smallest_sha(tmp_path):
    storage = Storage(str(tmp_path))
    e = np.eye(3, dtype=np.float32)
    close = (e[0] + 0.05 * e[1]) / np.linalg.norm(e[0] + 0.05 * e[1])  # cosine 0.9988 with e[0]
    parts = {
        "table-00000": {"b" * 64: e[0], "d" * 64: e[2]},
        "table-00001": {"a" * 64: close, "c" * 64: e[1]},
    }
    for name, vecs in parts.items():
        table = embeddings_table(list(vecs), np.stack(list(vecs.values())).astype(np.float16), 3)
        storage.write_parquet(EMBEDDINGS.path(name), table)
    dups = near_duplicates(storage, EMBEDDINGS, list(parts), threshold=0.99).to_pylist()
    assert [(r["sha256"], r["kept"]) for r in dups] == [("b" * 64, "a" * 64)]
    assert dups[0]["similarity"] == pytest.approx(0.9988, abs=1e-3)
    assert near_duplicates(storage, EMBEDDINGS, list(parts), threshold=0.9999).num_rows == 0
