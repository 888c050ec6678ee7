"""The loader's input: the documents of a Loom shard folder as one stream, read block by block.

:class:`Source` opens a Loom output (``train/`` when the job made a training dataset, else
``shards/``, or a nested subset of ``train/``) from its manifest; the stream is its samples, epoch
after epoch, with the shards of each epoch in a seeded order. Document ``i`` of the stream is found
from the manifest's sample counts alone, so any worker reads any block without reading what comes
before it. :class:`Reader` reads the documents of a stream range from the shards (tar headers
scanned once per shard, members sliced from a memory map), checks each against the format
(``docs/FORMAT.md``) and expands each image to ``<image>``, ``k`` placeholders, ``</image>``.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import mmap
import os
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from pipeline.storage import Storage
from shards.tarscan import Sample, ShardError, scan
from shards.train import SUBSETS, TRAIN, TRAIN_MANIFEST
from shards.validate import IMAGE_FORMATS
from shards.writer import MANIFEST, SHARDS

log = logging.getLogger(__name__)

CARD = "tokenizer/tokenizer.card.json"  # docs/FORMAT.md
ImageMode = Literal["embeddings", "decoded", "none"]


class LoaderError(ValueError):
    """Input the loader cannot turn into sequences; the message names the shard and the sample, and
    ``reason`` is what a skip is counted under."""

    def __init__(self, message: str, reason: str = "bad_sample"):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Source:
    """The shards of one folder, in manifest order, with what the loader needs to know of them."""

    root: str
    folder: str
    shards: tuple[str, ...]  # paths relative to root
    samples: tuple[int, ...]  # samples read from each shard (a subset reads a prefix of its last one)
    tokens: int
    image_files: int
    vocab_size: int
    embedding_dim: int | None
    bos: int
    eos: int
    pad: int
    image: int
    image_end: int

    @classmethod
    def open(cls, out: str | Path, folder: str | None = None, subset: float | None = None) -> Source:
        storage = Storage(str(out))
        folder = folder or (TRAIN if storage.exists(TRAIN_MANIFEST) else SHARDS)
        manifest = {TRAIN: TRAIN_MANIFEST, SHARDS: MANIFEST}.get(folder)
        if manifest is None:
            raise LoaderError(f"folder {folder!r}: the loader reads 'train' or 'shards'")
        if not storage.exists(manifest):
            raise LoaderError(f"{storage.uri(manifest)}: no manifest (is {out} a finished Loom output?)")
        if not storage.is_local:
            raise LoaderError(f"{out}: the loader reads local shards (copy or mount the output first)")
        rows = pq.read_table(storage.uri(manifest)).to_pylist()
        shards = [r["shard"] for r in rows]
        samples = [r["samples"] for r in rows]
        tokens, image_files = sum(r["tokens"] for r in rows), sum(r["image_files"] for r in rows)
        if subset is not None:
            shards, samples, part = _subset(storage, folder, subset, shards, samples)
            tokens, image_files = round(tokens * part), round(image_files * part)
        card = storage.uri(CARD)
        if not os.path.exists(card):
            raise LoaderError(
                f"{card}: no tokenizer card: the loader packs token ids, and this job made none"
            )
        with open(card) as f:
            tokenizer = json.load(f)
        ids = tokenizer["special_tokens"]
        dims = {r["embedding_dim"] for r in rows if r.get("embedding_dim")}
        return cls(
            root=storage.uri(),
            folder=folder,
            shards=tuple(shards),
            samples=tuple(samples),
            tokens=tokens,
            image_files=image_files,
            vocab_size=tokenizer["vocab_size"],
            embedding_dim=max(dims) if dims else None,
            bos=ids["<s>"],
            eos=ids["</s>"],
            pad=ids.get("<pad>", ids["</s>"]),
            image=ids["<image>"],
            image_end=ids["</image>"],
        )

    @property
    def documents(self) -> int:
        return sum(self.samples)

    @functools.lru_cache(maxsize=4)  # noqa: B019 - a few epochs of one frozen source
    def epoch_layout(self, epoch: int, seed: int, shuffle: bool) -> tuple[np.ndarray, np.ndarray]:
        """The shard order of ``epoch`` and the cumulative samples along it (one computation per
        epoch, not one per block: a block may span several shards of 100k)."""
        n = len(self.shards)
        order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
        return order, np.cumsum(np.asarray(self.samples)[order])

    def runs(self, start: int, stop: int, seed: int, shuffle: bool) -> list[tuple[int, int, int]]:
        """Stream documents ``[start, stop)`` as (shard, first sample, end sample) runs, in order."""
        per_epoch = self.documents
        out: list[tuple[int, int, int]] = []
        i = start
        while i < stop:
            epoch, at = divmod(i, per_epoch)
            order, ends = self.epoch_layout(epoch, seed, shuffle)
            k = int(np.searchsorted(ends, at, side="right"))
            shard_start = int(ends[k] - self.samples[order[k]])
            take = min(stop - i, int(ends[k]) - at)
            out.append((int(order[k]), at - shard_start, at - shard_start + take))
            i += take
        return out


def _subset(
    storage: Storage, folder: str, fraction: float, shards: list[str], samples: list[int]
) -> tuple[list[str], list[int], float]:
    """The subset's shards, the samples read from each, and its share of the folder's tokens."""
    if folder != TRAIN or not storage.exists(SUBSETS):
        raise LoaderError(
            f"subset {fraction}: subsets are prefixes of train/ (train/subsets.json), none here"
        )
    listing = storage.read_json(SUBSETS)
    subsets = listing["subsets"]
    found = [s for s in subsets if abs(s["fraction"] - fraction) < 1e-9]
    if not found:
        have = ", ".join(str(s["fraction"]) for s in subsets) or "none"
        raise LoaderError(f"subset {fraction}: train/subsets.json has {have}")
    subset = found[0]
    counts = dict(zip(shards, samples, strict=True))
    names = subset["shards"]
    part = subset["tokens"] / max(1, listing["tokens"])
    return names, [counts[n] for n in names[:-1]] + [subset["last_shard_samples"]], part


@dataclass
class Document:
    """One document of a block, ready to pack: ids with each kept image expanded to a span of
    ``<image>``, ``k`` placeholders, ``</image>`` starting at ``spans``; ``no_loss``: the positions
    whose next-token label is masked (the span's ``<image>`` and placeholders); ``images``: each
    kept image's payload (an embedding's bytes, or (format, bytes) of the picture)."""

    key: str
    shard: str
    ids: np.ndarray
    spans: np.ndarray
    no_loss: np.ndarray
    images: list[Any]


class Reader:
    """Reads stream documents for one consumer; holds the last two shards mapped."""

    def __init__(self, source: Source, image_tokens: int, placeholder: int, images: ImageMode, skip: bool):
        self.source = source
        self.k = image_tokens
        self.placeholder = placeholder
        self.mode = images
        self.skip = skip
        self._open: OrderedDict[int, tuple[mmap.mmap, list[Sample]]] = OrderedDict()

    def close(self) -> None:
        for data, _ in self._open.values():
            data.close()
        self._open.clear()

    def _shard(self, index: int) -> tuple[mmap.mmap, list[Sample]]:
        if index in self._open:
            self._open.move_to_end(index)
            return self._open[index]
        name = self.source.shards[index]
        path = os.path.join(self.source.root, name)
        try:
            with open(path, "rb") as f:
                data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:  # missing, unreadable, or empty (mmap refuses 0 bytes)
            raise ShardError(f"{name}: cannot read the shard: {e}") from e
        samples = scan(data, name)
        if len(samples) < self.source.samples[index]:
            data.close()
            raise ShardError(
                f"{name}: holds {len(samples)} samples, the manifest says {self.source.samples[index]}"
                " (run `loom validate`)"
            )
        self._open[index] = (data, samples)
        if len(self._open) > 2:
            old, _ = self._open.popitem(last=False)[1]
            old.close()
        return self._open[index]

    def read(self, runs: list[tuple[int, int, int]], skipped: Counter) -> list[Document]:
        """The documents of these stream runs; bad ones raise :class:`LoaderError`, or with ``skip``
        are counted in ``skipped`` by reason and left out."""
        docs = []
        for shard, first, end in runs:
            try:
                data, samples = self._shard(shard)
            except ShardError as e:
                if not self.skip:
                    raise LoaderError(str(e)) from e
                log.warning("skipped %d samples: %s", end - first, e)
                skipped["bad_shard"] += end - first
                continue
            for sample in samples[first:end]:
                try:
                    docs.append(self.document(self.source.shards[shard], sample, data))
                except LoaderError as e:
                    if not self.skip:
                        raise
                    log.warning("skipped: %s", e)
                    skipped[e.reason] += 1
        return docs

    def document(self, shard: str, sample: Sample, data: mmap.mmap) -> Document:
        """One sample, checked and expanded; anything wrong with it is a :class:`LoaderError`
        naming the shard and the key."""
        try:
            return self._document(shard, sample, data)
        except LoaderError:
            raise
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as e:  # a malformed json
            raise LoaderError(f"{shard}: sample {sample.key}: malformed: {type(e).__name__}: {e}") from e

    def _document(self, shard: str, sample: Sample, data: mmap.mmap) -> Document:
        src = self.source

        def bad(reason: str, problem: str) -> LoaderError:
            return LoaderError(f"{shard}: sample {sample.key}: {problem}", reason)

        def member(part: str) -> bytes:
            offset, size = sample.parts[part]
            return data[offset : offset + size]

        if "json" not in sample.parts:
            raise bad("no_json", "no json member")
        if "tokens" not in sample.parts:
            raise bad("no_tokens", "no tokens member (the job did not tokenize)")
        try:
            doc = json.loads(member("json"))
        except ValueError as e:
            raise bad("bad_json", f"its json member does not parse: {e}") from e
        if not isinstance(doc, dict) or not isinstance(doc.get("images", []), list):
            raise bad("bad_json", "its json member is not a Loom document (docs/FORMAT.md)")
        offset, size = sample.parts["tokens"]
        if size % 4 or size < 8:
            raise bad("bad_tokens", f"tokens member of {size} bytes: expected 2 or more uint32 ids")
        ids = np.frombuffer(data, "<u4", size // 4, offset).astype(np.int64)
        if ids[0] != src.bos or ids[-1] != src.eos:
            raise bad("bad_tokens", f"tokens do not run from <s> ({src.bos}) to </s> ({src.eos})")
        starts = np.flatnonzero(ids == src.image)
        ends = np.flatnonzero(ids == src.image_end)
        if len(starts) != len(ends) or not np.array_equal(starts + 1, ends):
            raise bad("unbalanced_image", "an <image> token without its </image> right after it")
        listed = doc.get("tokens") or {}
        if listed.get("count") is not None and listed["count"] != len(ids):
            raise bad("bad_tokens", f"{len(ids)} token ids, its json says {listed['count']}")
        if listed.get("images") is not None and listed["images"] != starts.tolist():
            raise bad(
                "unbalanced_image", f"<image> tokens at {starts.tolist()}, its json says {listed['images']}"
            )
        positions = [i for i, image in enumerate(doc.get("images") or []) if image is not None]
        if len(positions) != len(starts):
            raise bad("unbalanced_image", f"{len(starts)} <image> tokens for {len(positions)} images")
        keep, payloads = [], []
        for start, i in zip(starts.tolist(), positions, strict=True):
            if not doc["images"][i].get("sha256"):
                continue  # not fetched: no bytes, nothing to embed; its markers leave the sequence
            keep.append(start)
            if self.mode == "embeddings":
                if f"{i}.clip" not in sample.parts:
                    raise bad("missing_embedding", f"no embedding member {i}.clip (did the job run CLIP?)")
                if sample.parts[f"{i}.clip"][1] != 2 * (src.embedding_dim or 0):
                    raise bad("bad_embedding", f"{i}.clip is not {src.embedding_dim} float16 values")
                payloads.append(member(f"{i}.clip"))
            elif self.mode == "decoded":
                fmt = next((f for f in IMAGE_FORMATS if f"{i}.{f}" in sample.parts), None)
                if fmt is None:
                    raise bad("missing_image", f"no image member {i}.jpg/png/webp")
                picture = member(f"{i}.{fmt}")
                try:
                    Image.open(io.BytesIO(picture)).verify()
                except Exception as e:  # PIL raises many kinds
                    raise bad("bad_image", f"{i}.{fmt} is not a readable picture: {e}") from e
                payloads.append(picture)
        expanded, spans = self._expand(ids, starts, keep)
        no_loss = np.zeros(len(expanded), bool)
        for s in spans.tolist():
            no_loss[s : s + self.k + 1] = True
        return Document(sample.key, shard, expanded, spans, no_loss, payloads)

    def _expand(self, ids: np.ndarray, starts: np.ndarray, keep: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Each kept ``<image>`` ``</image>`` pair gets ``k`` placeholders between its markers; the
        pairs of images without bytes are removed."""
        if not len(starts):
            return ids, np.zeros(0, np.int64)
        kept = set(keep)
        pieces, spans, at, out = [], [], 0, 0
        for s in starts.tolist():
            pieces.append(ids[at:s])
            out += s - at
            if s in kept:
                spans.append(out)
                pieces.append(
                    np.array([self.source.image] + [self.placeholder] * self.k + [self.source.image_end])
                )
                out += self.k + 2
            at = s + 2
        pieces.append(ids[at:])
        return np.concatenate(pieces), np.asarray(spans, np.int64)
