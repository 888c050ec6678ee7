"""The trainer's side: packed ``seq_len`` sequences of Loom documents, with image positions, that
resume exactly (``docs/TRAINING.md``).

:class:`PackedDataset` is a torch ``IterableDataset`` over a Loom output's shards. Its stream of
documents (:mod:`shards.stream`: epoch after epoch, shards in a seeded order) is cut into blocks of
about ``buffer_sequences × seq_len`` tokens; each block is packed on its own (:mod:`shards.packing`:
long documents cut outside image spans, then best-fit decreasing), and its sequences follow each
other in a seeded order. Ranks × dataloader workers share the blocks round-robin
(:mod:`shards.progress`), so no two consumers read the same document and every block is read once.

:class:`PackedLoader` wraps a standard ``DataLoader`` over it and keeps track of what the trainer
has received: its ``state_dict()`` resumes with exactly the sequences not yet yielded, in the same
order under the same world size and workers, and with the same set of sequences under any other
(given every rank's state).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field, model_validator
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from pipeline.config import Config
from shards.packing import Piece, best_fit, cut
from shards.progress import WorkList, remaining
from shards.stream import Document, ImageMode, LoaderError, Reader, Source

log = logging.getLogger(__name__)

STATE_FORMAT = "loom-loader/1"
IGNORE = -100  # the label of a position that takes no loss (torch's cross-entropy ignore_index)
ACROSS = -1  # while rendering: a document's </s>, labelled once the next piece is known


class LoaderConfig(Config):
    """The loader's options; the ones that change which sequences are made are in its fingerprint."""

    seq_len: int = Field(8192, ge=2, description="Tokens per sequence, image placeholders included.")
    image_tokens: int = Field(64, ge=0, description="Placeholder tokens per image (k), counted in seq_len.")
    max_images: int | None = Field(None, ge=1, description="Images per sequence at most (None: no cap).")
    images: ImageMode = Field(
        "embeddings", description="embeddings (the shard's CLIP vectors), decoded (pictures) or none."
    )
    placeholder_id: int | None = Field(None, description="The id of image placeholders (default: <pad>).")
    loss_across_documents: bool = Field(
        False, description="Label a document's </s> with the next document's <s> (default: no loss there)."
    )
    buffer_sequences: int = Field(64, ge=1, description="Packing buffer (a block), in sequences' worth.")
    seed: int = Field(0, description="Seeds the shard order of each epoch and the sequence order.")
    shuffle: bool = Field(True, description="Shuffle the shard order of each epoch.")
    epochs: int | None = Field(1, ge=1, description="Passes over the shards; None: endless.")
    on_error: str = Field("raise", pattern="^(raise|skip)$", description="A bad sample: raise, or skip it.")
    folder: str | None = Field(None, description="train or shards (default: train when there is one).")
    subset: float | None = Field(None, gt=0, le=1, description="A nested subset of train/ (subsets.json).")

    @model_validator(mode="after")
    def _span_fits(self) -> LoaderConfig:
        if self.image_tokens + 2 > self.seq_len:
            raise ValueError(
                f"an image span (<image>, {self.image_tokens} placeholders, </image>) exceeds seq_len"
            )
        return self

    def packing(self) -> dict[str, Any]:
        return self.model_dump(exclude={"placeholder_id", "loss_across_documents"})


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def default_transform(picture: Any) -> torch.Tensor:
    """A decoded picture as a CHW uint8 tensor (RGB)."""
    return torch.from_numpy(np.array(picture.convert("RGB"))).permute(2, 0, 1).contiguous()


class PackedDataset(IterableDataset):
    """Packed sequences of the Loom output at ``out`` (see the module doc). Each item is a dict:

    - ``input_ids``, ``labels``, ``position_ids``: ``seq_len`` int64 each; ``labels[i]`` is the id
      that follows ``input_ids[i]`` in its document, or ``-100`` (no loss) on padding, at a
      document's end (unless ``loss_across_documents``), and where the next id is a placeholder or
      ``</image>``; positions restart at 0 for each document piece;
    - ``cu_seqlens``: int32, the start of each piece and then ``seq_len`` (padding is a last segment);
    - ``image_positions``: int64, the index of each image's first placeholder; with
      ``images="embeddings"`` ``image_embeddings`` (float16, images × dim), with ``"decoded"``
      ``images`` (a list of ``transform(PIL image)``);
    - ``tokens``: the real tokens (not padding); ``documents``: ``<key>@<first token>`` of each piece;
    - ``loom_position`` and ``skipped``: what :class:`PackedLoader` keeps its state with.
    """

    def __init__(
        self,
        out: str | Path,
        config: LoaderConfig | None = None,
        *,
        rank: int | None = None,
        world_size: int | None = None,
        transform: Callable[[Any], Any] | None = None,
        **options: Any,
    ):
        self.config = config or LoaderConfig(**options)
        cfg = self.config
        self.source = Source.open(out, cfg.folder, cfg.subset)
        if cfg.images == "embeddings" and self.source.embedding_dim is None and self.source.image_files:
            raise LoaderError(f"{out}: the shards hold no CLIP embeddings: use images='decoded' or 'none'")
        default_rank, default_world = _distributed()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in a world of {self.world_size}")
        self.transform = transform or default_transform
        self.placeholder = self.source.pad if cfg.placeholder_id is None else cfg.placeholder_id
        mean = (self.source.tokens + cfg.image_tokens * self.source.image_files) / max(
            1, self.source.documents
        )
        self.block_documents = max(1, round(cfg.buffer_sequences * cfg.seq_len / max(mean, 1.0)))
        stream = None if cfg.epochs is None else cfg.epochs * self.source.documents
        blocks = None if stream is None else -(-stream // self.block_documents)
        self.work = WorkList(blocks=blocks)
        self.workers: int | None = None  # dataloader workers per rank; PackedLoader sets it
        self.progress: dict[int, tuple[int, int]] = {}  # consumer → (items done, next sequence)
        self.rotation = 0  # worker w plays this rank's consumer (w + rotation) % workers
        self.skipped: Counter = Counter()
        self.arrays = False  # yield numpy arrays (PackedLoader: they cross from workers as one pickle)

    @property
    def vocab_size(self) -> int:
        """The vocabulary of the tokenizer the ids were made with (its card)."""
        return self.source.vocab_size

    @property
    def embedding_dim(self) -> int | None:
        """The dimension of the shards' CLIP embeddings (None without CLIP)."""
        return self.source.embedding_dim

    # -- the stream -------------------------------------------------------------------------------

    def fingerprint(self) -> str:
        what = {
            "shards": list(zip(self.source.shards, self.source.samples, strict=True)),
            "config": self.config.packing(),
            "block_documents": self.block_documents,
        }
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]

    def block(self, reader: Reader, block: int) -> tuple[list[Document], list[list[Piece]], Counter]:
        """A block's documents and its sequences (lists of pieces), in their seeded order."""
        cfg, src = self.config, self.source
        stream = None if cfg.epochs is None else cfg.epochs * src.documents
        start = block * self.block_documents
        stop = start + self.block_documents if stream is None else min(start + self.block_documents, stream)
        skipped: Counter = Counter()
        docs = reader.read(src.runs(start, stop, cfg.seed, cfg.shuffle), skipped)
        span = cfg.image_tokens + 2
        pieces = [
            p
            for d, doc in enumerate(docs)
            for p in cut(d, len(doc.ids), doc.spans, span, cfg.seq_len, cfg.max_images)
        ]
        bins = best_fit(pieces, cfg.seq_len, cfg.max_images)
        order = np.random.default_rng([cfg.seed, block]).permutation(len(bins))
        return docs, [[pieces[i] for i in bins[b]] for b in order], skipped

    @staticmethod
    def _picture(docs: list[Document], at: tuple[int, int]) -> Any:
        from PIL import Image

        doc = docs[at[0]]
        try:
            picture = Image.open(io.BytesIO(doc.images[at[1]]))
            picture.load()
        except Exception as e:  # it passed verify() but does not decode: no silent hole in the sequence
            raise LoaderError(f"{doc.shard}: sample {doc.key}: image {at[1]} does not decode: {e}") from e
        return picture

    def render(self, docs: list[Document], pieces: list[Piece]) -> dict[str, Any]:
        """One sequence of these pieces, padded to ``seq_len``."""
        cfg, src = self.config, self.source
        n = cfg.seq_len
        ids = np.full(n, src.pad, np.int64)
        labels = np.full(n, IGNORE, np.int64)
        positions = np.zeros(n, np.int64)
        cu, image_positions, payloads, pictures, names, at = [0], [], [], [], [], 0
        for p in pieces:
            doc = docs[p.doc]
            size = p.length
            ids[at : at + size] = doc.ids[p.start : p.stop]
            positions[at : at + size] = np.arange(size)
            after = doc.ids[p.start + 1 : p.stop + 1]  # the next ids, in the document (past the piece too)
            labels[at : at + len(after)] = after
            labels[at : at + size][doc.no_loss[p.start : p.stop]] = IGNORE
            if cfg.loss_across_documents and at and labels[at - 1] == ACROSS:
                labels[at - 1] = doc.ids[0] if p.start == 0 else IGNORE  # the next document's <s>
            if cfg.loss_across_documents and p.stop == len(doc.ids):
                labels[at + size - 1] = ACROSS  # set once the next piece is known
            lo, hi = np.searchsorted(doc.spans, [p.start, p.stop])
            for j in range(lo, hi):
                image_positions.append(at + int(doc.spans[j]) - p.start + 1)
                if doc.images:
                    payloads.append(doc.images[j])
                    pictures.append((p.doc, j))
            names.append(f"{doc.key}@{p.start}")
            at += size
            cu.append(at)
        if at and labels[at - 1] == ACROSS:
            labels[at - 1] = IGNORE
        if at < n:
            cu.append(n)
        item: dict[str, Any] = {
            "input_ids": ids,
            "labels": labels,
            "position_ids": positions,
            "cu_seqlens": np.array(cu, np.int32),
            "image_positions": np.array(image_positions, np.int64),
            "tokens": at,
            "documents": names,
        }
        if cfg.images == "embeddings":
            dim = src.embedding_dim or 0
            vectors = (
                np.frombuffer(b"".join(payloads), "<f2").reshape(-1, dim) if payloads else np.zeros((0, dim))
            )
            item["image_embeddings"] = vectors.astype(np.float16)
        elif cfg.images == "decoded":
            item["images"] = [self.transform(self._picture(docs, p)) for p in pictures]
        return item

    # -- iteration --------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        if self.workers is not None and self.workers != workers:
            raise LoaderError(
                f"this dataset is set for {self.workers} worker(s) per rank, the DataLoader runs {workers}"
            )
        local = (worker + self.rotation) % workers
        consumer, consumers = self.rank * workers + local, self.world_size * workers
        done, next_sequence = self.progress.get(consumer, (0, -1))
        cfg = self.config
        reader = Reader(self.source, cfg.image_tokens, self.placeholder, cfg.images, cfg.on_error == "skip")
        pending: Counter = Counter()  # skips not yet reported: they ride on the next item yielded
        barren = 0  # blocks in a row that made no sequence
        try:
            while (item := self.work.item(consumer + done * consumers)) is not None:
                block, start = item
                if next_sequence >= 0:
                    start = next_sequence
                docs, sequences, skipped = self.block(reader, block)
                if start == 0:  # a block resumed past its start had its skips reported already
                    pending.update(skipped)
                barren = 0 if sequences else barren + 1
                if cfg.epochs is None and barren > -(-self.source.documents // self.block_documents) + 1:
                    raise LoaderError(f"no sequence from {barren} blocks in a row: every sample was skipped")
                for s in range(start, len(sequences)):
                    out = self.render(docs, sequences[s])
                    last = s == len(sequences) - 1
                    out["loom_position"] = np.array([consumer, done + last, -1 if last else s + 1])
                    out["skipped"] = dict(pending)
                    pending.clear()
                    yield out if self.arrays else tensors(out)
                done, next_sequence = done + 1, -1
            if pending:  # skips after the last sequence: no item will carry them
                if info is None:
                    self.skipped.update(pending)
                else:
                    log.warning(
                        "worker %d: samples skipped after its last sequence: %s", worker, dict(pending)
                    )
        finally:
            reader.close()

    # -- state ------------------------------------------------------------------------------------

    def consumers(self) -> list[int]:
        workers = self.workers or 1
        return [self.rank * workers + w for w in range(workers)]

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "fingerprint": self.fingerprint(),
            "rank": self.rank,
            "world_size": self.world_size,
            "workers": self.workers or 1,
            "work": self.work.to_json(),
            "progress": {str(c): list(self.progress.get(c, (0, -1))) for c in self.consumers()},
            "rotation": self.rotation,
            "skipped": dict(self.skipped),
        }

    def load_state_dict(self, states: dict[str, Any] | list[dict[str, Any]]) -> None:
        """Resume from this rank's state (same world size and workers), or from the states of every
        rank of the saving run (any world size and workers: the remaining sequences, re-dealt)."""
        states = [states] if isinstance(states, dict) else list(states)
        if not states:
            raise LoaderError("no loader state to load")
        for state in states:
            if state.get("format") != STATE_FORMAT:
                raise LoaderError(f"not a Loom loader state (format {state.get('format')!r})")
            if state["fingerprint"] != self.fingerprint():
                raise LoaderError(
                    "the state was saved by a loader over other shards or with other packing options"
                    f" (fingerprint {state['fingerprint']}, this loader {self.fingerprint()})"
                )
        workers = self.workers or 1
        saved = states[0]
        shape = ("world_size", "workers", "work")
        if any(tuple(s[k] for k in shape) != tuple(saved[k] for k in shape) for s in states):
            raise LoaderError(
                "these states were not saved at one point of one run (their world or work differ)"
            )
        same = saved["world_size"] == self.world_size and saved["workers"] == workers
        mine = [s for s in states if s["rank"] == self.rank]
        if same and mine:
            state = mine[0]
            self.work = WorkList.from_json(state["work"])
            self.progress = {int(c): (int(d), int(n)) for c, (d, n) in state["progress"].items()}
            self.rotation = int(state["rotation"])
            self.skipped = Counter(state["skipped"])
            return
        progress = {int(c): (int(d), int(n)) for s in states for c, (d, n) in s["progress"].items()}
        ranks = sorted(set(range(saved["world_size"])) - {s["rank"] for s in states})
        if ranks:
            raise LoaderError(
                f"resuming under another world size or worker count needs the state of every rank that"
                f" saved it: ranks {ranks} of {saved['world_size']} are missing"
            )
        self.work = remaining(
            WorkList.from_json(saved["work"]), progress, saved["world_size"] * saved["workers"]
        )
        self.progress, self.rotation = {}, 0
        self.skipped = Counter()
        if self.rank == 0:
            for s in states:
                self.skipped.update(s["skipped"])


def tensors(item: dict[str, Any]) -> dict[str, Any]:
    """The numpy arrays of an item or a batch as torch tensors (no copy)."""
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in item.items()}


def collate_arrays(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`collate`, in numpy arrays."""
    batch = [{k: np.asarray(v) if isinstance(v, torch.Tensor) else v for k, v in b.items()} for b in batch]
    n = batch[0]["input_ids"].shape[0]
    cu = [batch[0]["cu_seqlens"][:1]] + [b["cu_seqlens"][1:] + i * n for i, b in enumerate(batch)]
    cu_seqlens = np.concatenate(cu).astype(np.int32)
    out: dict[str, Any] = {
        key: np.stack([b[key] for b in batch]) for key in ("input_ids", "labels", "position_ids")
    }
    out["cu_seqlens"] = cu_seqlens
    out["max_seqlen"] = int((cu_seqlens[1:] - cu_seqlens[:-1]).max())
    rows = np.concatenate([np.full(len(b["image_positions"]), i, np.int64) for i, b in enumerate(batch)])
    out["image_positions"] = np.stack([rows, np.concatenate([b["image_positions"] for b in batch])], 1)
    if "image_embeddings" in batch[0]:
        out["image_embeddings"] = np.concatenate([b["image_embeddings"] for b in batch])
    if "images" in batch[0]:
        out["images"] = [image for b in batch for image in b["images"]]
    out["tokens"] = np.array([b["tokens"] for b in batch])
    out["documents"] = [b["documents"] for b in batch]
    out["loom_position"] = np.stack([b["loom_position"] for b in batch])
    out["skipped"] = [b["skipped"] for b in batch]
    return out


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Sequences → one batch of tensors: ``input_ids``/``labels``/``position_ids`` stacked
    (B × seq_len); ``cu_seqlens`` of the flattened batch (B·seq_len tokens, for varlen attention)
    and ``max_seqlen``; ``image_positions`` as (row, position) pairs and ``image_embeddings``
    stacked in the same order (or ``images``, a flat list); ``tokens`` per row; ``documents`` per row."""
    return tensors(collate_arrays(batch))


class PackedLoader:
    """A ``torch.utils.data.DataLoader`` over a :class:`PackedDataset` (with :func:`collate`) that
    records what it has handed out: ``state_dict()`` after any batch, ``load_state_dict()`` before
    iterating resumes right after it. ``skipped`` counts the samples skipped (``on_error="skip"``)
    by reason. Other keyword arguments go to the ``DataLoader``."""

    def __init__(self, dataset: PackedDataset, batch_size: int = 1, num_workers: int = 0, **kwargs: Any):
        self.dataset = dataset
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.kwargs = kwargs
        dataset.workers = max(1, num_workers)
        dataset.arrays = True

    @property
    def skipped(self) -> Counter:
        return self.dataset.skipped

    def __iter__(self) -> Iterator[dict[str, Any]]:
        ds, workers = self.dataset, max(1, self.num_workers)
        loader = DataLoader(
            ds,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=collate_arrays,
            **self.kwargs,
        )
        for arrays in loader:  # numpy from the workers: one pickle per batch, not a socket per tensor
            batch = tensors(arrays)
            consumer, done, next_sequence = batch["loom_position"][-1].tolist()
            ds.progress[consumer] = (done, next_sequence)
            ds.rotation = (consumer - ds.rank * workers + 1) % workers
            for counts in batch["skipped"]:
                ds.skipped.update(counts)
            yield batch

    def state_dict(self) -> dict[str, Any]:
        return self.dataset.state_dict()

    def load_state_dict(self, states: dict[str, Any] | list[dict[str, Any]]) -> None:
        self.dataset.load_state_dict(states)
