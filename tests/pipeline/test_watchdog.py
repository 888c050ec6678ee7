"""Every wait is bounded: a remote input has an overall download deadline, and a part that makes no
progress fails its step, naming the step, the part and how long it stalled."""

from __future__ import annotations

import io
import threading

import pytest

from jobs.spec import parse_job
from pipeline.documents import DocumentsStep, plan_parts
from pipeline.images.serve import ImageServer, Route
from pipeline.runner import StepFailed, run_step
from pipeline.sources.commoncrawl import DownloadTimeout, download
from pipeline.storage import Storage
from pipeline.watchdog import PartStalled, beat, watch

BODY = b"WARC/1.0\r\n" + b"x" * 2000  # what the dripping server sends, a byte at a time


@pytest.fixture
def dripping():
    """A server that sends its body one byte every 50 ms: it never stalls, it never finishes."""
    with ImageServer() as server:
        server.routes["/slow.warc"] = Route(200, BODY, {"Content-Type": "application/warc"}, drip=0.05)
        yield server


def test_a_download_has_an_overall_deadline_naming_the_url(dripping):
    url = dripping.url + "/slow.warc"
    with pytest.raises(DownloadTimeout, match=rf"{url}: not downloaded within 0.5s \(\d+ bytes so far"):
        download(url, io.BytesIO(), deadline_s=0.5)


def test_a_part_without_progress_fails_its_step_naming_step_part_and_stall(dripping, tmp_path):
    url = dripping.url + "/slow.warc"
    spec = parse_job(
        {
            "name": "t",
            "output": str(tmp_path),
            "sources": [{"paths": [url]}],
            "images": {"fetch": False},
            "run": {"stall_seconds": 1},
        }
    )
    parts = plan_parts(spec.sources)
    step = DocumentsStep(Storage(str(tmp_path)), parts, spec.sources, spec.extract, download_seconds=600)
    step.stall_seconds = 1  # what jobs/graph.py sets from run.stall_seconds
    with pytest.raises(
        StepFailed,
        match=r"step documents: 1 of 1 parts failed \(first: cc-00000: .*"
        r"step documents, part cc-00000: no progress for \ds",
    ):
        run_step(step, step.storage, ray=None)
    assert not step.storage.exists("work/documents/cc-00000.done")  # a rerun retries it


def test_progress_keeps_a_part_alive_and_silence_stops_it():
    done = threading.Event()
    with watch("s", "p", 0.3):
        for _ in range(60):  # 0.6 s in all, with progress every 10 ms
            done.wait(0.01)
            beat()
    with pytest.raises(PartStalled, match=r"step s, part p: no progress for 0s \(run.stall_seconds = 0.3\)"):
        with watch("s", "p", 0.3):
            while True:
                done.wait(0.01)  # busy, but no progress
