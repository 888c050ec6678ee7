"""Interleaved Common Crawl documents get their images too: fetched once, failures taken out."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from jobs.run import run_job
from jobs.spec import parse_job
from pipeline.images.serve import ImageServer, Route
from pipeline.storage import Storage
from shards.validate import validate_output

PROSE = (
    "The river town kept its old bridge for three hundred years, and every spring the water rose to "
    "meet the arches. The people who lived there learned to read the colour of the current. "
)


def page(images: list[str]) -> str:
    blocks = [f"<p>{PROSE * 3}</p>"]
    for src in images:
        blocks += [f'<img src="{src}" width="640" height="480" alt="a view">', f"<p>{PROSE * 2}</p>"]
    return f"<html><head><title>River</title></head><body><article>{''.join(blocks)}</article></body></html>"


def write_warc(path: Path, pages: dict[str, str]) -> None:
    """A plain WARC of HTTP 200 HTML responses."""
    with open(path, "wb") as f:
        for n, (url, html) in enumerate(pages.items()):
            body = html.encode()
            http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + body
            head = (
                "WARC/1.0\r\nWARC-Type: response\r\n"
                f"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-{n:012d}>\r\n"
                f"WARC-Target-URI: {url}\r\nWARC-Date: 2024-05-01T00:00:00Z\r\n"
                f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(http)}\r\n\r\n"
            )
            f.write(head.encode() + http + b"\r\n\r\n")


def test_interleaved_pages_share_one_fetch_and_keep_their_text_when_an_image_fails(shared_data, tmp_path):
    photos = shared_data / "images/conceptual-captions-openimages"
    with ImageServer(photos) as server, ImageServer(host="127.0.0.2") as forbidden:
        shared, other = f"{server.url}/0006400c1c224e19.jpg", f"{server.url}/000adef7197e3118.jpg"
        server.routes["/inside"] = Route(302, b"", {"Location": f"http://127.0.0.2:{forbidden.port}/x.jpg"})
        warc = tmp_path / "pages.warc"
        write_warc(
            warc,
            {
                "https://river.example/1": page([shared, f"{server.url}/gone.jpg"]),
                "https://river.example/2": page([shared, other]),
                "https://river.example/3": page([f"{server.url}/inside"]),
            },
        )
        spec = parse_job(
            {
                "name": "interleaved",
                "output": str(tmp_path / "out"),
                "sources": [{"name": "cc", "paths": [str(warc)]}],
                "images": {"allow_networks": ["127.0.0.1/32"], "timeout": 5.0},
                "dedup": {"enabled": False},  # pages 1 and 2 share their text on purpose
                "filters": {"enabled": False},  # and repeat one sentence: the Gopher rules would drop them
            }
        )
        run_job(spec, use_ray=False)
    assert server.requests["/0006400c1c224e19.jpg"] == 1  # used by two pages, fetched once
    assert sum(forbidden.requests.values()) == 0
    out = Path(spec.output)
    docs = {d["url"]: d for d in pq.read_table(out / "work/join/cc-00000.parquet").to_pylist()}
    one, two, three = (docs[f"https://river.example/{k}"] for k in (1, 2, 3))
    assert one["kind"] == "interleaved" and [im is not None for im in one["images"]] == [False, True, False]
    assert (
        one["texts"][2] == f"{(PROSE * 2).strip()}\n\n{(PROSE * 2).strip()}"
    )  # the text around the 404 merged
    assert one["images"][1]["sha256"] == two["images"][1]["sha256"]
    assert (one["images"][1]["width"], one["images"][1]["height"]) == (679, 451)  # the stored photo's size
    assert three["kind"] == "text" and all(im is None for im in three["images"])
    ledger = pq.read_table(out / "work/join/cc-00000.ledger.parquet").to_pylist()
    assert sorted((r["stage"], r["reason"]) for r in ledger) == [
        ("image", "image_http_404"),
        ("image", "image_refused_address"),
    ]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["steps"]["join"]["extra"]["images_removed"] == {
        "image_http_404": 1,
        "image_refused_address": 1,
    }
    assert stats["shards"]["image_files"] == 3
    assert validate_output(Storage(spec.output)).ok
