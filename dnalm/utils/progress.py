"""Progress of long work (a genome scan, embedding 100k records): a rich bar in a terminal, log lines otherwise.

In a terminal the bar shows done/total, the rate in the work's unit (records, windows, bp) and the time left.
Elsewhere (a batch job's log file) a line is logged every ``every_percent`` percent of a known total, or every
``every_seconds`` when the total is unknown (and once at the end, with the count and the rate), so a log shows
the run moving without one line per batch.
"""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType

log = logging.getLogger("dnalm.progress")


def _eta(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """``with Progress("scoring", total=n, unit="windows") as p: ... p.advance(k)``."""

    def __init__(self, description: str, total: int | None = None, unit: str = "records",
                 every_percent: float = 5.0, every_seconds: float = 30.0, terminal: bool | None = None) -> None:
        self.description, self.total, self.unit = description, total, unit
        self.every_percent, self.every_seconds = every_percent, every_seconds
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.done = 0
        self._logged = 0  # ``done`` at the last log line
        self._bar = None
        self._task = None
        self._next_percent = every_percent
        self._started = self._last_log = time.perf_counter()

    def __enter__(self) -> Progress:
        if self.terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                ProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress
            from rich.text import Text

            unit = self.unit

            class Rate(ProgressColumn):
                def render(self, task) -> Text:  # noqa: ANN001 - a rich Task
                    return Text(f"{task.speed or 0:,.0f} {unit}/s")

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     Rate(), TimeRemainingColumn(), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total)
        return self

    def advance(self, n: int) -> None:
        """``n`` more units done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n)
            return
        now = time.perf_counter()
        rate = self.done / max(now - self._started, 1e-9)
        if self.total:
            percent = 100.0 * self.done / self.total
            if percent + 1e-9 < self._next_percent and self.done < self.total:
                return
            while self._next_percent <= percent + 1e-9:
                self._next_percent += self.every_percent
            left = (self.total - self.done) / rate if rate else 0.0
            log.info("%s: %d/%d %s (%.0f%%), %.1f %s/s, ETA %s", self.description, self.done, self.total,
                     self.unit, percent, rate, self.unit, _eta(left))
        elif now - self._last_log >= self.every_seconds:
            log.info("%s: %d %s, %.1f %s/s", self.description, self.done, self.unit, rate, self.unit)
        else:
            return
        self._last_log, self._logged = now, self.done

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif kind is None and self.total is None and self.done != self._logged:
            # no total, so no 100% line: say where it ended
            seconds = time.perf_counter() - self._started
            log.info("%s: %d %s in %s, %.1f %s/s", self.description, self.done, self.unit, _eta(seconds),
                     self.done / max(seconds, 1e-9), self.unit)
