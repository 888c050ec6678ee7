"""What a running job shows: a live line per step on a terminal, a log line per part without one, and
Ray's own log lines in OUT/logs/ray.log instead of the terminal (unless -v)."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from jobs.demo import build_demo_corpus
from jobs.logs import TerminalHandler
from jobs.progress import JobProgress
from pipeline.runner import Part, PartOutcome, PartStats, StepResult, listening, marker_path, run_step
from pipeline.stage import Resources
from pipeline.storage import Storage

REPO = Path(__file__).resolve().parents[2]
RAY_LINES = ("logging_progress", "streaming_executor", "Running Dataset")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def recording_console() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=100, record=True)


def screen(console: Console) -> list[str]:
    """The lines a terminal shows after what ``console`` wrote: carriage returns, erased lines and
    cursor moves up applied, colours ignored."""
    lines, row, col = [""], 0, 0
    for token in re.split(r"(\x1b\[[0-9;?]*[A-Za-z]|\r|\n)", console.file.getvalue()):
        if token == "\n":
            row, col = row + 1, 0
            lines += [""] * (row + 1 - len(lines))
        elif token == "\r":
            col = 0
        elif token == "\x1b[2K":
            lines[row] = ""
        elif up := re.fullmatch(r"\x1b\[(\d*)A", token):
            row -= int(up.group(1) or 1)
        elif token and not token.startswith("\x1b["):
            line = lines[row].ljust(col)
            lines[row] = line[:col] + token + line[col + len(token) :]
            col += len(token)
    return [line.rstrip() for line in lines if line.strip()]


def test_a_terminal_shows_one_live_line_per_step_and_keeps_its_summary():
    clock, console = Clock(), recording_console()
    with JobProgress(console, clock=clock, auto_refresh=False) as progress:
        progress.step_started("documents")
        assert progress.render().plain == "⠋ documents        running · 0:00 elapsed"
        progress.parts_pending("documents", total=3, pending=2)  # one part was done by an earlier run
        clock.now = 4.0
        progress.part_done("documents", PartOutcome("cc-00001", 100, 90, 4.0), done=2, total=3)
        assert progress.render().plain == (
            "⠋ documents        2/3 parts · 100 rows · 25 rows/s · 0:04 elapsed · ETA 0:04"
        )
        clock.now = 8.5
        progress.part_done("documents", PartOutcome("cc-00002", 100, 80, 4.5), done=3, total=3)
        result = StepResult("documents", 3, 2, PartStats(rows_in=300, rows_out=250), 8.5)
        assert screen(console)[-1] == progress.render().plain  # the live line, drawn in place
        progress.step_finished(result)
        assert progress.render().plain == ""  # no step runs: no live line
        progress.step_started("filters")
    assert screen(console) == [
        "✓ documents        3/3 parts (1 done before) · 300 rows in, 250 out · 0:08",
        "✗ filters          stopped after 0:00",  # the job stopped before the step finished
    ]


def test_a_step_that_fails_leaves_a_line_that_says_so():
    clock, console = Clock(), recording_console()
    with pytest.raises(RuntimeError), JobProgress(console, clock=clock, auto_refresh=False) as progress:
        progress.step_started("filters")
        progress.parts_pending("filters", total=2, pending=2)
        clock.now = 3.0
        progress.part_done("filters", PartOutcome("cc-00000", error="Traceback ..."), done=1, total=2)
        assert "1 failed" in progress.render().plain
        raise RuntimeError("the step failed")
    assert screen(console) == ["✗ filters          1/2 parts · 1 failed · stopped after 0:03"]


def test_a_global_steps_rounds_show_under_their_own_name():
    clock = Clock()
    with JobProgress(recording_console(), clock=clock, auto_refresh=False) as progress:
        progress.step_started("dedup_components")
        progress.parts_pending("dedup_components/r000-large", total=2, pending=2)
        assert progress.render().plain.startswith("⠋ dedup_components/r000-large 0/2 parts")


@pytest.fixture
def terminal(capsys):
    """Loom's terminal log handler (as ``loom`` sets it up) on the root logger, INFO and above."""
    root = logging.getLogger()
    handler = TerminalHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield capsys
    root.removeHandler(handler)
    root.setLevel(level)


def test_while_the_live_line_shows_info_lines_stay_off_the_terminal_and_warnings_print_above(terminal):
    log, console = logging.getLogger("jobs.test"), recording_console()
    with JobProgress(console, auto_refresh=False):
        log.info("step documents: part cc-00000 done (1/2)")  # loom.log has it (jobs.logs.loom_log)
        log.warning("a part is slow")
    log.info("after the run")
    assert screen(console) == ["WARNING jobs.test: a part is slow"]  # printed above the live line
    assert terminal.readouterr().err == "INFO jobs.test: after the run\n"  # the run over: shown again


class ToyStep:
    """Three parts; the middle one was done by an earlier run."""

    name = "toy"
    resources = Resources()

    def parts(self) -> list[Part]:
        return [Part(f"p{i}") for i in range(3)]

    def run_part(self, part: Part) -> PartStats:
        return PartStats(rows_in=10, rows_out=9)


class Heard:
    """A listener that writes down what the runner tells it."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def parts_pending(self, step: str, total: int, pending: int) -> None:
        self.events.append(("pending", step, total, pending))

    def part_done(self, step: str, outcome: PartOutcome, done: int, total: int) -> None:
        self.events.append(("done", step, outcome.name, outcome.rows_in, done, total))


def test_the_runner_tells_its_listener_of_every_part_as_it_finishes(tmp_path):
    storage = Storage(str(tmp_path))
    storage.write_json(marker_path("toy", "p1"), PartStats(rows_in=10, rows_out=9).to_json())
    heard = Heard()
    with listening(heard):
        run_step(ToyStep(), storage, ray=None)
    assert heard.events == [
        ("pending", "toy", 3, 2),
        ("done", "toy", "p0", 10, 2, 3),
        ("done", "toy", "p2", 10, 3, 3),
    ]
    run_step(ToyStep(), Storage(str(tmp_path / "again")), ray=None)  # no listener: nobody hears
    assert len(heard.events) == 3


def test_without_a_terminal_nothing_is_drawn_and_each_part_is_one_log_line(tmp_path, terminal):
    progress = JobProgress()  # what `loom` makes when stderr is not a terminal
    assert not progress.live
    with progress, listening(progress):
        progress.step_started("toy")
        result = run_step(ToyStep(), Storage(str(tmp_path)), ray=None)
        progress.step_finished(result)
    lines = [line for line in terminal.readouterr().err.splitlines() if "pipeline.runner" in line]
    assert [re.sub(r", [0-9.]+s$", "", line) for line in lines] == [
        "INFO pipeline.runner: step toy: 3 parts, 3 to run",
        "INFO pipeline.runner: step toy: part p0 done (1/3): 10 rows in, 9 out",
        "INFO pipeline.runner: step toy: part p1 done (2/3): 10 rows in, 9 out",
        "INFO pipeline.runner: step toy: part p2 done (3/3): 10 rows in, 9 out",
    ]


# `loom run` in a subprocess, its stderr a pipe (no terminal), on a Ray it starts itself


def write_spec(tmp_path: Path, sources: list[str]) -> Path:
    """A two-step job (documents, shards): the fewest Ray Data runs that still show Ray's lines."""
    spec = tmp_path / "job.toml"
    spec.write_text(
        f'name = "logs"\noutput = "{tmp_path / "out"}"\n'
        + "".join(sources)
        + "[images]\nfetch = false\n[filters]\nenabled = false\n[dedup]\nenabled = false\n"
        + "[tokenizer]\nenabled = false\n[ray]\nnum_cpus = 2\n"
    )
    return spec


def demo_warc(tmp_path: Path) -> str:
    warc = build_demo_corpus(tmp_path / "input", pages=20)
    return f'[[sources]]\nname = "demo"\npaths = ["{warc}"]\nfetch_images = false\n'


def loom(*args: str | Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a local Ray of its own
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "jobs.cli", *map(str, args)],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_loom_run_keeps_rays_log_lines_in_the_output_and_shows_a_line_per_part(tmp_path):
    done = loom("run", write_spec(tmp_path, [demo_warc(tmp_path)]))
    assert done.returncode == 0, done.stderr[-3000:]
    for noise in RAY_LINES:
        assert noise not in done.stderr, done.stderr
    assert "step documents: part demo-00000 done (1/1)" in done.stderr
    logs = tmp_path / "out" / "logs"
    ray_log = (logs / "ray.log").read_text()
    assert "streaming_executor" in ray_log and "Execution plan of Dataset" in ray_log
    assert "step shards: part demo-00000 done (1/1)" in (logs / "loom.log").read_text()
    assert f"  logs:      {logs}/   (loom.log, ray.log)\n" in done.stdout


def test_loom_run_verbose_shows_rays_log_lines_on_the_terminal(tmp_path):
    done = loom("-v", "run", write_spec(tmp_path, [demo_warc(tmp_path)]))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "streaming_executor" in done.stderr
    assert "streaming_executor" in (tmp_path / "out" / "logs" / "ray.log").read_text()  # and kept


def test_a_part_that_fails_on_ray_shows_its_whole_error_on_the_terminal(tmp_path):
    pairs = tmp_path / "pairs.parquet"
    pq.write_table(pa.table({"caption": ["a picture"]}), pairs)  # no URL column: the part fails
    source = f'[[sources]]\ntype = "pairs"\nname = "bad"\npreset = "laion"\npaths = ["{pairs}"]\n'
    done = loom("run", write_spec(tmp_path, [source]))
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr  # the worker's, told by the driver
    assert f"ValueError: {pairs}: no column 'URL' (columns: caption)" in done.stderr
    assert "loom: error: step documents: 1 of 1 parts failed" in done.stderr
    assert f"the job stopped; its logs: {tmp_path / 'out' / 'logs'}" in done.stderr
    for noise in RAY_LINES:
        assert noise not in done.stderr, done.stderr
