"""Run every benchmark (``bench/*_bench.py``) in its quick mode, one at a time; CI and ``make bench``.

    .venv/bin/python bench/run_all.py [NAME ...] [--timeout S] [--verbose]

Each bench runs as ``python bench/NAME_bench.py --quick`` from the repository root, with this
interpreter. Its last non-empty line of output must be one JSON object with a ``"bench"`` key: that
line is printed here, one per bench, so ``run_all.py > figures.jsonl`` keeps them all. A bench's log
(stderr) is shown only when it fails (``--verbose``: always). A bench fails when it exits non-zero,
runs past ``--timeout`` or ends with anything else than such a JSON line; every bench still runs,
and then the run exits 1 naming the ones that failed. ``NAME ...`` runs only those (``images``,
``minhash``, …).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
SUFFIX = "_bench.py"
LOG_TAIL = 60  # lines of a failed bench's stderr shown


def benches(names: list[str]) -> list[Path]:
    """The bench scripts, sorted; only ``names`` when given (an unknown name is an error)."""
    found = {p.name.removesuffix(SUFFIX): p for p in sorted(BENCH_DIR.glob(f"*{SUFFIX}"))}
    if unknown := [n for n in names if n not in found]:
        raise SystemExit(f"run_all: no bench {', '.join(unknown)} (there are: {', '.join(found)})")
    return [found[n] for n in names] if names else list(found.values())


def last_line(stdout: str) -> str | None:
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    return lines[-1] if lines else None


def is_figures(line: str | None) -> bool:
    """Whether ``line`` is one JSON object with a "bench" key."""
    try:
        obj = json.loads(line or "")
    except json.JSONDecodeError:
        return False
    return isinstance(obj, dict) and "bench" in obj


def run(script: Path, timeout: float, verbose: bool) -> tuple[str | None, str | None]:
    """Run one bench: (its JSON line, None) or (None, why it failed)."""
    name = script.name.removesuffix(SUFFIX)
    cmd = [sys.executable, str(script.relative_to(ROOT)), "--quick"]
    print(f"run_all: {name}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    # A session of its own, so that every process the bench started (Ray, img2dataset's workers, an
    # image server) goes with it: when it runs past its time, and any left behind when it ends.
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    code: int | None
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        code = proc.returncode
        _kill(proc)
    except subprocess.TimeoutExpired:
        _kill(proc)
        stdout, stderr = proc.communicate()
        code = None
    except BaseException:  # Ctrl-C here: the bench, in its own session, did not get it
        _kill(proc)
        raise
    seconds = time.perf_counter() - start
    line = last_line(stdout)
    if code is None:
        why = f"ran past {timeout:.0f} s"
    elif code != 0:
        why = f"exit code {code}"
    elif not is_figures(line):
        why = 'its last line of output is not a JSON object with a "bench" key'
    else:
        why = None
    if verbose or why:
        tail = stderr.splitlines()[-LOG_TAIL:] if why and not verbose else stderr.splitlines()
        sys.stderr.write("".join(f"  {name}| {line}\n" for line in tail))
    if why:
        shown = line if line is None or len(line) <= 200 else line[:200] + "…"
        print(f"run_all: {name}: FAILED ({why}) after {seconds:.1f} s; last line: {shown!r}", file=sys.stderr)
        return None, why
    print(f"run_all: {name}: ok, {seconds:.1f} s", file=sys.stderr, flush=True)
    return line, None


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("names", nargs="*", help="benches to run (default: all)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds one bench may run (300)")
    ap.add_argument("--verbose", action="store_true", help="show every bench's log, not only a failed one's")
    args = ap.parse_args(argv)
    failed: dict[str, str] = {}
    for script in benches(args.names):
        line, why = run(script, args.timeout, args.verbose)
        if line is None:
            failed[script.name] = why or "failed"
        else:
            print(line, flush=True)
    if failed:
        print(
            "run_all: failed: " + "; ".join(f"bench/{n} ({why})" for n, why in failed.items()),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
