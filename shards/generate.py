"""A generated, tokenized corpus: documents of the three kinds with skewed token counts, written as
the ``tokens`` step writes them, for the mixture tests and ``bench/mix_bench.py``.

Sizes are drawn from log-normal distributions (a few documents hold many tokens, as on the web);
ids, texts and token ids are derived from the seed, so the same arguments give the same corpus.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from pipeline.schema import DOC_SCHEMA
from pipeline.storage import Storage
from tokenizer.encode import TOKENS_TYPE

#: (kind, source, share of documents, median tokens, log-normal sigma)
PROFILE = (
    ("text", "web", 0.45, 400, 1.1),
    ("interleaved", "web", 0.25, 900, 0.9),
    ("pair", "laion", 0.30, 24, 0.4),
)
IMAGE_TOKENS_TYPE = pa.list_(pa.int32())


def generated_part(part: int, documents: int, seed: int = 0, text_chars: int = 32) -> pa.Table:
    """One part of ``documents`` tokenized documents (columns of the ``tokens`` step's output)."""
    rng = np.random.default_rng([seed, part])
    kinds = rng.choice(len(PROFILE), size=documents, p=[p[2] for p in PROFILE])
    rows: dict[str, list] = {k: [] for k in ("id", "source", "kind", "url", "texts", "images", "meta")}
    lengths = np.empty(documents, np.int64)
    for i, k in enumerate(kinds.tolist()):
        kind, source, _, median, sigma = PROFILE[k]
        n = max(4, int(rng.lognormal(np.log(median), sigma)))
        lengths[i] = n
        doc_id = hashlib.sha256(f"{seed}/{part}/{i}".encode()).hexdigest()[:32]
        text = (doc_id * (text_chars // 32 + 1))[:text_chars]
        rows["id"].append(doc_id)
        rows["source"].append(source)
        rows["kind"].append(kind)
        rows["url"].append(f"https://example.com/{part}/{i}")
        image = {"url": f"https://img.example.com/{doc_id}.jpg", "sha256": None, "width": 256, "height": 256}
        if kind == "text":
            rows["texts"].append([text])
            rows["images"].append([None])
        elif kind == "pair":
            rows["texts"].append([None, text])
            rows["images"].append([image, None])
        else:
            rows["texts"].append([text, None, text])
            rows["images"].append([None, image, None])
        rows["meta"].append({"language": "en"})
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    values = rng.integers(5, 32000, size=int(offsets[-1]), dtype=np.uint32)
    values[offsets[:-1]] = 0  # <s>
    values[offsets[1:] - 1] = 1  # </s>
    imaged = np.flatnonzero(kinds != 0)  # pairs and pages: <s> <image> </image> … </s>
    values[offsets[imaged] + 1], values[offsets[imaged] + 2] = 3, 4
    tokens = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, pa.uint32()))
    table = pa.Table.from_pydict(rows, schema=DOC_SCHEMA)
    positions = pa.array([[] if k == 0 else [1] for k in kinds.tolist()], IMAGE_TOKENS_TYPE)
    return table.append_column("tokens", tokens.cast(TOKENS_TYPE)).append_column("image_tokens", positions)


def write_generated(storage: Storage, pattern: str, parts: int, documents: int, seed: int = 0) -> list[str]:
    """Write ``parts`` parts of ``documents`` documents each at ``pattern`` (``{part}``: the part's
    name, ``gen-00000`` …); returns the part names."""
    names = [f"gen-{p:05d}" for p in range(parts)]
    for p, name in enumerate(names):
        storage.write_parquet(pattern.format(part=name), generated_part(p, documents, seed))
    return names
