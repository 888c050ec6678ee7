"""A no-progress watchdog for parts: a part that stops making progress fails instead of hanging.

:func:`watch` runs around one part: a thread checks when the part last reported progress
(:func:`beat`, called by the step's loops: a record read, a batch done, 64 KB downloaded) and, past
``stall_seconds`` without any, raises :class:`PartStalled` in the part's thread. The exception
arrives as soon as that thread runs Python again: at once in a Python loop, after the socket's own
timeout in a blocking read. The part fails like any failed part (no marker: a rerun retries it),
and the step's error names the step, the part and how long it stalled.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import time
from collections.abc import Iterator


class PartStalled(BaseException):
    """A part that made no progress for longer than the stall limit. A ``BaseException``, like
    ``KeyboardInterrupt``, so that no ``except Exception`` in a step or a library swallows it."""


class _Watch:
    def __init__(self) -> None:
        self.last = time.monotonic()
        self.stalled: float | None = None


_current: _Watch | None = None  # the part this process is running (one at a time per worker)


def beat() -> None:
    """The running part made progress (cheap: one clock read; a no-op outside a watched part)."""
    if _current is not None:
        _current.last = time.monotonic()


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else None
    )


@contextlib.contextmanager
def watch(step: str, part: str, stall_seconds: float | None) -> Iterator[None]:
    """Fail the block with :class:`PartStalled` when it makes no progress for ``stall_seconds``
    (None or 0: not watched)."""
    global _current
    if not stall_seconds:
        yield
        return
    state, stop, target = _Watch(), threading.Event(), threading.get_ident()

    def check() -> None:
        while not stop.wait(min(1.0, stall_seconds / 4)):
            idle = time.monotonic() - state.last
            if idle > stall_seconds:
                state.stalled = idle
                _raise_in(target, PartStalled)
                return

    _current = state
    guard = threading.Thread(target=check, name=f"watchdog-{part}", daemon=True)
    guard.start()
    try:
        yield
    except PartStalled:
        raise PartStalled(
            f"step {step}, part {part}: no progress for {state.stalled or stall_seconds:.0f}s "
            f"(run.stall_seconds = {stall_seconds:g})"
        ) from None
    finally:
        stop.set()
        guard.join()
        _current = None
        if state.stalled is not None:
            _raise_in(target, None)  # the part ended as the watchdog fired: drop the pending exception
