"""Image acquisition end to end: real LAION rows, a local server that plays the web's failures.

The URLs are the first rows of ``pairs/img2dataset/test_10000.parquet`` with their host rewritten to
a server on 127.0.0.1 that serves the real photos of ``images/`` round-robin; some paths answer with
what the web answers: 404, a slow response, a redirect to a refused address, ``noai``, HTML, a
broken PNG, a decompression bomb, a 503 that recovers.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.run import run_job
from jobs.spec import parse_job
from pipeline.images.serve import ImageServer, Route
from pipeline.storage import Storage
from shards.validate import validate_output

ROWS = 120
REPEATS = 12  # extra rows that reuse the first row's image URL


@pytest.fixture
def web(shared_data):
    """The server, the second listener a redirect points at, and the pair table (rows of URL, TEXT)."""
    images = shared_data / "images"
    photos = sorted(
        p.relative_to(images).as_posix() for p in images.glob("*/*.jpg") if "pillow" not in str(p)
    )
    rows = pq.read_table(shared_data / "pairs/img2dataset/test_10000.parquet", columns=["URL", "TEXT"])
    rows = rows.slice(0, ROWS).to_pylist()
    with ImageServer(images) as server, ImageServer(host="127.0.0.2") as forbidden:
        paths = []
        for i, row in enumerate(rows):
            u = urlsplit(row["URL"])
            path = f"/{i:03d}{u.path}"  # the real path, made unique
            paths.append(path)
            row["URL"] = f"{server.url}{path}" + (f"?{u.query}" if u.query else "")
            server.routes[path] = Route(file=photos[i % len(photos)])
        cases = {
            "http_404": [Route(404, b"gone", {"Content-Type": "text/html"}) for _ in range(4)],
            "timeout": [Route(200, b"late", {"Content-Type": "image/jpeg"}, delay=4.0) for _ in range(2)],
            "refused_address": [
                Route(302, b"", {"Location": f"http://127.0.0.2:{forbidden.port}/internal"}) for _ in range(2)
            ],
            "noai": [Route(file=photos[0], headers={"X-Robots-Tag": "noai"}) for _ in range(2)],
            "not_image": [
                Route(200, b"<html>a page</html>", {"Content-Type": "text/html"}) for _ in range(2)
            ],
            "decode_error": [
                Route(file="pillow-edgecases/broken.png", headers={"Content-Type": "image/png"})
            ],
            "too_many_pixels": [Route(file="pillow-edgecases/decompression_bomb.gif")],
            "http_503": [  # busy once, then the photo
                Route(503, b"busy", {"Content-Type": "text/plain"}, fail_times=1, file=photos[j])
                for j in range(3)
            ],
        }
        expected, k = {}, 0
        for status, routes in cases.items():
            for route in routes:
                k += 1
                server.routes[paths[-k]] = route
                expected[paths[-k]] = status
        rows += [{"URL": rows[0]["URL"], "TEXT": f"the same picture, row {j}"} for j in range(REPEATS)]
        yield server, forbidden, rows, expected


def pair_job(tmp_path: Path, rows: list[dict], **images):
    tmp_path.mkdir(parents=True, exist_ok=True)
    table = tmp_path / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), table)
    return parse_job(
        {
            "name": "acquisition",
            "output": str(tmp_path / "out"),
            "sources": [{"type": "pairs", "name": "laion", "preset": "laion", "paths": [str(table)]}],
            "images": {"allow_networks": ["127.0.0.1/32"], "timeout": 1.0, "urls_per_part": 40, **images},
        }
    )


def fetch_log(out: Path) -> dict[str, dict]:
    logs = sorted((out / "work/images").glob("*.urls.parquet"))
    return {urlsplit(r["url"]).path: r for f in logs for r in pq.read_table(f).to_pylist()}


def image_table(out: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(f) for f in sorted((out / "work/image_table").glob("*.parquet")))


def test_every_url_gets_its_status_and_a_rerun_fetches_only_the_retryable_ones(web, tmp_path):
    server, forbidden, rows, expected = web
    spec = pair_job(tmp_path, rows)
    out = Path(spec.output)

    first = run_job(spec, use_ray=False)

    log = fetch_log(out)
    assert len(log) == ROWS  # 132 rows, 120 distinct URLs
    failures = Counter(s for s in expected.values())
    statuses = Counter(r["status"] for r in log.values())
    assert statuses == {"ok": ROWS - sum(failures.values()), **failures}
    for path, status in expected.items():
        assert log[path]["status"] == status, (path, log[path]["error"])
        assert log[path]["retryable"] == (status in ("timeout", "http_503"))
    assert sum(forbidden.requests.values()) == 0  # the redirect never reached the refused address
    assert all(n == 1 for n in server.requests.values())  # each URL requested once, repeats included

    stats = json.loads((out / "stats.json").read_text())["steps"]
    assert stats["images"]["parts"] == 4  # 132 references / 40 per part
    assert stats["images"]["skipped"] == {"duplicate_url": REPEATS}
    assert stats["images"]["extra"]["retryable"] == 5
    assert stats["join"]["drops"] == {f"image_{s}": n for s, n in failures.items()}
    ok_pairs = ROWS + REPEATS - sum(failures.values())
    assert first.samples == ok_pairs

    # 103 URLs serve 25 distinct photos, spread over 4 fetch parts: the image table holds each once
    photos = {server.routes[p].file for p, r in log.items() if r["status"] == "ok"}
    table = image_table(out)
    shas = table["sha256"].to_pylist()
    assert len(shas) == len(set(shas)) == len(photos) == 25
    assert sum(len(u) for u in table["urls"].to_pylist()) == statuses["ok"]  # every URL listed with its image
    assert stats["image_table"]["parts"] == 4 and stats["image_table"]["rows_out"] == 25
    assert not list((out / "work/images").glob("*.fetched.parquet"))  # the fetch parts' copies are gone
    assert validate_output(Storage(spec.output)).ok

    # The server recovers: the slow paths answer at once, the 503s have used up their failure.
    for path, status in expected.items():
        if status == "timeout":
            server.routes[path] = Route(file="conceptual-captions-openimages/0006400c1c224e19.jpg")
    before = Counter(server.requests)
    second = run_job(spec, use_ray=False, retry_images=True)
    asked = Counter(server.requests) - before
    assert set(asked) == {p for p, s in expected.items() if s in ("timeout", "http_503")}
    log = fetch_log(out)
    assert {log[p]["status"] for p in asked} == {"ok"}, {p: log[p]["error"] for p in asked}
    assert Counter(r["status"] for r in log.values())["ok"] == ROWS - sum(failures.values()) + 5
    assert {log[p]["attempts"] for p in asked} == {2}
    assert second.samples == ok_pairs + 5
    table = image_table(out)  # the recovered URLs serve photos it holds already: their rows gain URLs
    assert len(table) == 25
    assert sum(len(u) for u in table["urls"].to_pylist()) == statuses["ok"] + 5
    report = validate_output(Storage(spec.output))
    assert report.ok, report.problems
    assert sum(forbidden.requests.values()) == 0


def test_one_image_used_by_many_documents_is_fetched_and_stored_once(web, tmp_path):
    server, _, rows, _ = web
    spec = pair_job(tmp_path, rows[:3] + rows[-REPEATS:])
    run_job(spec, use_ray=False)
    shared = urlsplit(rows[0]["URL"]).path
    assert server.requests[shared] == 1
    out = Path(spec.output)
    table = image_table(out)
    row = next(r for r in table.to_pylist() if rows[0]["URL"] in r["urls"])
    assert sum(rows[0]["URL"] in r["urls"] for r in table.to_pylist()) == 1
    docs = pq.read_table(out / "work/join/laion-00000.parquet").to_pylist()
    users = [d for d in docs if d["images"][0]["url"] == rows[0]["URL"]]
    assert len(users) == REPEATS + 1
    assert {d["images"][0]["sha256"] for d in users} == {row["sha256"]}


def test_without_an_allowlist_the_local_server_is_never_contacted(web, tmp_path):
    server, _, rows, _ = web
    spec = pair_job(tmp_path, rows[:10], allow_networks=[])
    outcome = run_job(spec, use_ray=False)
    assert outcome.samples == 0
    assert sum(server.requests.values()) == 0
    log = fetch_log(Path(spec.output))
    assert {r["status"] for r in log.values()} == {"refused_address"}


def test_local_ray_and_one_process_write_the_same_shards(web, tmp_path, local_ray):
    _, _, rows, _ = web
    subset = rows[:40] + rows[-REPEATS:]
    manifests = []
    for where, use_ray in (("ray", True), ("here", False)):
        spec = pair_job(tmp_path / where, subset, urls_per_part=12)  # 5 fetch parts for 2 workers
        run_job(spec, use_ray=use_ray)
        manifests.append(pq.read_table(Path(spec.output) / "manifest.parquet").to_pylist())
    assert manifests[0] == manifests[1]
    assert sum(r["image_files"] for r in manifests[0]) == len(subset)


def test_loom_run_retry_images_from_the_command_line(web, tmp_path, capsys):
    from jobs.cli import main

    server, _, rows, _ = web
    busy = urlsplit(rows[1]["URL"]).path
    server.routes[busy] = Route(
        503, b"busy", {"Content-Type": "text/plain"}, fail_times=1, file=server.routes[busy].file
    )
    spec = pair_job(tmp_path, rows[:4])
    job = tmp_path / "job.json"
    job.write_text(spec.model_dump_json())
    assert main(["run", str(job)]) == 0
    assert "done: 3 samples" in capsys.readouterr().out
    assert main(["run", str(job)]) == 0  # a plain rerun fetches nothing
    assert server.requests[busy] == 1
    assert main(["run", str(job), "--retry-images"]) == 0
    assert "done: 4 samples" in capsys.readouterr().out
    assert server.requests[busy] == 2 and server.requests[urlsplit(rows[0]["URL"]).path] == 1
