"""Downloading a list of image URLs with img2dataset, behind Loom's request guard.

img2dataset does the downloading, resizing and encoding (its ``Downloader`` on one shard, its
``Resizer``; results are kept in memory), so its behaviour holds: the User-Agent with its token,
``X-Robots-Tag: noai``/``noimageai`` refusals, retries, sha256 of the downloaded bytes. Loom adds the
guard of :mod:`pipeline.images.guard` around every request, a pixel cap checked on the image header
*before* decoding, and a status per URL: ``ok`` or the reason it failed, with whether a rerun should
try again (:data:`RETRYABLE`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from pipeline.config import ImagesConfig
from pipeline.images.guard import FetchPolicy, guarded_urlopen
from pipeline.sources.pairs import url_problem
from pipeline.watchdog import beat

log = logging.getLogger(__name__)

#: One row per URL: what happened when it was fetched.
FETCH_SCHEMA = pa.schema(
    [
        ("url", pa.string()),
        ("status", pa.string()),  # "ok" or the reason it failed
        ("error", pa.string()),  # the message, as img2dataset / the guard gave it
        ("retryable", pa.bool_()),
        ("sha256", pa.string()),  # of the downloaded bytes
        ("width", pa.int32()),  # of the stored image
        ("height", pa.int32()),
        ("original_width", pa.int32()),
        ("original_height", pa.int32()),
        ("attempts", pa.int32()),  # runs that requested it
    ]
)

#: Failures a later run may fix: the server was slow, overloaded or briefly unreachable.
RETRYABLE = frozenset({"timeout", "connection_error", "http_408", "http_425", "http_429"})


def is_retryable(status: str) -> bool:
    return status in RETRYABLE or bool(re.fullmatch(r"http_5\d\d", status))


_RESIZE_REASONS = {
    "image too small": "too_small",
    "image area too large": "too_many_pixels",
    "aspect ratio too large": "bad_aspect_ratio",
}


def classify(status: str | None, error: str | None) -> str:
    """img2dataset's (status, error_message) → Loom's status."""
    if status == "success":
        return "ok"
    msg = error or ""
    if m := re.search(r"\[loom:(\w+)\]", msg):
        return m.group(1)
    if status == "failed_to_resize":
        return _RESIZE_REASONS.get(msg, "decode_error")
    if "X-Robots-Tag" in msg:
        return "noai"
    if m := re.search(r"HTTP Error (\d{3})", msg):
        return f"http_{m.group(1)}"
    if msg == "hash mismatch":
        return "hash_mismatch"
    lowered = msg.lower()
    if "timed out" in lowered or "timeout" in lowered:
        return "timeout"
    if "unknown url type" in lowered:
        return "bad_url"
    if any(s in lowered for s in ("refused", "reset", "remote end closed", "incompleteread", "broken pipe")):
        return "connection_error"
    if any(s in lowered for s in ("name or service not known", "nodename nor servname", "name resolution")):
        return "dns_error"
    return "download_error"


class PixelBudget:
    """The pixels the concurrent decodes of one worker may hold together: a decode of ``n`` pixels
    waits until ``n`` fit (one image alone always fits), so 32 download threads that each receive a
    9000² PNG do not decode 32 of them at once."""

    def __init__(self, pixels: int):
        self.pixels = pixels
        self.used = 0
        self.peak = 0  # the most held at once (tests, stats)
        self._room = threading.Condition()

    @contextlib.contextmanager
    def hold(self, n: int) -> Iterator[None]:
        with self._room:
            self._room.wait_for(lambda: self.used == 0 or self.used + n <= self.pixels)
            self.used += n
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._room:
                self.used -= n
                self._room.notify_all()


def _resizer(cfg: ImagesConfig, budget: PixelBudget | None = None) -> Any:
    """img2dataset's Resizer, preceded by a pixel count read from the image header (no decoding), its
    decode holding that many pixels of the worker's ``budget``."""
    from img2dataset.resizer import Resizer
    from PIL import Image

    class GuardedResizer(Resizer):
        def __call__(self, img_stream: io.BytesIO, blurring_bbox_list: Any = None) -> tuple:
            refused = (None, None, None, None, None)
            try:
                with Image.open(img_stream) as im:
                    width, height = im.size
            except Image.DecompressionBombError as err:
                return (*refused, f"[loom:too_many_pixels] {err}")
            except Exception as err:  # noqa: BLE001 - no size known: OpenCV would decode it unbounded
                return (*refused, f"[loom:decode_error] unreadable image header: {type(err).__name__}")
            if width * height > cfg.max_pixels:
                return (*refused, f"[loom:too_many_pixels] {width}x{height} > {cfg.max_pixels} pixels")
            img_stream.seek(0)
            with budget.hold(width * height) if budget else contextlib.nullcontext():
                return super().__call__(img_stream, blurring_bbox_list)

    return GuardedResizer(
        image_size=cfg.max_size,
        resize_mode=cfg.resize_mode,
        resize_only_if_bigger=cfg.resize_only_if_bigger,
        encode_quality=cfg.quality,
        encode_format=cfg.format,
        min_image_size=cfg.min_side,
        max_image_area=cfg.max_pixels,
        max_aspect_ratio=cfg.max_aspect_ratio or float("inf"),
    )


def _import_img2dataset(cfg: ImagesConfig) -> Any:
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations would phone home on import
    # OpenCV's own decode limit, read when cv2 is first imported: a second line behind the header check
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(cfg.max_pixels))
    import img2dataset.downloader

    return img2dataset


def fetch_urls(urls: list[str], cfg: ImagesConfig) -> tuple[pa.Table, pa.Table]:
    """Fetch ``urls`` (distinct) once each. Returns (one ``FETCH_SCHEMA`` row per URL, the images:
    url, sha256 and the encoded bytes of every success)."""
    rows: list[dict[str, Any]] = []
    to_fetch = []
    for url in urls:
        if problem := url_problem(url):
            rows.append(_row(url, "bad_url", problem))
        else:
            to_fetch.append(url)
    images = pa.table({"url": pa.array([], pa.string()), "image": pa.array([], pa.binary())})
    if to_fetch:
        fetched, images = _download(to_fetch, cfg)
        rows.extend(fetched)
    table = pa.Table.from_pylist(rows, schema=FETCH_SCHEMA).sort_by("url")
    return table, images


def _row(url: str, status: str, error: str | None, **found: Any) -> dict[str, Any]:
    return {
        "url": url,
        "status": status,
        "error": error,
        "retryable": is_retryable(status),
        "attempts": 1,
        **found,
    }


def _download(urls: list[str], cfg: ImagesConfig) -> tuple[list[dict[str, Any]], pa.Table]:
    i2d = _import_img2dataset(cfg)
    policy = FetchPolicy(cfg.allow_networks, cfg.max_bytes, cfg.timeout)  # deadline: 3 x timeout
    with tempfile.TemporaryDirectory(prefix="loom-fetch-") as tmp:
        shard = os.path.join(tmp, "urls.feather")
        with pa.OSFile(shard, "wb") as sink, pa.ipc.new_file(sink, pa.schema([("url", pa.string())])) as w:
            w.write_table(pa.table({"url": pa.array(urls, pa.string())}))
        results: list[tuple[dict[str, Any], bytes | None]] = []
        downloader = i2d.downloader.Downloader(
            sample_writer_class=_memory_writer(results),
            resizer=_resizer(cfg, PixelBudget(cfg.decode_pixels)),
            thread_count=cfg.threads,
            save_caption=False,
            extract_exif=False,
            output_folder=tmp,
            column_list=["url"],
            timeout=cfg.timeout,
            number_sample_per_shard=max(10, len(urls)),
            oom_shard_count=5,
            compute_hash="sha256",
            verify_hash_type=None,
            encode_format=cfg.format,
            retries=cfg.retries,
            user_agent_token=cfg.user_agent_token,
            disallowed_header_directives=cfg.disallowed_header_directives,
        )
        start = time.perf_counter()
        with guarded_urlopen(policy):
            downloader.download_shard((0, shard))  # raises when the shard as a whole fails
        log.debug("img2dataset: %d URLs in %.1fs", len(urls), time.perf_counter() - start)
    rows, ok_urls, ok_images = [], [], []
    for meta, data in results:
        status = classify(meta["status"], meta["error_message"])
        found = {k: meta[k] for k in ("sha256", "width", "height", "original_width", "original_height")}
        rows.append(_row(meta["url"], status, None if status == "ok" else meta["error_message"], **found))
        if status == "ok":
            ok_urls.append(meta["url"])
            ok_images.append(data)
    return rows, pa.table({"url": pa.array(ok_urls, pa.string()), "image": pa.array(ok_images, pa.binary())})


def _memory_writer(sink: list[tuple[dict[str, Any], bytes | None]]) -> type:
    """A sample writer for img2dataset's ``Downloader`` that keeps (meta, encoded bytes) in ``sink``
    instead of writing files (the Downloader calls ``write`` from one thread)."""

    class MemoryWriter:
        def __init__(self, *args: Any, **kwargs: Any):
            pass

        def write(self, img_str: bytes | None, key: str, caption: str | None, meta: dict[str, Any]) -> None:
            beat()  # one URL done: progress for the watchdog
            sink.append((meta, img_str))

        def close(self) -> None:
            pass

    return MemoryWriter
