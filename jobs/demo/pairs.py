"""The image side of ``loom demo``: generated images, a LAION-style pair table, the image server.

``build_demo_pairs(dest, base_url)`` draws ``images`` small pictures (deterministic, PIL) into
``dest/images/`` and writes ``dest/pairs.parquet`` with LAION's columns (``URL``, ``TEXT``) pointing
at ``base_url``. Like a real pair table it holds what acquisition must handle: one picture used by
many rows (fetched and stored once), URLs that 404, a page that is HTML, a truncated PNG, a picture
whose server says ``X-Robots-Tag: noai``, an empty caption and a URL that is not http(s).

``demo_server(root)`` serves them on 127.0.0.1 (``pipeline/images/serve.py``), on the fixed port
``IMAGE_PORT``: the port is part of every pair URL, and so of every pair document's id and shard,
so a fixed one makes two demo runs byte-identical. It sits outside Linux's ephemeral port range
(32768-60999), where the OS hands out the ports of outgoing connections.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.images.serve import ImageServer, Route

PAIRS_NAME = "pairs.parquet"
SHARED_IMAGE = "images/loom-logo.png"
#: Paths the demo server answers specially (all under base_url).
NOAI_IMAGE = "images/no-ai.jpg"
HTML_PAGE = "gallery.html"
#: Where the demo's image server listens (on 127.0.0.1), unless an output recorded another port.
IMAGE_PORT = 18765

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


def demo_server(root: Path, port: int = IMAGE_PORT) -> ImageServer:
    """The demo's image server: the folder, plus an HTML page and an image its server marks ``noai``."""
    server = ImageServer(root, port=port)
    server.routes[f"/{HTML_PAGE}"] = Route(
        200, b"<html><body>gallery</body></html>", {"Content-Type": "text/html"}
    )
    server.routes[f"/{NOAI_IMAGE}"] = Route(headers={"X-Robots-Tag": "noai"})
    return server
