"""img2dataset behind the guard: statuses, and Pillow's decoder edge cases never crash a fetch."""

from __future__ import annotations

import pytest

from pipeline.config import ImagesConfig
from pipeline.images.fetch import classify, fetch_urls, is_retryable
from pipeline.images.serve import ImageServer


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        ("success", None, "ok"),
        ("failed_to_download", "HTTP Error 404: Not Found", "http_404"),
        ("failed_to_download", "<urlopen error timed out>", "timeout"),
        ("failed_to_download", "Use of image disallowed by X-Robots-Tag directive", "noai"),
        (
            "failed_to_download",
            "<urlopen error [loom:refused_address] x: 10.0.0.1 is a private address>",
            "refused_address",
        ),
        ("failed_to_download", "<urlopen error [Errno 111] Connection refused>", "connection_error"),
        ("failed_to_resize", "Image decoding error", "decode_error"),
        ("failed_to_resize", "image too small", "too_small"),
    ],
)
def test_img2dataset_outcomes_become_loom_statuses(status, error, expected):
    assert classify(status, error) == expected


def test_what_a_rerun_retries():
    assert all(map(is_retryable, ["timeout", "connection_error", "http_503", "http_429", "http_500"]))
    assert not any(map(is_retryable, ["http_404", "refused_address", "noai", "decode_error", "too_large"]))


def test_pillow_edge_cases_decode_or_are_refused_with_a_reason(shared_data):
    folder = shared_data / "images/pillow-edgecases"
    names = sorted(p.name for p in folder.iterdir() if p.name != "LICENSE")
    with ImageServer(folder) as server:
        log, images = fetch_urls(
            [f"{server.url}/{n}" for n in names], ImagesConfig(allow_networks=["127.0.0.1"])
        )
    got = {r["url"].rsplit("/", 1)[1]: r for r in log.to_pylist()}
    assert set(got) == set(names)
    refused = {n: r["status"] for n, r in got.items() if r["status"] != "ok"}
    assert refused == {
        "broken.png": "decode_error",
        "broken_data_stream.png": "decode_error",
        "decompression_bomb.gif": "too_many_pixels",  # refused from its header, before decoding
        "hopper.heif": "decode_error",  # OpenCV has no HEIF decoder
    }
    for n in ("hopper_orientation_6.jpg", "pil_sample_cmyk.jpg", "hopper.avif", "chi.gif", "iss634.webp"):
        assert got[n]["status"] == "ok" and got[n]["sha256"] and got[n]["width"] > 0
    assert images.num_rows == len(names) - len(refused)
    assert all(data[:3] == b"\xff\xd8\xff" for data in images["image"].to_pylist())  # stored as JPEG
