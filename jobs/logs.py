"""Where a job's log lines go: the terminal shows progress and errors; the rest goes to files.

``OUT/logs/loom.log`` holds Loom's own lines (every part, every step; debug lines with ``-v``) and
``OUT/logs/ray.log`` the driver's Ray lines: the ``ray`` and ``ray.data`` loggers (Ray Data's
execution plans, resource lines, non-terminal progress). An ``s3://`` output keeps them in a local
folder, ``$TMPDIR/loom-logs/<bucket>/<prefix>/`` (a log grows line by line; S3 objects are written
whole). On the terminal Ray keeps its errors; ``-v`` (verbose) shows all its lines there too.

``ray.log`` also takes the lines Ray forwards to the driver from its workers and its own processes
(``(MapWorker pid=…) …``, ``(pid=gcs_server) …``): Ray's only public switch for those,
``ray.init(log_to_driver=False)``, drops them, so its dispatcher's handler is replaced (a private
API of Ray 2.60, the version pinned; if it moves, the lines stay on the terminal). A part that fails
on a worker still shows its traceback on the terminal: the driver logs it (``pipeline.runner``).

What Ray writes below Python is out of reach: the driver's C++ core worker prints its ERROR lines
straight to the process's stderr. Ray 2.60 prints one such line per run for Ray Data's actor pools
("… has constructor arguments in the object store and max_restarts > 0 …", ray-project/ray#57733).
Each Ray process also keeps its own logs in Ray's session folder (``/tmp/ray/session_latest/logs``).
"""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from pipeline.storage import Storage

LOGS = "logs"
LOOM_LOG = "loom.log"
RAY_LOG = "ray.log"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
RAY_FORMAT = "%(asctime)s\t%(levelname)s %(filename)s:%(lineno)s -- %(message)s"  # Ray's own
RAY_LOGGERS = ("ray", "ray.data")  # the driver's Ray loggers (``ray.data`` does not propagate to ``ray``)
RAY_PRINT_LOGS = "ray_print_logs"  # the name of Ray's handler that prints forwarded lines (ray.init)


def log_folder(storage: Storage) -> Path:
    """``OUT/logs/``; for an ``s3://`` output, a local folder named after it (``$TMPDIR/loom-logs/...``)."""
    if storage.is_local:
        return Path(storage.uri()) / LOGS
    where = storage.uri().partition("?")[0].partition("://")[2].strip("/")
    return Path(tempfile.gettempdir()) / "loom-logs" / where


class TerminalHandler(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is when a record comes, so that a live
    display that redirects stderr prints the line above itself (``logging``'s own handler keeps the
    stream it was made with)."""

    def __init__(self, level: int = logging.NOTSET) -> None:
        logging.Handler.__init__(self, level)

    @property
    def stream(self) -> TextIO:  # type: ignore[override]
        return sys.stderr


def terminal_handlers() -> list[logging.Handler]:
    """The root logger's :class:`TerminalHandler` (``loom``'s terminal), if any."""
    return [h for h in logging.getLogger().handlers if isinstance(h, TerminalHandler)]


def _file_handler(path: Path, fmt: str, level: int) -> logging.FileHandler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")  # appends: a rerun adds to the same log
    handler.setFormatter(logging.Formatter(fmt))
    handler.setLevel(level)
    return handler


@contextmanager
def loom_log(folder: Path, *, verbose: bool) -> Iterator[Path]:
    """While it lasts, what reaches the root logger is written to ``folder/loom.log`` too."""
    handler = _file_handler(folder / LOOM_LOG, FORMAT, logging.DEBUG if verbose else logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield folder / LOOM_LOG
    finally:
        root.removeHandler(handler)
        handler.close()


class RayLogs:
    """The driver's Ray log lines into ``ray.log``, from :meth:`start` (before ``ray.init``) to
    :meth:`stop`: Ray's terminal handlers keep only errors, unless ``verbose``. Ray Data's progress
    bars are off when stdout is a terminal (Loom draws its own line per step, ``jobs/progress.py``);
    without one, Ray Data logs its progress every 10 s (``logging_progress``), into ``ray.log``."""

    def __init__(self, path: Path, *, verbose: bool) -> None:
        self.path = path
        self.verbose = verbose
        self._file: logging.FileHandler | None = None
        self._levels: list[tuple[logging.Handler, int]] = []
        self._progress_bars: bool | None = None

    def start(self) -> None:
        if self._file is not None:
            return
        import ray.data  # importing it configures the ``ray.data`` logger (its handlers replaced): first

        self._file = _file_handler(self.path, RAY_FORMAT, logging.DEBUG if self.verbose else logging.INFO)
        for name in RAY_LOGGERS:
            logger = logging.getLogger(name)
            if not self.verbose:
                for handler in logger.handlers:
                    if isinstance(handler, logging.StreamHandler) and not isinstance(
                        handler, logging.FileHandler
                    ):
                        self._levels.append((handler, handler.level))
                        handler.setLevel(logging.ERROR)
            logger.addHandler(self._file)
        if sys.stdout.isatty():  # Ray Data would draw bars on the terminal (else it logs its progress)
            context = ray.data.DataContext.get_current()
            self._progress_bars = context.enable_progress_bars
            context.enable_progress_bars = False

    def take_forwarded_lines(self) -> None:
        """After ``ray.init``: the lines Ray forwards to the driver go to ``ray.log`` (unless verbose)."""
        if self.verbose or self._file is None:
            return
        try:
            from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher
        except ImportError:  # another Ray than the one pinned: the lines stay on the terminal
            return
        dispatcher.remove_handler(RAY_PRINT_LOGS)
        dispatcher.add_handler(RAY_PRINT_LOGS, self._write_forwarded)  # ray.shutdown removes it

    def _write_forwarded(self, batch: dict) -> None:
        """One batch of forwarded lines (Ray's keys: pid, actor_name or task_name, lines), as Ray
        prints them: ``(name pid=…) line``."""
        handler = self._file
        if handler is None or handler.stream is None:
            return
        who = " ".join(str(w) for w in (batch.get("actor_name") or batch.get("task_name"), "pid=") if w)
        prefix = f"({who}{batch.get('pid')})"
        handler.acquire()
        try:
            for line in batch.get("lines", []):
                handler.stream.write(f"{prefix} {line}\n")
            handler.flush()
        finally:
            handler.release()

    def stop(self) -> None:
        if self._file is None:
            return
        for name in RAY_LOGGERS:
            logging.getLogger(name).removeHandler(self._file)
        self._file.close()
        self._file = None
        for handler, level in self._levels:
            handler.setLevel(level)
        self._levels.clear()
        if self._progress_bars is not None:
            import ray.data

            ray.data.DataContext.get_current().enable_progress_bars = self._progress_bars
            self._progress_bars = None
