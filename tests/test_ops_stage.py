"""A stage under the run's deadline: a timeout mid-stage, a used-up run, SIGTERM (a cancel), the figures."""
from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timedelta, timezone

import pytest
from simpost.stage import (STAGES, Deadline, RunTimeout, StageStopped, bounded, cancelled_at, peak_rss_bytes,
                           percent_done)


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(1000))


def _now() -> datetime:
    return datetime.now(timezone.utc)


def test_the_deadline_stops_a_stage_in_the_middle_and_restores_the_handlers():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGALRM)
    started = time.monotonic()
    with pytest.raises(RunTimeout, match=r"run_timeout of 1000.3 s \(16 min 40 s\); stopped at stage parse"):
        with bounded("parse", Deadline(_now() - timedelta(seconds=1000), 1000.3)):
            _busy(30)
    assert time.monotonic() - started < 5
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGALRM)) == before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_run_past_its_deadline_fails_before_the_stage_starts():
    ran = []
    with pytest.raises(RunTimeout, match=r"43200 s \(12 h 00 min\); stopped at stage zip"):
        with bounded("zip", Deadline(_now() - timedelta(hours=13), 43200)):
            ran.append(True)
    assert ran == []


def test_sigterm_stops_the_stage_even_inside_except_exception():
    with pytest.raises(StageStopped, match="stage upload stopped by SIGTERM"):
        with bounded("upload", Deadline(_now(), 3600)):
            try:  # library code that swallows errors must not swallow a cancel
                os.kill(os.getpid(), signal.SIGTERM)
                _busy(10)
            except Exception:
                pass


def test_figures_of_a_stage():
    with bounded("stats", None) as figures:
        block = bytearray(64 * 1024 * 1024)
        _busy(0.2)
    del block
    assert figures.stage == "stats" and 0.2 <= figures.seconds < 5
    assert figures.peak_rss_bytes >= 64 * 1024 * 1024 and figures.peak_rss_bytes <= peak_rss_bytes()
    assert percent_done("collect") == 16.7 and percent_done(STAGES[-1]) == 100


@pytest.mark.parametrize("states, stage", [
    ({"collect": "success", "parse": "failed", "stats": "skipped", "notify": "skipped"}, "parse"),
    ({"collect": "success", "parse": "success", "stats": "skipped", "notify": "skipped"}, "stats"),
    ({s: "success" for s in STAGES[:-1]} | {"upload": "failed", "notify": "skipped"}, "upload"),
    ({"collect": "failed", "parse": "upstream_failed", "notify": "upstream_failed"}, None),  # an ordinary failure
    ({s: "success" for s in STAGES}, None),
])
def test_a_cancel_is_told_apart_by_the_skipped_stages(states, stage):
    assert cancelled_at(states) == stage


def test_a_mapped_stage_counts_by_its_worst_instance():
    from simpost.stage import by_stage

    states = {s: "success" for s in STAGES[:4]} | {"upload_0": "success", "upload_1": "failed", "notify": "skipped"}
    assert by_stage(states)["upload"] == "failed" and cancelled_at(states) == "upload"
    assert by_stage({"upload_0": "success", "upload_1": "success"})["upload"] == "success"
