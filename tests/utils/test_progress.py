"""dnalm.utils.progress: a log line every few percent off a terminal, a rich bar in one."""

from __future__ import annotations

import logging

import pytest

from dnalm.utils.progress import Progress


def test_log_lines_every_five_percent(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "dnalm.progress")
    with Progress("scoring", total=1000, unit="windows", terminal=False) as progress:
        for _ in range(100):
            progress.advance(10)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 20  # 5%, 10%, ..., 100%
    assert lines[0].startswith("scoring: 50/1000 windows (5%)") and "windows/s, ETA 0:00:0" in lines[0]
    assert lines[-1].startswith("scoring: 1000/1000 windows (100%)")


def test_big_steps_log_once_each(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "dnalm.progress")
    with Progress("embedding", total=10, terminal=False) as progress:
        progress.advance(7)
        progress.advance(3)
    assert [r.getMessage().split(" (")[1][:4] for r in caplog.records] == ["70%)", "100%"]


def test_unknown_total_logs_by_time(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "dnalm.progress")
    with Progress("scan", unit="bp", every_seconds=0.0, terminal=False) as progress:
        progress.advance(500)
    assert caplog.records[0].getMessage().startswith("scan: 500 bp, ")


def test_terminal_bar_counts() -> None:
    with Progress("scan", total=4, unit="bp", terminal=True) as progress:
        progress.advance(3)
        progress.advance(1)
        assert progress._bar is not None and progress._bar.tasks[0].completed == 4


def test_unknown_total_says_where_it_ended(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "dnalm.progress")
    with Progress("packing", unit="bp", terminal=False) as progress:  # 30 s between lines: none on the way
        for _ in range(1000):
            progress.advance(7)
    assert [r.getMessage().split(" in ")[0] for r in caplog.records] == ["packing: 7000 bp"]


def test_unknown_total_counts_time_from_the_last_line_not_the_last_step(caplog: pytest.LogCaptureFixture,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import dnalm.utils.progress as progress_module

    clock = iter(float(t) for t in range(100))  # each call of the clock is one second later
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: next(clock))
    caplog.set_level(logging.INFO, "dnalm.progress")
    with Progress("scan", unit="bp", every_seconds=3.0, terminal=False) as progress:
        for _ in range(7):  # steps 1 s apart: a line at 3 s and at 6 s since the start
            progress.advance(1)
    assert [r.getMessage().split(",")[0] for r in caplog.records] == ["scan: 3 bp", "scan: 6 bp", "scan: 7 bp in 0:00:08"]
