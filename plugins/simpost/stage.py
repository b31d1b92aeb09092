"""One stage of a run: bounded by the run's deadline, stoppable by SIGTERM, timed and measured.

A run_timeout is a property of the run, not of a task: Airflow's dagrun_timeout is fixed per DAG and
execution_timeout per task, and a timed-out task is retried. So each stage computes what is left of
the run's time and fails for good when it is used up.
"""
from __future__ import annotations

import resource
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

STAGES = ("collect", "parse", "stats", "zip", "upload", "notify")


class RunTimeout(BaseException):
    """The run used up its run_timeout; retrying cannot help.

    A BaseException, like KeyboardInterrupt: raised from a signal handler anywhere in the stage, it must
    not be swallowed by an `except Exception` in the stage's code or a library it calls.
    """


class StageStopped(BaseException):
    """The stage got SIGTERM: the run was cancelled (marked failed) or its worker is shutting down."""


@dataclass(frozen=True)
class Deadline:
    """The run's start and the seconds it may take."""

    started_at: datetime
    run_timeout: float

    def seconds_left(self, now: datetime | None = None) -> float:
        return self.run_timeout - (now or datetime.now(timezone.utc)).timestamp() + self.started_at.timestamp()

    def exceeded(self, stage: str) -> RunTimeout:
        return RunTimeout(f"run timeout: the run took longer than its run_timeout of {self.run_timeout:g} s "
                          f"({_hours(self.run_timeout)}); stopped at stage {stage}")


@dataclass
class StageFigures:
    """What one stage cost: wall-clock seconds and the task process's peak resident memory."""

    stage: str
    seconds: float = 0.0
    peak_rss_bytes: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def percent_done(stage: str) -> float:
    """Share of the stages done once `stage` has ended."""
    return round(100.0 * (STAGES.index(stage) + 1) / len(STAGES), 1)


def by_stage(states: dict) -> dict:
    """Task states keyed by stage: a mapped stage's instances (Airflow names them `upload_0`,
    `upload_1`, ...) count as the stage, failed if one failed, skipped if one was skipped."""
    merged = dict(states)
    for key, state in states.items():
        stage, _, index = key.rpartition("_")
        if stage in STAGES and index.isdigit() and merged.get(stage) not in ("failed", "skipped"):
            merged[stage] = state
    return merged


def cancelled_at(states: dict) -> str | None:
    """The stage a cancel stopped, from the run's task states; None when the run was not cancelled.

    Marking a run failed skips every stage not yet started (nothing else in this DAG skips) and fails
    the one running, whose process is killed before it can tell anyone.
    """
    states = by_stage(states)
    if not any(states.get(s) == "skipped" for s in STAGES):
        return None
    return next((s for s in STAGES if states.get(s) == "failed"),
                next(s for s in STAGES if states.get(s) == "skipped"))


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


@contextmanager
def bounded(stage: str, deadline: Deadline | None) -> Iterator[StageFigures]:
    """Run a stage: RunTimeout when the deadline passes (also mid-stage), StageStopped on SIGTERM.

    Signals reach only the main thread; elsewhere (never in a task process) the stage is measured only.
    """
    figures = StageFigures(stage)
    if deadline is not None and deadline.seconds_left() <= 0:
        raise deadline.exceeded(stage)
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        def on_alarm(signum, frame):
            raise deadline.exceeded(stage)

        def on_term(signum, frame):
            raise StageStopped(f"stage {stage} stopped by SIGTERM (run cancelled or worker shutting down)")

        previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, on_term)}
        if deadline is not None:
            previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, max(deadline.seconds_left(), 0.001))
    started = time.perf_counter()
    try:
        yield figures
    finally:
        if in_main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        figures.seconds = round(time.perf_counter() - started, 3)
        figures.peak_rss_bytes = peak_rss_bytes()


def _hours(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"
