"""The ``clip`` step: every distinct image of the image table embedded once, on an actor pool.

One part per image-table part (``table-<b>``). The pending parts go through one Ray Data pipeline:

    read the part's images → decode + resize (CPU tasks) → encode (actor pool, num_gpus each) → driver

so a GPU actor never decodes a JPEG: it receives ``uint8`` arrays of the model's input size, in
batches of ``batch_size``, and loads the weights once. On a cluster without GPUs, each actor takes
its share of the CPUs and decodes its own batches (``embedding_pipeline``). The driver collects
the embeddings of each part and writes ``OUT/work/clip/table-<b>.parquet`` (``sha256``,
``embedding``: L2-normalized float16) with the part's marker as soon as the part is whole, so a
killed job resumes at the next unfinished part. Without Ray (``use_ray=False``) the same functions
run in this process.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.clip.config import ClipConfig
from pipeline.clip.model import ClipEncoder, ImagePreprocessor, model_id, preprocess_settings
from pipeline.images.table import files_holding
from pipeline.runner import Part, PartStats, RayContext, StepFailed, StepResult, marker_path
from pipeline.stage import Resources
from pipeline.step import Data, Step
from pipeline.storage import Storage

log = logging.getLogger(__name__)

CLIP = "clip"


#: Near-duplicate images across the job: each image and the image kept in its place.
DUPLICATES_SCHEMA = pa.schema([("sha256", pa.string()), ("kept", pa.string()), ("similarity", pa.float32())])
#: Rows of the similarity matrix computed at a time (BLOCK x images float32).
BLOCK = 4096


def near_duplicates(storage: Storage, embeddings: Data, parts: list[str], threshold: float) -> pa.Table:
    """Images whose embedding has cosine >= ``threshold`` with another's, over the whole job.

    Exact search in blocks of the similarity matrix (``BLOCK`` rows at a time), so its cost grows
    with the square of the number of images: fine for millions on a GPU node, not for billions
    (an ANN index would be the next step). Pairs are joined into clusters (union-find); the image
    with the smallest sha256 of a cluster is kept, every other one is listed with it.
    """
    paths = [embeddings.path(p) for p in parts]
    tables = [storage.read_parquet(path) for path in paths if storage.exists(path)]
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return DUPLICATES_SCHEMA.empty_table()
    table = pa.concat_tables(tables).sort_by("sha256")
    shas = table["sha256"].to_pylist()
    vectors = embedding_matrix(table).astype(np.float32)
    parent = list(range(len(shas)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    best = np.zeros(len(shas), np.float32)
    for start in range(0, len(shas), BLOCK):
        sims = vectors[start : start + BLOCK] @ vectors.T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip((rows + start).tolist(), cols.tolist(), strict=True):
            if r < c:
                a, b = root(r), root(c)
                parent[max(a, b)] = min(a, b)  # the smaller index (the smaller sha256) stays root
                best[c] = max(best[c], sims[r - start, c])
    dups = [(shas[i], shas[root(i)], float(best[i])) for i in range(len(shas)) if root(i) != i]
    return pa.Table.from_pylist(
        [{"sha256": s, "kept": k, "similarity": v} for s, k, v in dups], schema=DUPLICATES_SCHEMA
    )


def embedding_matrix(table: pa.Table) -> np.ndarray:
    """The ``embedding`` column of an embeddings table as a float16 matrix [rows, dim]."""
    flat = table["embedding"].combine_chunks()
    return flat.values.to_numpy(zero_copy_only=False).astype("<f2").reshape(table.num_rows, -1)


def read_embeddings(storage: Storage, embeddings: Data, shas: list[str]) -> dict[str, np.ndarray]:
    """sha256 → embedding (float16) of these images: only the parts that hold them are read (a part
    per image-table part, ``table-<bucket>``)."""
    files = files_holding(storage, embeddings, shas)
    if not files:
        return {}
    where = pc.field("sha256").isin(pa.array(shas, pa.string()))
    found = storage.read_parquets(files, None, where)
    return (
        dict(zip(found["sha256"].to_pylist(), embedding_matrix(found), strict=True)) if found.num_rows else {}
    )


def embedding_schema(dim: int) -> pa.Schema:
    return pa.schema([("sha256", pa.string()), ("embedding", pa.list_(pa.float16(), dim))])


def embeddings_table(shas: list[str], vectors: np.ndarray, dim: int) -> pa.Table:
    flat = pa.array(vectors.reshape(-1).astype(np.float16), pa.float16())
    column = pa.FixedSizeListArray.from_arrays(flat, dim)
    return pa.Table.from_arrays([pa.array(shas, pa.string()), column], schema=embedding_schema(dim))


def preprocess(batch: pa.Table, settings: dict[str, Any]) -> pa.Table:
    """CPU work: image rows (``part``, ``sha256``, ``image``) → (``part``, ``sha256``, ``pixels``);
    ``pixels`` is null for an image that does not decode."""
    pre = ImagePreprocessor(settings)
    pixels = [pre(b) for b in batch["image"].to_pylist()]
    return pa.table(
        {
            "part": batch["part"],
            "sha256": batch["sha256"],
            "pixels": pa.array([None if p is None else p.tobytes() for p in pixels], pa.binary()),
        }
    )


class Embed:
    """The actor: ``pixels`` → ``embedding`` (float16 bytes), the model loaded once.

    With ``settings`` it also decodes (``image`` → ``pixels``) itself: the CPU-only layout, where a
    separate map would only compete with the encoder for the same cores. ``threads``: torch's
    intra-op threads (the CPUs Ray gave the actor)."""

    def __init__(self, cfg: ClipConfig, size: int, settings: dict[str, Any] | None = None, threads: int = 1):
        import torch

        torch.set_num_threads(max(1, threads))
        self.encoder = ClipEncoder(cfg)
        self.size = size
        self.settings = settings

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self.settings is not None:
            batch = preprocess(batch, self.settings)
        pixels = batch["pixels"].to_pylist()
        ok = [i for i, p in enumerate(pixels) if p is not None]
        shape = (len(ok), self.size, self.size, 3)
        stack = np.frombuffer(bytearray(b"".join(pixels[i] for i in ok)), np.uint8).reshape(shape)
        vectors = self.encoder.encode_images(stack)
        out: list[bytes | None] = [None] * len(pixels)
        for i, v in zip(ok, vectors, strict=True):
            out[i] = v.tobytes()
        return pa.table(
            {"part": batch["part"], "sha256": batch["sha256"], "embedding": pa.array(out, pa.binary())}
        )


def image_size(settings: dict[str, Any]) -> int:
    size = settings["image_size"]
    return size if isinstance(size, int) else int(size[0])


class ClipImagesStep(Step):
    """Image table → one embedding per distinct image (a part per image-table part): a global step
    that runs its own pipeline (CPU decoding → encoder actors) instead of one worker per part.

    Outputs: ``embeddings`` (``sha256``, ``embedding``), ``model`` (``{"model", "dim"}``: what the
    shards name the embeddings by) and, when ``duplicate_similarity`` is set, ``duplicates`` (the
    near-duplicate images across the job, :func:`near_duplicates`)."""

    name = CLIP

    def __init__(self, storage: Storage, cfg: ClipConfig, table: Step, duplicate_similarity: float | None):
        super().__init__(storage, table=table["table"])
        self.cfg = cfg
        self.table = table  # the image_table step: its parts are known once the fetch is planned
        self.duplicate_similarity = duplicate_similarity
        self.output("embeddings", "work/{step}/{part}.parquet")
        self.output("model", "work/{step}/model.json")
        if duplicate_similarity is not None:
            self.output("duplicates", "work/{step}/duplicates.parquet")

    @property
    def resources(self) -> Resources:  # type: ignore[override]
        return Resources(cpus=1, gpus=self.cfg.gpus_per_actor if self.cfg.device != "cpu" else 0.0)

    def settings(self) -> dict[str, Any]:
        how = {"gpus_per_actor", "actors", "cpus_per_actor", "batch_size", "cache_dir"}
        return {
            "clip": self.cfg.model_dump(mode="json", include=set(ClipConfig.model_fields) - how),
            "duplicate_similarity": self.duplicate_similarity,
        }

    def parts(self) -> list[Part]:
        return [Part(p.name) for p in self.table.parts()]

    def _rows(self, part: str) -> pa.Table:
        table = self.storage.read_parquet(self.inputs["table"].path(part), ["sha256", "image"])
        return table.append_column("part", pa.array([part] * table.num_rows, pa.string()))

    def run(self, ray: RayContext | None) -> StepResult:
        start = time.perf_counter()
        parts = self.parts()
        done = set(self.storage.list(f"work/{CLIP}", ".done"))
        pending = [p.name for p in parts if f"{p.name}.done" not in done]
        log.info("step %s: %d parts, %d to run", CLIP, len(parts), len(pending))
        if pending:
            settings = preprocess_settings(self.cfg)
            table = self.inputs["table"]
            expected = {p: self.storage.read_parquet(table.path(p), ["sha256"]).num_rows for p in pending}
            got: dict[str, list[tuple[str, bytes | None]]] = defaultdict(list)
            batches = (
                self._on_ray(pending, settings, ray) if ray is not None else self._here(pending, settings)
            )
            t0 = time.perf_counter()
            for batch in batches:
                for part, sha, emb in zip(
                    *(batch[c].to_pylist() for c in ("part", "sha256", "embedding")), strict=True
                ):
                    got[part].append((sha, emb))
                    if len(got[part]) == expected[part]:
                        self._write(part, got.pop(part), settings["embed_dim"], time.perf_counter() - t0)
            for part in pending:  # empty parts, and parts whose rows never came back
                if part in got or expected[part] == 0:
                    if len(got.get(part, [])) != expected[part]:
                        raise StepFailed(f"step {CLIP}: part {part} lost images on the way; rerun the job")
                    self._write(part, got.pop(part, []), settings["embed_dim"], 0.0)
        merged, dims = PartStats(), set()
        for p in parts:
            stats = PartStats.from_json(self.storage.read_json(marker_path(CLIP, p.name)))
            dims.add(stats.extra.get("dim"))
            merged.add(stats)
        dims.discard(None)
        self.storage.write_json(
            self["model"].path(), {"model": model_id(self.cfg), "dim": min(dims, default=None)}
        )
        threshold = self.duplicate_similarity
        if threshold is not None and (pending or not self.storage.exists(self["duplicates"].path())):
            dups = near_duplicates(self.storage, self["embeddings"], [p.name for p in parts], threshold)
            self.storage.write_parquet(self["duplicates"].path(), dups)
            log.info(
                "step %s: %d images are near duplicates of another (cosine >= %g)",
                CLIP,
                dups.num_rows,
                threshold,
            )
        if threshold is not None:
            merged.extra["near_duplicates"] = self.storage.read_parquet(
                self["duplicates"].path(), ["sha256"]
            ).num_rows
        return StepResult(CLIP, len(parts), len(pending), merged, time.perf_counter() - start)

    def _write(self, part: str, rows: list[tuple[str, bytes | None]], dim: int, seconds: float) -> None:
        rows = sorted(rows)
        ok = [(s, e) for s, e in rows if e is not None]
        vectors = np.frombuffer(b"".join(e for _, e in ok), np.float16).reshape(len(ok), dim)
        self.storage.write_parquet(
            self["embeddings"].path(part), embeddings_table([s for s, _ in ok], vectors, dim)
        )
        stats = PartStats(
            rows_in=len(rows),
            rows_out=len(ok),
            drops=Counter({"decode_error": len(rows) - len(ok)} if len(rows) > len(ok) else {}),
            seconds=seconds,
            extra={"model": {model_id(self.cfg): len(ok)}, "dim": dim},
        )
        self.storage.write_json(marker_path(CLIP, part), stats.to_json())
        log.info("step %s: part %s done: %d images embedded", CLIP, part, len(ok))

    def _here(self, pending: list[str], settings: dict[str, Any]) -> Iterator[pa.Table]:
        import torch

        embed = Embed(self.cfg, image_size(settings), settings, threads=torch.get_num_threads())
        for part in pending:
            rows = self._rows(part)
            for s in range(0, rows.num_rows, self.cfg.batch_size):
                yield embed(rows.slice(s, self.cfg.batch_size))

    def _on_ray(self, pending: list[str], settings: dict[str, Any], ray: RayContext) -> Iterator[pa.Table]:
        yield from embedding_pipeline(
            [self._rows(p) for p in pending], self.cfg, settings, actors(self.cfg, ray)
        )


def gpus_per_actor(cfg: ClipConfig) -> float:
    """The GPUs an actor asks Ray for: ``gpus_per_actor`` when the cluster has GPUs (and the device
    is not forced to the CPU), else none, so a CPU-only cluster runs the same job on its CPUs."""
    import ray

    if cfg.device == "cpu" or not cfg.gpus_per_actor or not ray.is_initialized():
        return 0.0
    return cfg.gpus_per_actor if ray.cluster_resources().get("GPU", 0) else 0.0


def actors(cfg: ClipConfig, ray: RayContext) -> int:
    """``cfg.actors``, else as many as the cluster's GPUs allow at ``gpus_per_actor`` (1 without)."""
    import ray as ray_module

    ray.parallelism()  # starts or joins Ray
    if cfg.actors:
        return cfg.actors
    gpus = ray_module.cluster_resources().get("GPU", 0)
    per_actor = gpus_per_actor(cfg)
    return max(1, int(gpus / per_actor)) if per_actor else 1


def embedding_pipeline(
    tables: list[pa.Table], cfg: ClipConfig, settings: dict[str, Any], n_actors: int
) -> Iterator[pa.Table]:
    """Ray Data: image rows → the encoder actors (``n_actors``) → the driver.

    With GPUs: decoding and resizing run in CPU tasks (one CPU each) before the GPU actors (one CPU
    and ``gpus_per_actor`` GPUs each), so a GPU never waits on a JPEG. Without: each actor takes
    its share of the cluster's CPUs (``cpus_per_actor``) and decodes its own batches, with as many
    torch threads, since a separate map would only take cores from the encoder.
    """
    import ray
    import ray.data

    ds = ray.data.from_arrow(tables)
    gpus = gpus_per_actor(cfg)
    size = image_size(settings)
    if gpus:
        ds = ds.map_batches(
            preprocess, fn_kwargs={"settings": settings}, batch_size=64, batch_format="pyarrow", num_cpus=1
        )
        args, resources = (cfg, size, None, 1), {"num_gpus": gpus, "num_cpus": 1}
    else:
        cpus = cfg.cpus_per_actor or max(1, int(ray.cluster_resources().get("CPU", 1)) // n_actors)
        args, resources = (cfg, size, settings, cpus), {"num_cpus": cpus}
    ds = ds.map_batches(
        Embed,
        fn_constructor_args=args,
        batch_size=cfg.batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=n_actors),
        **resources,
    )
    yield from ds.iter_batches(batch_format="pyarrow", batch_size=None)
