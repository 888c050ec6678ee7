"""The image side of ``loom demo``: generated images, a LAION-style pair table, a local image server.

``build_demo_pairs(dest, base_url)`` draws ``images`` small pictures (deterministic, PIL) into
``dest/images/`` and writes ``dest/pairs.parquet`` with LAION's columns (``URL``, ``TEXT``) pointing
at ``base_url``. Like a real pair table it holds what acquisition must handle: one picture used by
many rows (fetched and stored once), URLs that 404, a page that is HTML, a truncated PNG, a picture
whose server says ``X-Robots-Tag: noai``, an empty caption and a URL that is not http(s).

:func:`demo_job` puts it together for ``loom demo``: the WARC, the pairs, the server on 127.0.0.1
(its port kept in ``OUT/input/image-server.json`` so a rerun finds the same URLs) and the job spec.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from filters.config import FiltersConfig
from pipeline.clip.config import ClipConfig
from pipeline.config import JobSpec, JobSpecError, load_job
from pipeline.demo import build_demo_corpus, build_demo_filters, demo_quality_corpus
from pipeline.images.serve import ImageServer, Route

log = logging.getLogger(__name__)

DEMO_SPEC = Path(__file__).resolve().parents[1] / "jobs" / "demo.toml"
PAIRS_NAME = "pairs.parquet"
SHARED_IMAGE = "images/loom-logo.png"
#: Paths the demo server answers specially (all under base_url).
NOAI_IMAGE = "images/no-ai.jpg"
HTML_PAGE = "gallery.html"

_COLOURS = ["red", "orange", "yellow", "green", "teal", "blue", "purple", "pink", "grey", "black"]
_SHAPES = ["circle", "square", "triangle", "stripe"]


@dataclass(frozen=True)
class DemoPairs:
    table: Path
    images: Path


def _picture(rng: random.Random, path: Path, size: tuple[int, int]) -> str:
    """Draw a gradient with a shape on it; return its caption."""
    from PIL import Image, ImageColor, ImageDraw

    bg, fg = rng.sample(_COLOURS, 2)
    shape = rng.choice(_SHAPES)
    w, h = size
    img = Image.new("RGB", size, ImageColor.getrgb(bg))
    draw = ImageDraw.Draw(img)
    for y in range(0, h, 4):  # a vertical gradient towards white
        shade = int(255 * y / h * 0.5)
        base = ImageColor.getrgb(bg)
        draw.rectangle([0, y, w, y + 3], fill=tuple(min(255, c + shade) for c in base))
    box = [w // 4, h // 4, 3 * w // 4, 3 * h // 4]
    colour = ImageColor.getrgb(fg)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(w // 2, h // 4), (w // 4, 3 * h // 4), (3 * w // 4, 3 * h // 4)], fill=colour)
    else:
        for x in range(0, w, 24):
            draw.rectangle([x, 0, x + 10, h], fill=colour)
    if path.suffix == ".png":
        img.save(path, format="PNG", optimize=False)
    else:
        img.save(path, format="JPEG", quality=90)
    return f"A {fg} {shape} on a {bg} background"


def build_demo_pairs(dest: Path, base_url: str, images: int = 24, seed: int = 0) -> DemoPairs:
    """Draw the pictures and write the pair table; the same arguments give the same files."""
    rng = random.Random(f"loom-demo-pairs-{seed}")
    dest = Path(dest)
    folder = dest / "images"
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str]] = []
    for i in range(images):
        name = f"images/{i:03d}.{'png' if i % 5 == 0 else 'jpg'}"
        size = (rng.choice([320, 480, 640, 1280]), rng.choice([240, 360, 480, 960]))
        rows.append((f"{base_url}/{name}", _picture(rng, dest / name, size)))
    _picture(random.Random(f"logo-{seed}"), dest / SHARED_IMAGE, (256, 256))
    _picture(random.Random(f"noai-{seed}"), dest / NOAI_IMAGE, (320, 240))
    good = dest / "images" / "000.png"
    (dest / "images" / "truncated.png").write_bytes(good.read_bytes()[:200])
    rows += [(f"{base_url}/{SHARED_IMAGE}", f"The Loom logo, take {k}") for k in range(1, 6)]
    rows += [
        (f"{base_url}/images/missing-1.jpg", "A picture that was taken down"),
        (f"{base_url}/images/missing-2.jpg", "Another picture that is gone"),
        (f"{base_url}/{HTML_PAGE}", "A gallery page, not a picture"),
        (f"{base_url}/images/truncated.png", "A picture cut short in transfer"),
        (f"{base_url}/{NOAI_IMAGE}", "A picture its owner keeps out of AI training"),
        (f"{base_url}/images/001.jpg", "   "),
        ("ftp://files.example/picture.jpg", "A picture behind a URL Loom does not fetch"),
    ]
    table = pa.table({"URL": [u for u, _ in rows], "TEXT": [t for _, t in rows]})
    path = dest / PAIRS_NAME
    pq.write_table(table, path)
    return DemoPairs(path, folder)


def demo_server(root: Path, port: int = 0) -> ImageServer:
    """The demo's image server: the folder, plus an HTML page and an image its server marks ``noai``."""
    server = ImageServer(root, port=port)
    server.routes[f"/{HTML_PAGE}"] = Route(
        200, b"<html><body>gallery</body></html>", {"Content-Type": "text/html"}
    )
    server.routes[f"/{NOAI_IMAGE}"] = Route(headers={"X-Robots-Tag": "noai"})
    return server


def demo_filters(filters: FiltersConfig, inputs: Path) -> FiltersConfig:
    """Write the demo's blocklist, lexicon and quality model under ``inputs`` (the model is trained
    once, like ``loom filters train-quality`` does) and point the demo's [filters] at them."""
    from filters.classifier import train_classifier

    blocklist, lexicon = build_demo_filters(inputs)
    model = inputs / "quality.bin"
    if not model.exists():
        positive, negative = demo_quality_corpus(inputs / "quality")
        train_classifier([positive], [negative], model)
    return filters.model_copy(
        update={
            "url_blocklist": filters.url_blocklist.model_copy(update={"path": str(blocklist)}),
            "lexicon": filters.lexicon.model_copy(update={"paths": [str(lexicon), "loom:gambling"]}),
            "quality": filters.quality.model_copy(update={"model": str(model)}),
        }
    )


def demo_clip(clip: ClipConfig, inputs: Path) -> ClipConfig:
    """Write the demo's CLIP model, a tiny randomly initialised open_clip model (no weights can be
    downloaded here), and point [clip] at its config and checkpoint: the path real checkpoints take."""
    from pipeline.clip.model import write_tiny_model

    folder = inputs / "clip"
    config, checkpoint = folder / f"{clip.model}.json", folder / f"{clip.model}.pt"
    if not checkpoint.exists():
        config, checkpoint = write_tiny_model(folder, clip.model)
    return clip.model_copy(update={"pretrained": str(checkpoint), "model_config_path": str(config)})


@contextlib.contextmanager
def demo_job(out: Path, pages: int = 120, seed: int = 0) -> Iterator[JobSpec]:
    """Build the demo inputs under ``out/input``, serve its images, and yield the demo job spec
    (output ``out/result``); the server stops when the block ends."""
    out = Path(out).resolve()
    inputs = out / "input"
    inputs.mkdir(parents=True, exist_ok=True)
    warc = build_demo_corpus(inputs, pages=pages, seed=seed)
    port_file = inputs / "image-server.json"
    port = json.loads(port_file.read_text())["port"] if port_file.exists() else 0
    try:
        server = demo_server(inputs, port)
    except OSError as err:
        raise JobSpecError(
            f"the demo's image server cannot listen on 127.0.0.1:{port} ({err.strerror}); this demo output's "
            "pair table points there: free the port or choose a new --out"
        ) from None
    with server:
        port_file.write_text(json.dumps({"port": server.port}) + "\n")
        pairs = build_demo_pairs(inputs, server.url, seed=seed)
        spec = load_job(DEMO_SPEC, output=str(out / "result"))
        cc, pair_source = spec.sources
        spec = spec.model_copy(
            update={
                "sources": [
                    cc.model_copy(update={"paths": [str(warc)], "listing": None}),
                    pair_source.model_copy(update={"paths": [str(pairs.table)]}),
                ],
                "filters": demo_filters(spec.filters, inputs),
                "clip": demo_clip(spec.clip, inputs) if spec.clip.enabled else spec.clip,
            }
        )
        log.info("demo corpus: %s and %s (images served at %s)", warc, pairs.table, server.url)
        yield spec
