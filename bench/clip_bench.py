"""Benchmark: images/s of Loom's CLIP image stage on Ray vs a plain open_clip loop, same images and weights.

    .venv/bin/python bench/clip_bench.py [--quick] [--model ViT-B-32|tiny] [--images N] [--batch-size B]
        [--device cpu|cuda] [--precision P] [--gpus-per-actor G] [--actors A] [--cpus C] [--data-dir DIR]

**Images.** The real photos of ``../shared/data/images/conceptual-captions-openimages`` (18) and
``../shared/data/images/img2dataset-resize`` (7): 25 JPEGs, 123 to 680 px a side, 1.5 MB in all,
their bytes read once and used as they are. Not re-encoded: every side is under the image table's
default ``[images] max_size`` of 1,024, so the image table would store these very bytes. Repeated,
in name order, to ``--images`` N (512; quick 320), rounded up to a multiple of max(64, B) (see
``loom_images_s``), in tables of B rows (``part``, ``sha256`` of the image, ``image``). Not the
issue's "few thousand": on this shared 2-core CPU ViT-B/32 in fp32 encodes ~3-10 images/s, so 512
images for each of three contenders already take several minutes (``--images 2048`` for more).

**Model.** ``--model`` ViT-B-32 (``--quick``: ``tiny``, Loom's test model from
``write_tiny_model``: 64 px, 2 layers, a smoke test in which decoding dominates), randomly
initialised: ``torch.manual_seed(0)`` then ``open_clip.create_model_and_transforms(name,
pretrained=None)``. Its state dict is saved (``{"state_dict": ...}``) to a checkpoint in a
temporary folder, and Loom loads that file as ``[clip] pretrained``, the path real local weights
take: both contenders run the same weights, in fp32 on CPU (on CUDA both under ``--precision``
autocast, fp16), B = ``--batch-size`` (64) images per forward pass.

**Contenders, one run, in this order** (a figure is images / wall seconds):

* ``decode_images_s`` — Loom's ``ImagePreprocessor`` alone (PIL decode, resize, centre crop, to
  ``uint8``) on 100 of the images in this process: what one core decodes.
* ``plain_loop_images_s`` — in this process, for each batch of B images: ``PIL.Image.open(BytesIO(b))``,
  open_clip's eval transform (resize, centre crop, RGB, to-tensor, normalize), ``torch.stack``,
  ``model.encode_image`` under ``torch.inference_mode()``, L2-normalize, to numpy; after an untimed
  batch of 8. Torch keeps its own thread count, ``plain_loop_torch_threads`` (2 here).
* ``plain_loop_1thread_images_s`` — the same under ``torch.set_num_threads(1)`` (CPU only).
* ``loom_images_s`` — ``pipeline.clip.images.embedding_pipeline``, the ``clip`` step's Ray Data
  pipeline (decode + resize, then ``Embed``: the ``ClipEncoder`` in an actor pool
  of ``--actors``, 1), on a private local Ray (``ray.init(address="local", num_cpus=C)``, C =
  ``--cpus``, 2), Ray's start left out. The actor pool, and with it the model load, is new to each
  run, so an untimed warm-up run would not take the load out of the timed run; timing the output
  batches does. The stage hands back one batch per actor task, max(64, B) rows (64: its
  ``preprocess`` batch), and Ray Data's iterator hands a batch over a moment (~0.2 s) after the
  next one is ready, one behind, and the last two at once at the end. So ``loom_images_s`` is
  n - 3 batches' images over the time from the first batch handed over to the last but two (n - 3
  batches' time, whether the iterator is one behind or not): the steady state, as in a real step,
  which loads the model once per actor for whole table parts. N must make 4 batches at least.
  ``loom_with_start_images_s`` counts all N from the call (Ray Data's start, the actor's start and
  imports, the checkpoint load); ``loom_first_batch_s`` is the wait for the first batch handed
  over.

``ratio_vs_plain_loop`` = loom / plain loop (the issue's target: ≥ 0.9);
``ratio_vs_plain_loop_1thread`` = loom / the one-thread plain loop.
``actor_cpus``: the CPUs (and torch threads) each encoder actor takes. Without GPUs, Loom's stage
gives each actor its share of Ray's CPUs (``[clip] cpus_per_actor``, default CPUs / actors: 2 here)
and the actor decodes its own batches (``loom_plan``: ``ActorPoolMapOperator[MapBatches(Embed)]``),
since a separate decoding map would only take cores from the encoder; with ``--device cuda`` the
plan has a ``preprocess`` task map (one CPU each) before GPU actors. ``min_cosine``: each of Loom's
N embeddings (float16, as stored) against the plain loop's (float32) of the same image, the
smallest cosine (≥ 0.999 expected); ``rows_out`` must be N. ``load_avg`` before and after: the
machine is shared, and a busy moment lowers a figure (two torch threads on two busy cores most).

**On a GPU** (expectations, not measurements). On the GPU node, the same script:
``.venv/bin/python bench/clip_bench.py --device cuda --gpus-per-actor 1 --cpus $(nproc) --batch-size 256
--images 20480``. The encoder actor then takes one GPU (``[clip] gpus_per_actor``) and runs under
fp16 autocast, the plain loop moves the model to CUDA under the same autocast, and the
``preprocess`` tasks run apart, on the C - 1 other cores. ViT-B/32 in fp16 on one A100 should
encode a few thousand images/s (order of magnitude: 2,000-5,000 at batch 256), while PIL decodes
and resizes photos of this size at ~100-200 images/s per core (``decode_images_s``): the plain
loop, decoding in one process, stays near that one-core figure, so the ratio to it is large and
says little; what matters is ``loom_images_s`` against the encoder's own rate. Keeping one GPU fed
takes ~16-32 decoding cores (``--cpus`` 17-33 with one actor). Watch ``nvidia-smi dmon -s u``
during the Loom run: a GPU well below 90% busy is waiting for its CPUs. Use many images so that the
steady state is long against the start.

The last line printed is one JSON object with all figures. Without the data folder, it says so
(``"skipped"``) and the exit code is 0.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's packages, not another's

DATA_DIR = ROOT.parent / "shared" / "data"
IMAGE_DIRS = (Path("images") / "conceptual-captions-openimages", Path("images") / "img2dataset-resize")
MODEL = "ViT-B-32"
#: ``--model tiny``: Loom's tiny test model (``write_tiny_model``: 64 px, 2 layers), for ``--quick``.
TINY = "tiny"
SEED = 0
PLAIN_WARMUP_IMAGES = 8
DECODE_IMAGES = 100
#: ``embedding_pipeline``'s batch of the preprocess tasks: on CPU, where Ray Data fuses them into
#: the actor, one actor task takes that many rows (or ``batch_size``, the larger) and hands them back
#: as one output batch.
PREPROCESS_ROWS = 64
#: Ray Data's logger of a dataset's execution plan (the handlers of "ray.data" itself are reset by
#: Ray Data when a dataset starts).
PLAN_LOGGER = "ray.data._internal.execution.streaming_executor"

log = logging.getLogger("bench.clip")


# --------------------------------------------------------------------------------------------------
# Images and weights
# --------------------------------------------------------------------------------------------------


def read_images(data_dir: Path) -> list[bytes]:
    """The bytes of every JPEG of the image folders, in name order."""
    return [p.read_bytes() for d in IMAGE_DIRS for p in sorted((data_dir / d).glob("*.jpg"))]


def image_tables(images: list[bytes], rows: int) -> list[pa.Table]:
    """The stage's input: tables of ``rows`` images (``part``, ``sha256``, ``image``)."""
    tables = []
    for t, start in enumerate(range(0, len(images), rows)):
        chunk = images[start : start + rows]
        tables.append(
            pa.table(
                {
                    "part": pa.array([f"bench-{t:03d}"] * len(chunk), pa.string()),
                    "sha256": pa.array([hashlib.sha256(b).hexdigest() for b in chunk], pa.string()),
                    "image": pa.array(chunk, pa.binary()),
                }
            )
        )
    return tables


def seeded_model(name: str, folder: Path) -> tuple[Any, Any, Path]:
    """(model, open_clip's eval transform, checkpoint of the model's state dict)."""
    import open_clip
    import torch

    torch.manual_seed(SEED)
    model, _, transform = open_clip.create_model_and_transforms(name, pretrained=None)
    checkpoint = folder / f"{name}-seed{SEED}.pt"
    torch.save({"state_dict": model.state_dict()}, checkpoint)
    return model.eval(), transform, checkpoint


# --------------------------------------------------------------------------------------------------
# The plain loop
# --------------------------------------------------------------------------------------------------


def plain_loop(
    model: Any, transform: Any, images: list[bytes], batch_size: int, device: str, precision: str
) -> tuple[float, np.ndarray]:
    """(seconds, the images' float32 unit vectors in order)."""
    import torch
    from PIL import Image

    from pipeline.clip.model import autocast

    out = []
    t0 = time.perf_counter()
    with torch.inference_mode(), autocast(device, precision):
        for start in range(0, len(images), batch_size):
            x = torch.stack([transform(Image.open(BytesIO(b))) for b in images[start : start + batch_size]])
            v = model.encode_image(x.to(device))
            out.append(torch.nn.functional.normalize(v.float(), dim=-1).cpu().numpy())
    return time.perf_counter() - t0, np.concatenate(out)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------------------------------
# Loom on Ray
# --------------------------------------------------------------------------------------------------


class PlanLog(logging.Handler):
    """Keeps the execution plan Ray Data logs when a dataset starts (which operators it fused)."""

    def __init__(self) -> None:
        super().__init__()
        self.plans: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Execution plan of Dataset"):
            self.plans.append(message.split(": ", 1)[-1])


def loom_run(tables: list[pa.Table], cfg: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """One run of the stage: its rows, when each output batch arrived, and the steady state.

    Ray Data's iterator hands a batch over a moment (~0.2 s) after the next one is ready, one
    behind, and the last two at once at the end. So the steady state is taken from the first batch
    handed over to the last but two: with batches of one size, n - 3 batches' time and images,
    whether the iterator is one behind or not."""
    from pipeline.clip.images import embedding_pipeline

    shas: list[str] = []
    vectors: list[bytes | None] = []
    arrivals: list[tuple[float, int]] = []  # (seconds since the call, rows)
    t0 = time.perf_counter()
    for batch in embedding_pipeline(tables, cfg, settings, cfg.actors):
        arrivals.append((time.perf_counter() - t0, batch.num_rows))
        shas += batch["sha256"].to_pylist()
        vectors += batch["embedding"].to_pylist()
    sizes = {rows for _, rows in arrivals}
    steady = None
    if len(arrivals) >= 4 and len(sizes) == 1:
        steady = (len(arrivals) - 3) * arrivals[0][1] / (arrivals[-3][0] - arrivals[0][0])
    else:
        log.warning("loom: output batches %s: no steady state (4 equal batches needed)", arrivals)
    return {
        "total_s": arrivals[-1][0],
        "first_batch_s": arrivals[0][0],
        "batches": len(arrivals),
        "steady_images_s": steady,
        "shas": shas,
        "vectors": vectors,
    }


def decode_rate(images: list[bytes], settings: dict[str, Any]) -> float:
    """Images/s of Loom's ``ImagePreprocessor`` (decode, resize, crop) in this process, one core."""
    from pipeline.clip.model import ImagePreprocessor

    pre = ImagePreprocessor(settings)
    pre(images[0])
    t0 = time.perf_counter()
    for b in images:
        pre(b)
    return len(images) / (time.perf_counter() - t0)


def min_cosine(
    shas: list[str], vectors: list[bytes | None], reference: dict[str, np.ndarray]
) -> float | None:
    """The smallest cosine of a Loom embedding (float16 bytes) with the plain loop's of its image
    (None if an image has no embedding)."""
    worst = 1.0
    for sha, data in zip(shas, vectors, strict=True):
        if data is None:
            return None
        ours = np.frombuffer(data, np.float16).astype(np.float32)
        theirs = reference[sha]
        worst = min(worst, float(ours @ theirs / (np.linalg.norm(ours) * np.linalg.norm(theirs))))
    return worst


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def rounded(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="the tiny model, not ViT-B-32 (under a minute)")
    ap.add_argument("--model", choices=(MODEL, TINY), default=None, help=f"{MODEL}; quick {TINY}")
    ap.add_argument("--images", type=int, default=None, help="images per contender (512; quick 320)")
    ap.add_argument("--batch-size", type=int, default=64, help="images per forward pass, both contenders")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--precision", choices=("fp16", "bf16", "fp32"), default="fp16", help="autocast on CUDA")
    ap.add_argument("--gpus-per-actor", type=float, default=1.0, help="[clip] gpus_per_actor (CUDA only)")
    ap.add_argument("--actors", type=int, default=1, help="encoder actors")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray (2: this machine)")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    if not all((args.data_dir / d).is_dir() for d in IMAGE_DIRS):
        print(f"no test data under {args.data_dir} (see ../shared/data/README.md)", file=sys.stderr)
        print(json.dumps({"bench": "clip", "skipped": "no test data"}))
        return 0
    bundle = max(PREPROCESS_ROWS, args.batch_size)  # rows of an output batch of the stage
    n_images = -(-(args.images or (320 if args.quick else 512)) // bundle) * bundle
    batch_size = args.batch_size
    precision = args.precision if args.device == "cuda" else "fp32"
    args.model = args.model or (TINY if args.quick else MODEL)
    load_before = [round(x, 2) for x in os.getloadavg()]

    import torch

    from pipeline.clip.config import ClipConfig
    from pipeline.clip.model import preprocess_settings, write_tiny_model

    distinct = read_images(args.data_dir)
    images = (distinct * -(-n_images // len(distinct)))[:n_images]
    tables = image_tables(images, batch_size)
    log.info("%d distinct images (%.1f MB), %d images in %d tables", len(distinct),
             sum(map(len, distinct)) / 1e6, len(images), len(tables))  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="bench-clip-") as tmp:
        name, config_path = args.model, None
        if args.model == TINY:  # its config, made known to open_clip (its own checkpoint unused)
            config_path, _ = write_tiny_model(Path(tmp))
            name = config_path.stem
        log.info("building %s (seed %d) and its checkpoint", name, SEED)
        model, transform, checkpoint = seeded_model(name, Path(tmp))
        model = model.to(args.device)
        cfg = ClipConfig(
            enabled=True,
            model=name,
            model_config_path=config_path and str(config_path),
            pretrained=str(checkpoint),
            device=args.device,
            gpus_per_actor=args.gpus_per_actor,
            actors=args.actors,
            batch_size=batch_size,
            precision=args.precision,
        )
        settings = preprocess_settings(cfg)
        decode_images_s = decode_rate(images[:DECODE_IMAGES], settings)
        log.info("decode + resize (ImagePreprocessor): %.1f images/s on one core", decode_images_s)

        driver_threads = torch.get_num_threads()
        plain_loop(model, transform, images[:PLAIN_WARMUP_IMAGES], batch_size, args.device, precision)
        log.info("plain loop: %d images, %d torch threads", len(images), driver_threads)
        plain_s, plain_vectors = plain_loop(model, transform, images, batch_size, args.device, precision)
        log.info("plain loop: %.2f images/s", len(images) / plain_s)
        plain_1_s = None
        if args.device == "cpu" and driver_threads > 1:
            log.info("plain loop: %d images, 1 torch thread", len(images))
            with torch_threads(1):
                plain_1_s, _ = plain_loop(model, transform, images, batch_size, args.device, precision)
            log.info("plain loop, 1 thread: %.2f images/s", len(images) / plain_1_s)
        reference: dict[str, np.ndarray] = {}  # an image's plain-loop vector (its first copy)
        for sha, vector in zip(pa.concat_tables(tables)["sha256"].to_pylist(), plain_vectors, strict=True):
            reference.setdefault(sha, vector)
        del model

        import ray

        log.info("starting a local Ray with %d CPUs", args.cpus)
        ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, logging_level=logging.WARNING)
        plan_log = PlanLog()
        logging.getLogger(PLAN_LOGGER).addHandler(plan_log)
        try:
            ray.data.DataContext.get_current().enable_progress_bars = False
            log.info("loom: %d images, %d encoder actor(s)", len(images), args.actors)
            run = loom_run(tables, cfg, settings)
        finally:
            logging.getLogger(PLAN_LOGGER).removeHandler(plan_log)
            ray.shutdown()

    loom = run["steady_images_s"]
    plain = len(images) / plain_s
    plain_1 = len(images) / plain_1_s if plain_1_s else None
    log.info("loom: %s images/s (steady), %.2f with the start", loom and round(loom, 2),
             len(images) / run["total_s"])  # fmt: skip
    result = {
        "bench": "clip",
        "model": f"{cfg.model} (random init, seed {SEED})",
        "device": args.device,
        "precision": precision,
        "images": len(images),
        "distinct_images": len(distinct),
        "batch_size": batch_size,
        "embed_dim": settings["embed_dim"],
        "loom_images_s": rounded(loom, 2),
        "loom_with_start_images_s": round(len(images) / run["total_s"], 2),
        "loom_first_batch_s": round(run["first_batch_s"], 2),
        "loom_output_batches": run["batches"],
        "plain_loop_images_s": rounded(plain, 2),
        "plain_loop_1thread_images_s": rounded(plain_1, 2),
        "ratio_vs_plain_loop": rounded(loom and loom / plain, 3),
        "ratio_vs_plain_loop_1thread": rounded(loom and plain_1 and loom / plain_1, 3),
        "decode_images_s": round(decode_images_s, 1),
        "plain_loop_torch_threads": driver_threads,
        "actor_cpus": max(1, args.cpus // args.actors) if args.device == "cpu" else 1,
        "loom_plan": plan_log.plans[-1] if plan_log.plans else None,
        "ray_cpus": args.cpus,
        "actors": args.actors,
        "rows_out": len(run["shas"]),
        "min_cosine": rounded(min_cosine(run["shas"], run["vectors"], reference), 7),
        "load_avg": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
