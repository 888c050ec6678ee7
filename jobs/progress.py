"""What the terminal shows while a job runs: one live line per step, then its one-line summary.

On a terminal (stderr is a TTY) the running step has one line, redrawn in place::

    ⠹ filters          1/2 parts · 15 rows · 2.5 rows/s · 0:06 elapsed · ETA 0:06

and when it finishes the line stays as its summary::

    ✓ filters          2/2 parts · 49 rows in, 45 out · 0:06

Loom's info lines go to ``OUT/logs/loom.log`` meanwhile (``-v`` shows them above the line); warnings
and errors print above the line (log handlers that write to ``sys.stderr`` when a record comes, as
``jobs.logs.TerminalHandler`` and Ray's own do, print through the live display). Without a
terminal (CI, ``| cat``, Ray Jobs logs) nothing is drawn: the log lines are the progress, one per
finished part (``pipeline.runner``) and one per step (``jobs.run``).

The runner tells a :class:`JobProgress` of each part as it finishes (``pipeline.runner.listening``);
``jobs/run.py`` tells it when a step starts and ends.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.text import Text

from jobs.logs import terminal_handlers
from pipeline.runner import PartOutcome, StepResult

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
NAME_WIDTH = 16  # step names pad to this; a line fits 80 columns (a longer one is cut, never wrapped)


def duration(seconds: float) -> str:
    """``0:06``, ``12:34``, ``1:02:03``."""
    s = max(0, round(seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def rate(rows: int, seconds: float) -> str:
    per_second = rows / seconds if seconds > 0 else 0.0
    return f"{per_second:,.0f}" if per_second >= 10 else f"{per_second:.1f}"


@dataclass
class StepLine:
    """What the live line of a running step knows."""

    name: str
    started: float
    shown: str = ""  # the name the runner gives the parts (a global step's round: dedup_components/r000)
    total: int | None = None  # parts of the step (None: the runner has not said yet)
    before: int = 0  # parts done by an earlier run
    done: int = 0  # parts done, earlier runs' included
    round_started: float = 0.0  # when the runner listed the parts (a rate counts from there)
    rows: int = 0  # rows in of the parts finished now
    failed: int = 0

    def running(self, now: float) -> str:
        spin = SPINNER[int(now * 10) % len(SPINNER)]
        head = f"{spin} {self.shown or self.name:<{NAME_WIDTH}}"
        elapsed = f"{duration(now - self.started)} elapsed"
        if self.total is None:
            return f"{head} running · {elapsed}"
        parts = [f"{self.done}/{self.total} parts", f"{self.rows:,} rows"]
        ran, seconds = self.done - self.before, now - self.round_started
        if ran:
            parts.append(f"{rate(self.rows, seconds)} rows/s")
        if self.failed:
            parts.append(f"{self.failed} failed")
        parts.append(elapsed)
        if ran and self.done < self.total:
            parts.append(f"ETA {duration(seconds / ran * (self.total - self.done))}")
        return f"{head} {' · '.join(parts)}"

    def failed_summary(self, now: float) -> str:
        parts = f"{self.done}/{self.total} parts · " if self.total is not None else ""
        failed = f"{self.failed} failed · " if self.failed else ""
        return f"✗ {self.name:<{NAME_WIDTH}} {parts}{failed}stopped after {duration(now - self.started)}"


def summary(result: StepResult) -> str:
    """The line a finished step leaves."""
    before = result.parts - result.ran
    done = f"{result.parts}/{result.parts} parts" + (f" ({before} done before)" if before else "")
    rows = f"{result.stats.rows_in:,} rows in, {result.stats.rows_out:,} out"
    return f"✓ {result.name:<{NAME_WIDTH}} {done} · {rows} · {duration(result.wall_seconds)}"


class JobProgress:
    """The job's progress on ``console`` (a terminal): a live line per step. Without a console it
    draws nothing (the log lines are the progress). Use it as a context manager around the steps."""

    def __init__(
        self,
        console: Console | None = None,
        *,
        verbose: bool = False,
        clock: Callable[[], float] = time.monotonic,
        auto_refresh: bool = True,
    ) -> None:
        self.console = console
        self.verbose = verbose
        self.clock = clock
        self.auto_refresh = auto_refresh
        self.line: StepLine | None = None
        self._live: Live | None = None
        self._levels: list[tuple[logging.Handler, int]] = []

    @classmethod
    def for_terminal(cls, *, verbose: bool = False) -> JobProgress:
        """Live lines when stderr is a terminal, else none (the log lines then)."""
        console = Console(stderr=True)
        live = console.is_terminal and not console.is_dumb_terminal
        return cls(console if live else None, verbose=verbose)

    @property
    def live(self) -> bool:
        return self.console is not None

    def __enter__(self) -> JobProgress:
        if self.console is None:
            return self
        if not self.verbose:  # info lines go to loom.log; warnings and errors print above the line
            for handler in terminal_handlers():
                self._levels.append((handler, handler.level))
                handler.setLevel(max(handler.level, logging.WARNING))
        self._live = Live(
            console=self.console,
            get_renderable=self.render,
            auto_refresh=self.auto_refresh,
            refresh_per_second=4,
            transient=True,  # the summaries stay (printed above), the live line goes
            redirect_stdout=sys.stdout.isatty(),
            redirect_stderr=True,
        )
        self._live.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            if self.line is not None:  # the step did not finish
                stopped = self.line.failed_summary(self.clock())
                self.line = None
                self._refresh()
                self._print(stopped)
            self._live.stop()
            self._live = None
        for handler, level in self._levels:
            handler.setLevel(level)
        self._levels.clear()

    def render(self) -> Text:
        text = self.line.running(self.clock()) if self.line is not None else ""
        return Text(text, no_wrap=True, overflow="ellipsis")

    def _print(self, line: str) -> None:
        if self.console is not None:
            self.console.print(Text(line), soft_wrap=True)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()

    # what jobs/run.py tells it

    def step_started(self, name: str) -> None:
        now = self.clock()
        self.line = StepLine(name, started=now, round_started=now)
        self._refresh()

    def step_finished(self, result: StepResult) -> None:
        self.line = None
        self._refresh()  # first: printing above the live line redraws it as last refreshed
        self._print(summary(result))

    # what the runner tells it (pipeline.runner.PartListener)

    def parts_pending(self, step: str, total: int, pending: int) -> None:
        if self.line is None:  # a step run outside a job's loop
            self.step_started(step)
        assert self.line is not None
        line = self.line
        line.shown = step if step != line.name else ""
        line.total, line.before, line.done = total, total - pending, total - pending
        line.rows, line.round_started = 0, self.clock()
        self._refresh()

    def part_done(self, step: str, outcome: PartOutcome, done: int, total: int) -> None:
        if self.line is None:
            return
        self.line.done, self.line.total = done, total
        if outcome.error:
            self.line.failed += 1
        else:
            self.line.rows += outcome.rows_in
        self._refresh()
