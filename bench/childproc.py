"""Run a bench measurement in a fresh spawned process: its own imports, memory and timings.

Shared by the benches (``from childproc import in_child``: a bench runs as a script, so its folder
is on ``sys.path``).
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger("bench")


def _child_main(conn: Connection, fn: Callable[..., dict[str, Any]], args: tuple) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("pipeline").setLevel(logging.WARNING)  # no line per part
    try:
        conn.send(fn(*args))
    except BaseException as err:  # the parent reports it
        log.exception("child failed")
        conn.send({"error": f"{type(err).__name__}: {err}"})
    finally:
        conn.close()


def in_child(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``fn(*args)`` in a fresh spawned process; its result dict (``error`` when it failed)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(child, fn, args))
    proc.start()
    child.close()
    try:
        out = parent.recv()
    except EOFError:
        out = {"error": "the child process died"}
    proc.join()
    if proc.exitcode and "error" not in out:
        out["error"] = f"exit code {proc.exitcode}"
    return out
