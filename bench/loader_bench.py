"""Benchmark: Loom's packing loader (``shards.loader``) against plain ``webdataset`` iteration with a
naive greedy packer, on the same shards: packed tokens/s per core, fill, and the cost of a resume.

    .venv/bin/python bench/loader_bench.py [--quick] [--docs N] [--no-workers] [--profile]

**Corpus** (built before anything is timed, by two spawned processes). ``--docs`` documents
(200,000; quick 20,000) of ``shards.generate.generated_part`` in parts of 10,000: the tokenized
corpus of the mixture tests, with its log-normal token counts per kind (``PROFILE``: 45 % text,
median 400 tokens, sigma 1.1; 25 % interleaved, median 900, sigma 0.9, one image each; 30 % pairs,
median 24, sigma 0.4, one image each): about 675 ids a document on average, median 293 (710 and
308 with the 64 placeholders of each image), 0.55 images a document, 0.3 % of the documents longer
than 8,192 (the JSON reports the corpus's own mean, median, p99 and max, with and without the
placeholders). Every image gets a fake ``sha256`` (so the loader keeps it) and a
``<i>.clip`` member: a random 768-dim (CLIP ViT-L/14) L2-normalised float16 vector; no image bytes
(no ``<i>.jpg``): in ``embeddings`` mode neither contender needs them, and leaving them out spares
the baseline (which reads every member) bytes it would read and drop. Samples are written with
``shards.writer`` (``document_dicts``, ``sample_json``, ``write_tar(by_key=False)``) in part order
into ``OUT/train/<k>.tar`` shards of 2,000 samples, with ``OUT/train/manifest.parquet`` (a
``manifest_row`` per shard, ``MANIFEST_SCHEMA``) and ``OUT/tokenizer/tokenizer.card.json`` (``<s>``
0, ``</s>`` 1, ``<pad>`` 2, ``<image>`` 3, ``</image>`` 4). Every shard is read once (untimed)
before the runs, so both contenders read from the page cache.

**Runs**, each in a fresh spawned process, one after the other; a rate is real tokens
(``item["tokens"]``: ids and image placeholders, not padding) over the wall time from building the
dataset to its last item. Each process imports ``shards.loader`` (or ``webdataset``), and with it
torch, before its clock starts: the import alone takes ~1.5 s here, as long as a 20,000-document
pass. ``cpu_per_wall`` (process CPU time / wall) shows how many cores a run used.

* ``loom`` (seq_len 8,192 and 32,768): ``PackedDataset(OUT, seq_len, image_tokens=64,
  images="embeddings", epochs=1)`` iterated in the process itself (no DataLoader): ``tokens_s``,
  ``sequence_tokens_s`` (sequences x seq_len / s, padding included), ``docs_s`` and ``fill`` = real
  tokens / (sequences x seq_len). The 8k process then makes a second, separately timed pass with
  ``Reader.read`` (reading + checking + expanding documents), ``PackedDataset.block`` (minus the
  read: cutting, best-fit, the order) and ``PackedDataset.render`` (the tensors) wrapped by timers:
  ``loom_breakdown`` (seconds and shares of that pass). ``--profile``: that pass runs under
  cProfile instead, and the top functions by own time are logged and reported (``loom_profile``).
* ``batched`` (8k): ``PackedLoader(dataset, batch_size=4, num_workers=0)`` (``collate``) over the
  whole pass: ``tokens_s``, and ``first_batch_s``, from building the dataset to the first batch.
  Its ``cpu_per_wall`` is above 1: torch's intra-op threads (left at their default) in ``collate``.
* ``resume`` (8k, batch 4, no workers): a loader run to the middle batch, ``state_dict()`` (JSON
  round trip: ``state_bytes``); then a new dataset and loader, ``load_state_dict``, and the time
  from building them to the first batch; the resumed loader runs to the end, and its sequences
  plus those before the state must be the whole pass's (counted and summed tokens: checked). Then
  the same resume twice more, and a fresh loader three times, in the same warm process:
  ``resume_first_batch_s`` and ``fresh_first_batch_s`` are the medians of three (all in
  ``*_all_s``); ``cold_first_batch_s``: the process's first loader. A resume re-reads and re-packs
  the block it stopped in (about 64 sequences' worth of documents) and scans the tar headers of
  its shard(s), so it costs one or two blocks whatever the position; a fresh start costs one.
* ``workers`` (8k, batch 4, ``num_workers=2``; ``--no-workers``: skipped): the whole pass through a
  ``PackedLoader`` with two DataLoader worker processes (``multiprocessing_context="fork"``, Linux's
  default: this process, being spawned, would otherwise spawn them and re-import torch in each),
  worker start included; tokens/s for the two cores together (the main process collects the
  batches on the same two cores). A batch crosses to the main process as numpy arrays in one pickle
  (``PackedLoader`` collates to arrays in the worker and makes tensors in the main process: with
  torch's tensors, each one took a socket connection of its own, and that cost more than packing);
  copying ~0.8 MB a batch through the pipe is now the workers' overhead.
* ``baseline`` (8k and 32k): ``webdataset.WebDataset(urls, shardshuffle=False)`` over the shards in
  manifest order (Loom reads them in its seeded order; the shards are alike); per sample
  ``json.loads``, the ``tokens`` ids (``np.frombuffer``, int64), the ``.clip`` vectors of the
  JSON's fetched images (``np.frombuffer``, float16), each ``<image></image>`` expanded to
  ``<image>``, 64 ``<pad>``, ``</image>`` (``np.insert``); then a naive greedy packer: documents in
  stream order, a new sequence whenever the next one does not fit, a document longer than seq_len
  cut into seq_len chunks (image spans may be split there; Loom never splits one). Each sequence
  is rendered like Loom's item: ``input_ids``, ``labels`` (next id in the document, -100 on
  padding, at a document's end and before a placeholder or ``</image>``), ``position_ids``,
  ``cu_seqlens``, ``image_positions``, ``image_embeddings`` (float16, images x 768), ``tokens`` and
  ``documents``. The baseline checks nothing (Loom checks every sample against ``docs/FORMAT.md``).

  A one-off comparison (not part of this script) of every piece of the 20,000-document corpus at
  8k, matched by ``documents`` name, found the baseline's ids, labels, positions, image positions
  and embeddings identical to Loom's.

Every run must pack every document (pieces starting at token 0) and the same real tokens, the
corpus's ids plus 64 per image (checked). ``ratio_vs_webdataset_greedy`` = Loom's tokens/s over the
baseline's, at 8k (``_32k``: at 32k). The project's goal: at least 1M packed tokens/s per core with
embeddings, and at least 98 % fill at 8k (``goal``). The last line printed is one JSON object with
all figures.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import logging
import multiprocessing
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's packages, not another's

from childproc import in_child  # noqa: E402  (bench/ is on sys.path: the script's folder)

SEED = 0
SEQ_LENS = (8192, 32768)
IMAGE_TOKENS = 64
DIM = 768  # CLIP ViT-L/14
PART_DOCS = 10_000
SHARD_SAMPLES = 2_000
BATCH = 4
REPEATS = 3  # first-batch times: the median of this many
SPECIAL = {"<s>": 0, "</s>": 1, "<pad>": 2, "<image>": 3, "</image>": 4}
IGNORE = -100
GOAL = {"tokens_s_per_core": 1_000_000, "fill_8k": 0.98}

log = logging.getLogger("bench.loader")


# --------------------------------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------------


def _write_part(job: tuple[str, int, int]) -> dict[str, Any]:
    """Generated part ``p`` as shards ``train/<k>.tar`` (``k`` from ``p``'s first); their manifest
    rows and the part's document lengths (ids) and images per document."""
    from shards.generate import generated_part
    from shards.writer import document_dicts, manifest_row, sample_json, write_tar

    out, p, docs_n = job
    docs = document_dicts(generated_part(p, docs_n, SEED))
    rng = np.random.default_rng([SEED, p, 1])
    images = sum(im is not None for d in docs for im in d["images"])
    vectors = rng.standard_normal((images, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    clips = iter(vectors.astype("<f2"))
    samples = []
    for d in docs:
        sample: dict[str, Any] = {"__key__": d["id"]}
        for i, image in enumerate(d["images"]):
            if image is not None:
                image["sha256"] = hashlib.sha256(f"{d['id']}/{i}".encode()).hexdigest()
                sample[f"{i}.clip"] = next(clips).tobytes()
        sample["json"] = sample_json(d)
        sample["tokens"] = d["tokens"]
        samples.append(sample)
    per_part = -(-PART_DOCS // SHARD_SAMPLES)
    rows = []
    for j, start in enumerate(range(0, len(docs), SHARD_SAMPLES)):
        name = f"train/{p * per_part + j:05d}.tar"
        path = os.path.join(out, name)
        write_tar(samples[start : start + SHARD_SAMPLES], path, by_key=False)
        shas = {im["sha256"] for d in docs[start : start + SHARD_SAMPLES] for im in d["images"] if im}
        embedded = {"shas": shas, "model": "ViT-L-14/bench-random", "dim": DIM}
        rows.append(manifest_row(name, docs[start : start + SHARD_SAMPLES], path, embedded))
    return {
        "rows": rows,
        "lengths": np.array([len(d["tokens"]) // 4 for d in docs], np.int64),
        "images": np.array([sum(im is not None for im in d["images"]) for d in docs], np.int64),
    }


def build_corpus(out: str, docs: int) -> dict[str, Any]:
    """The Loom output the runs read (see the module doc); the corpus's figures."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shards.writer import MANIFEST_SCHEMA

    os.makedirs(os.path.join(out, "train"), exist_ok=True)
    os.makedirs(os.path.join(out, "tokenizer"), exist_ok=True)
    jobs = [(out, p, min(PART_DOCS, docs - p * PART_DOCS)) for p in range(-(-docs // PART_DOCS))]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(min(2, len(jobs), os.cpu_count() or 1)) as pool:
        parts = pool.map(_write_part, jobs, chunksize=1)
    rows = [r for part in parts for r in part["rows"]]
    pq.write_table(
        pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA), os.path.join(out, "train/manifest.parquet")
    )
    with open(os.path.join(out, "tokenizer/tokenizer.card.json"), "w") as f:
        json.dump({"special_tokens": SPECIAL, "vocab_size": 32000}, f)
    lengths = np.concatenate([p["lengths"] for p in parts])
    images = np.concatenate([p["images"] for p in parts])
    expanded = lengths + IMAGE_TOKENS * images
    return {
        "docs": len(lengths),
        "shards": len(rows),
        "corpus_mb": round(sum(r["bytes"] for r in rows) / 1e6, 1),
        "ids": int(lengths.sum()),
        "images": int(images.sum()),
        "tokens": int(expanded.sum()),  # what a packer packs: ids + placeholders
        "mean_doc_tokens": round(float(lengths.mean()), 1),
        "median_doc_tokens": float(np.median(lengths)),
        "p99_doc_tokens": float(np.percentile(lengths, 99)),
        "max_doc_tokens": int(lengths.max()),
        "mean_doc_tokens_expanded": round(float(expanded.mean()), 1),
        "median_doc_tokens_expanded": float(np.median(expanded)),
        "docs_over": {str(n): int((expanded > n).sum()) for n in SEQ_LENS},
    }


def warm_cache(out: str) -> float:
    """Read every shard once, so that both contenders read from the page cache; seconds."""
    t0 = time.perf_counter()
    for name in sorted(os.listdir(os.path.join(out, "train"))):
        with open(os.path.join(out, "train", name), "rb") as f:
            while f.read(1 << 22):
                pass
    return time.perf_counter() - t0


# --------------------------------------------------------------------------------------------------
# Counting a stream of packed sequences (the same code for every contender)
# --------------------------------------------------------------------------------------------------


class Tally:
    """Sequences, real tokens, images and whole documents (pieces from token 0) of a run."""

    def __init__(self) -> None:
        self.sequences = self.tokens = self.images = self.docs = 0

    def item(self, item: dict[str, Any]) -> None:
        self.sequences += 1
        self.tokens += item["tokens"]
        self.images += len(item["image_positions"])
        self.docs += sum(name.endswith("@0") for name in item["documents"])

    def batch(self, batch: dict[str, Any]) -> None:
        self.sequences += len(batch["tokens"])
        self.tokens += int(batch["tokens"].sum())
        self.images += len(batch["image_positions"])
        self.docs += sum(name.endswith("@0") for names in batch["documents"] for name in names)

    def figures(self, seq_len: int, wall: float, cpu: float | None = None) -> dict[str, Any]:
        out = {
            "seq_len": seq_len,
            "sequences": self.sequences,
            "tokens": self.tokens,
            "images": self.images,
            "docs": self.docs,
            "wall_s": round(wall, 3),
            "tokens_s": round(self.tokens / wall),
            "sequence_tokens_s": round(self.sequences * seq_len / wall),
            "docs_s": round(self.docs / wall),
            "fill": round(self.tokens / max(1, self.sequences * seq_len), 5),
        }
        if cpu is not None:
            out["cpu_s"] = round(cpu, 3)
            out["cpu_per_wall"] = round(cpu / wall, 2)
        return out


# --------------------------------------------------------------------------------------------------
# Loom
# --------------------------------------------------------------------------------------------------


def _dataset(out: str, seq_len: int) -> Any:
    from shards.loader import PackedDataset

    return PackedDataset(out, seq_len=seq_len, image_tokens=IMAGE_TOKENS, images="embeddings", epochs=1)


def loom_run(out: str, seq_len: int, breakdown: bool, profile: bool) -> dict[str, Any]:
    """One pass of ``PackedDataset`` in this process; with ``breakdown``, a second pass timed by
    stage (or profiled)."""
    import shards.loader  # noqa: F401  (imports, torch's among them, are not timed)

    tally = Tally()
    t0, c0 = time.perf_counter(), time.process_time()
    for item in _dataset(out, seq_len):
        tally.item(item)
    res = tally.figures(seq_len, time.perf_counter() - t0, time.process_time() - c0)
    log.info(
        "loom %d: %.2fM tokens/s, %d sequences, fill %.4f, %.1fs",
        seq_len,
        res["tokens_s"] / 1e6,
        res["sequences"],
        res["fill"],
        res["wall_s"],
    )
    if profile:
        res["profile"] = _profiled(out, seq_len)
    elif breakdown:
        res["breakdown"] = _breakdown(out, seq_len)
    return res


def _breakdown(out: str, seq_len: int) -> dict[str, Any]:
    """A second pass with ``Reader.read``, ``PackedDataset.block`` and ``render`` timed."""
    from shards import loader, stream

    spent = {"read": 0.0, "block": 0.0, "render": 0.0}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - t

        return wrapper

    saved = (stream.Reader.read, loader.PackedDataset.block, loader.PackedDataset.render)
    stream.Reader.read = timed("read", saved[0])
    loader.PackedDataset.block = timed("block", saved[1])
    loader.PackedDataset.render = timed("render", saved[2])
    try:
        t0 = time.perf_counter()
        for _ in _dataset(out, seq_len):
            pass
        wall = time.perf_counter() - t0
    finally:
        stream.Reader.read, loader.PackedDataset.block, loader.PackedDataset.render = saved
    stages = {
        "read_check_expand_s": spent["read"],
        "cut_best_fit_s": spent["block"] - spent["read"],
        "render_s": spent["render"],
        "other_s": wall - spent["block"] - spent["render"],
    }
    log.info("loom %d by stage: %s", seq_len, ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    return {
        "wall_s": round(wall, 3),
        **{k: round(v, 3) for k, v in stages.items()},
        "shares": {k.removesuffix("_s"): round(v / wall, 3) for k, v in stages.items()},
    }


def _profiled(out: str, seq_len: int, top: int = 15) -> list[dict[str, Any]]:
    """A second pass under cProfile: the ``top`` functions by own time (logged in full)."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in _dataset(out, seq_len):
        pass
    prof.disable()
    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text).sort_stats("tottime")
    stats.print_stats(30)
    log.info("loom %d profile (by own time):\n%s", seq_len, text.getvalue())
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]  # type: ignore[attr-defined]
    return [
        {
            "function": f"{_short(path)}:{line}({name})",
            "calls": nc,
            "tottime_s": round(tt, 3),
            "cumtime_s": round(ct, 3),
        }
        for (path, line, name), (_, nc, tt, ct, _) in rows
    ]


def _short(path: str) -> str:
    return os.path.relpath(path, ROOT) if path.startswith(str(ROOT)) else path


def batched_run(out: str, seq_len: int) -> dict[str, Any]:
    """The whole pass through ``PackedLoader(batch_size=4, num_workers=0)``."""
    from shards.loader import PackedLoader

    tally = Tally()
    t0, c0 = time.perf_counter(), time.process_time()
    first = None
    for batch in PackedLoader(_dataset(out, seq_len), batch_size=BATCH, num_workers=0):
        if first is None:
            first = time.perf_counter() - t0
        tally.batch(batch)
    res = tally.figures(seq_len, time.perf_counter() - t0, time.process_time() - c0)
    res["first_batch_s"] = round(first or 0.0, 4)
    log.info("loom batched %d: %.2fM tokens/s, first batch %.3fs", seq_len, res["tokens_s"] / 1e6, first)
    return res


def workers_run(out: str, seq_len: int, workers: int) -> dict[str, Any]:
    """The whole pass through ``PackedLoader(batch_size=4, num_workers=workers)``, workers' start
    included. Forked workers, Linux's default (this process was spawned, so its default is spawn)."""
    from shards.loader import PackedLoader

    tally = Tally()
    t0 = time.perf_counter()
    first = None
    loader = PackedLoader(
        _dataset(out, seq_len), batch_size=BATCH, num_workers=workers, multiprocessing_context="fork"
    )
    for batch in loader:
        if first is None:
            first = time.perf_counter() - t0
        tally.batch(batch)
    res = tally.figures(seq_len, time.perf_counter() - t0)
    res |= {"workers": workers, "first_batch_s": round(first or 0.0, 4)}
    log.info("loom %d, %d workers: %.2fM tokens/s", seq_len, workers, res["tokens_s"] / 1e6)
    return res


def resume_run(out: str, seq_len: int, sequences: int | None) -> dict[str, Any]:
    """Run to the middle of the pass's ``sequences`` (None: count them, packing only), save, resume
    in a new dataset + loader (timed to its first batch), run to the end; then a fresh loader's
    first batch for comparison."""
    from shards.loader import PackedLoader

    def first_batch(state: dict[str, Any] | None) -> tuple[float, Any, Any]:
        t0 = time.perf_counter()
        loader = PackedLoader(_dataset(out, seq_len), batch_size=BATCH, num_workers=0)
        if state is not None:
            loader.load_state_dict(state)
        it = iter(loader)
        batch = next(it)
        return time.perf_counter() - t0, loader, (batch, it)

    cold, loader, (batch, it) = first_batch(None)
    if sequences is None:  # how many the pass makes: from the packing alone
        sequences = sum(len(seqs) for seqs in _block_sequences(_dataset(out, seq_len)))
    middle = -(-sequences // BATCH) // 2
    before = Tally()
    before.batch(batch)
    for _ in range(middle - 1):
        before.batch(next(it))
    t0 = time.perf_counter()
    state = json.loads(json.dumps(loader.state_dict()))  # a state is plain JSON
    state_s = time.perf_counter() - t0
    del loader, it

    resumed, loader, (batch, it) = first_batch(state)
    after = Tally()
    after.batch(batch)
    for batch in it:
        after.batch(batch)
    del loader, it
    resumes = [resumed] + [first_batch(state)[0] for _ in range(REPEATS - 1)]
    fresh = [first_batch(None)[0] for _ in range(REPEATS)]
    resumed_s, fresh_s = float(np.median(resumes)), float(np.median(fresh))
    res = {
        "seq_len": seq_len,
        "batches_before": middle,
        "sequences": sequences,
        "sequences_before": before.sequences,
        "sequences_after": after.sequences,
        "tokens_before": before.tokens,
        "tokens_after": after.tokens,
        "docs": before.docs + after.docs,
        "state_bytes": len(json.dumps(state)),
        "state_dict_s": round(state_s, 5),
        "resume_first_batch_s": round(resumed_s, 4),
        "fresh_first_batch_s": round(fresh_s, 4),
        "resume_first_batch_all_s": [round(x, 4) for x in resumes],
        "fresh_first_batch_all_s": [round(x, 4) for x in fresh],
        "cold_first_batch_s": round(cold, 4),
    }
    log.info(
        "resume at batch %d of %d: first batch %.3fs (fresh %.3fs, cold %.3fs), state %d bytes",
        middle,
        -(-sequences // BATCH),
        resumed_s,
        fresh_s,
        cold,
        res["state_bytes"],
    )
    return res


def _block_sequences(ds: Any) -> Iterable[list[Any]]:
    """Each block's sequences (pieces only, nothing rendered), in one consumer's order."""
    from shards.stream import Reader

    reader = Reader(ds.source, IMAGE_TOKENS, ds.placeholder, "none", False)
    try:
        block = 0
        while ds.work.item(block) is not None:
            yield ds.block(reader, block)[1]
            block += 1
    finally:
        reader.close()


# --------------------------------------------------------------------------------------------------
# Baseline: webdataset + a naive greedy packer
# --------------------------------------------------------------------------------------------------


class Greedy:
    """Pieces in stream order into ``seq_len`` sequences: a new one whenever the next piece does not
    fit; a document longer than ``seq_len`` is cut into ``seq_len`` chunks. Sequences come out as
    Loom's items (the same keys and tensors)."""

    def __init__(self, seq_len: int, dim: int):
        self.n, self.dim = seq_len, dim
        self.pieces: list[tuple[np.ndarray, int, np.ndarray, list[np.ndarray], str]] = []
        self.room = seq_len
        self.arange = np.arange(seq_len, dtype=np.int64)

    def add(self, key: str, ids: np.ndarray, image_at: np.ndarray, clips: list[np.ndarray]) -> list[dict]:
        """A document's expanded ids, the index of each image's ``<image>`` and its vectors; the
        sequences it closed."""
        out, n = [], self.n
        if len(ids) <= n:
            chunks = [(0, len(ids))]
        else:
            chunks = [(a, min(a + n, len(ids))) for a in range(0, len(ids), n)]
        for a, b in chunks:
            if b - a > self.room:
                out.append(self.render())
            if (a, b) == (0, len(ids)):
                at, vecs = image_at + 1, clips
            else:
                inside = (image_at >= a) & (image_at < b)
                at, vecs = image_at[inside] - a + 1, [c for c, i in zip(clips, inside, strict=True) if i]
            self.pieces.append((ids[a:b], int(ids[b]) if b < len(ids) else IGNORE, at, vecs, f"{key}@{a}"))
            self.room -= b - a
        return out

    def flush(self) -> list[dict]:
        return [self.render()] if self.pieces else []

    def render(self) -> dict[str, Any]:
        import torch

        n = self.n
        ids = np.full(n, SPECIAL["<pad>"], np.int64)
        labels = np.full(n, IGNORE, np.int64)
        positions = np.zeros(n, np.int64)
        cu, image_positions, vectors, names, at = [0], [], [], [], 0
        for chunk, following, image_at, vecs, name in self.pieces:
            size = len(chunk)
            ids[at : at + size] = chunk
            positions[at : at + size] = self.arange[:size]
            labels[at : at + size - 1] = chunk[1:]
            labels[at + size - 1] = following
            image_positions.append(image_at + at)
            vectors.extend(vecs)
            names.append(name)
            at += size
            cu.append(at)
        labels[(labels == SPECIAL["<pad>"]) | (labels == SPECIAL["</image>"])] = (
            IGNORE  # before a placeholder
        )
        if at < n:
            cu.append(n)
        self.pieces, self.room = [], n
        return {
            "input_ids": torch.from_numpy(ids),
            "labels": torch.from_numpy(labels),
            "position_ids": torch.from_numpy(positions),
            "cu_seqlens": torch.tensor(cu, dtype=torch.int32),
            "image_positions": torch.from_numpy(np.concatenate(image_positions)),
            "image_embeddings": torch.from_numpy(
                np.stack(vectors) if vectors else np.zeros((0, self.dim), np.float16)
            ),
            "tokens": at,
            "documents": names,
        }


def baseline_run(out: str, seq_len: int) -> dict[str, Any]:
    """``webdataset.WebDataset`` over the shards, decode, expand, greedy-pack; one pass."""
    import pyarrow.parquet as pq
    import torch  # noqa: F401  (imported before the clock starts, as Loom's)
    import webdataset as wds

    image, placeholder = SPECIAL["<image>"], SPECIAL["<pad>"]
    k = IMAGE_TOKENS
    tally = Tally()
    t0, c0 = time.perf_counter(), time.process_time()
    urls = [
        os.path.join(out, s)
        for s in pq.read_table(os.path.join(out, "train/manifest.parquet"))["shard"].to_pylist()
    ]
    packer = Greedy(seq_len, DIM)
    for sample in wds.WebDataset(urls, shardshuffle=False):
        doc = json.loads(sample["json"])
        ids = np.frombuffer(sample["tokens"], "<u4").astype(np.int64)
        clips = [
            np.frombuffer(sample[f"{i}.clip"], "<f2")
            for i, im in enumerate(doc["images"])
            if im is not None and im.get("sha256")
        ]
        starts = np.flatnonzero(ids == image)
        if len(starts):
            ids = np.insert(ids, np.repeat(starts + 1, k), placeholder)
            starts = starts + k * np.arange(len(starts))
        for item in packer.add(sample["__key__"], ids, starts, clips):
            tally.item(item)
    for item in packer.flush():
        tally.item(item)
    res = tally.figures(seq_len, time.perf_counter() - t0, time.process_time() - c0)
    log.info(
        "baseline %d: %.2fM tokens/s, %d sequences, fill %.4f, %.1fs",
        seq_len,
        res["tokens_s"] / 1e6,
        res["sequences"],
        res["fill"],
        res["wall_s"],
    )
    return res


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


def check(runs: dict[str, dict[str, Any]], corpus: dict[str, Any]) -> list[str]:
    """Every run packed every document and the same tokens; the resume made exactly the pass."""
    problems = []
    for name, r in runs.items():
        if "error" in r:
            problems.append(f"{name}: {r['error']}")
            continue
        if r["docs"] != corpus["docs"]:
            problems.append(f"{name}: {r['docs']} documents packed, the corpus has {corpus['docs']}")
        tokens = r["tokens"] if "tokens" in r else r["tokens_before"] + r["tokens_after"]
        if tokens != corpus["tokens"]:
            problems.append(f"{name}: {tokens} tokens packed, the corpus has {corpus['tokens']}")
    resume = runs.get("resume", {})
    if (
        "error" not in resume
        and resume["sequences_before"] + resume["sequences_after"] != resume["sequences"]
    ):
        problems.append(
            f"resume: {resume['sequences_before']} + {resume['sequences_after']} sequences,"
            f" the pass makes {resume['sequences']}"
        )
    batched = runs.get("batched", {})
    if "error" not in batched and "error" not in resume and batched["sequences"] != resume["sequences"]:
        problems.append(
            f"resume: the pass makes {resume['sequences']} sequences, the batched run {batched['sequences']}"
        )
    return problems


def summary(corpus: dict[str, Any], runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    def get(run: str, key: str) -> Any:
        return runs.get(run, {}).get(key)

    out: dict[str, Any] = {
        k: corpus[k]
        for k in (
            "docs",
            "shards",
            "corpus_mb",
            "images",
            "tokens",
            "mean_doc_tokens",
            "median_doc_tokens",
            "mean_doc_tokens_expanded",
            "median_doc_tokens_expanded",
        )
    }
    out |= {
        "loom_tokens_s": get("loom_8k", "tokens_s"),
        "loom_sequence_tokens_s": get("loom_8k", "sequence_tokens_s"),
        "loom_docs_s": get("loom_8k", "docs_s"),
        "loom_cpu_per_wall": get("loom_8k", "cpu_per_wall"),
        "loom_tokens_s_32k": get("loom_32k", "tokens_s"),
        "loom_batched_tokens_s": get("batched", "tokens_s"),
        "loom_workers2_tokens_s": get("workers", "tokens_s"),
        "baseline_tokens_s": get("baseline_8k", "tokens_s"),
        "baseline_docs_s": get("baseline_8k", "docs_s"),
        "baseline_tokens_s_32k": get("baseline_32k", "tokens_s"),
        "fill_8k": get("loom_8k", "fill"),
        "fill_32k": get("loom_32k", "fill"),
        "greedy_fill_8k": get("baseline_8k", "fill"),
        "greedy_fill_32k": get("baseline_32k", "fill"),
        "sequences_8k": get("loom_8k", "sequences"),
        "greedy_sequences_8k": get("baseline_8k", "sequences"),
        "resume_first_batch_s": get("resume", "resume_first_batch_s"),
        "fresh_first_batch_s": get("resume", "fresh_first_batch_s"),
        "cold_first_batch_s": get("resume", "cold_first_batch_s"),
        "state_bytes": get("resume", "state_bytes"),
    }
    if out["loom_tokens_s"] and out["baseline_tokens_s"]:
        out["ratio_vs_webdataset_greedy"] = round(out["loom_tokens_s"] / out["baseline_tokens_s"], 2)
    if out["loom_tokens_s_32k"] and out["baseline_tokens_s_32k"]:
        out["ratio_vs_webdataset_greedy_32k"] = round(
            out["loom_tokens_s_32k"] / out["baseline_tokens_s_32k"], 2
        )
    if "breakdown" in runs.get("loom_8k", {}):
        out["loom_breakdown"] = runs["loom_8k"]["breakdown"]["shares"]
    if "profile" in runs.get("loom_8k", {}):
        out["loom_profile"] = runs["loom_8k"]["profile"]
    if out["loom_tokens_s"] and out["fill_8k"]:
        out["goal"] = GOAL | {
            "tokens_s_met": out["loom_tokens_s"] >= GOAL["tokens_s_per_core"],
            "fill_8k_met": out["fill_8k"] >= GOAL["fill_8k"],
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="20,000 documents (under a minute)")
    ap.add_argument("--docs", type=int, default=None, help="documents in the corpus (200000; quick 20000)")
    ap.add_argument("--no-workers", action="store_true", help="skip the run with 2 DataLoader workers")
    ap.add_argument(
        "--profile", action="store_true", help="profile Loom's 8k pass (cProfile) instead of timing stages"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    docs = args.docs or (20_000 if args.quick else 200_000)

    start = time.perf_counter()
    result: dict[str, Any] = {"bench": "loader", "load_avg_start": [round(x, 2) for x in os.getloadavg()]}
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="loom-bench-loader-") as tmp:
        out = os.path.join(tmp, "out")
        t0 = time.perf_counter()
        corpus = build_corpus(out, docs)
        corpus["build_s"] = round(time.perf_counter() - t0, 1)
        corpus["warm_cache_s"] = round(warm_cache(out), 2)
        log.info(
            "corpus: %d documents, %d shards, %.0f MB, %.1fM tokens (mean %.0f ids a document, median %.0f;"
            " %.0f / %.0f with placeholders) built in %.1fs (not timed)",
            corpus["docs"],
            corpus["shards"],
            corpus["corpus_mb"],
            corpus["tokens"] / 1e6,
            corpus["mean_doc_tokens"],
            corpus["median_doc_tokens"],
            corpus["mean_doc_tokens_expanded"],
            corpus["median_doc_tokens_expanded"],
            corpus["build_s"],
        )
        for seq_len in SEQ_LENS:
            tag = f"{seq_len // 1024}k"
            first = seq_len == SEQ_LENS[0]  # the 8k process also times its stages (or profiles)
            runs[f"loom_{tag}"] = in_child(loom_run, out, seq_len, first, first and args.profile)
        runs["batched"] = in_child(batched_run, out, SEQ_LENS[0])
        runs["resume"] = in_child(resume_run, out, SEQ_LENS[0], runs["loom_8k"].get("sequences"))
        if not args.no_workers:
            runs["workers"] = in_child(workers_run, out, SEQ_LENS[0], 2)
        for seq_len in SEQ_LENS:
            runs[f"baseline_{seq_len // 1024}k"] = in_child(baseline_run, out, seq_len)
        shutil.rmtree(out, ignore_errors=True)
    problems = check(runs, corpus)
    result |= summary(corpus, runs)
    result["corpus"] = corpus
    result["runs"] = runs
    result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["seconds"] = round(time.perf_counter() - start, 1)
    if problems:
        result["problems"] = problems
    for p in problems:
        log.error("%s", p)
    print(json.dumps(result))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
