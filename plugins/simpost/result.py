"""What the simulator hears: one versioned JSON shape for every callback body and a run's result XCom.

The schema is data/result.schema.json (schema_version 1). A run sends, in order: "start" and one
"stage" event per ended stage (only with callback_events "all"), then exactly one "final" event:
state "success" with the share link and the figures, "warning" when some input was damaged and left
out (the rest delivered; `problems` says what), or state "failed" with the stage and reason.
A storage_restore run sends one "restored" event (the new share link and "restored until"), or a
"final" failed one (stage "restore", with the one-line reason).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from omnetpp_results.simrun import FIGURES

from simpost.stage import STAGES, percent_done

SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("data") / "result.schema.json"
RESULT_KEY = "result"  # XCom key of a run's final event, wherever it was decided
MAX_PROBLEMS = 50
SIMULATOR_RESOURCES = ("peak_sim_ram_bytes", "peak_disk_bytes", "sim_wall_seconds")


@dataclass(frozen=True)
class Delivery:
    """What a successful run delivers besides its state."""

    link: str
    size: int
    sha256: str
    expires_at: str | None
    scalar_stats: dict
    sim_runtime_stats: dict
    resources: dict
    stage_seconds: dict
    problems: list[str] = field(default_factory=list)
    copies: list[dict] = field(default_factory=list)  # [{"backend", "state", "link"}], link = the first present


@dataclass(frozen=True)
class Restored:
    """What a storage_restore run delivers: the restored copy's share link and when it stops working
    (the copy's keep-until, or an S3 signed link's earlier end)."""

    link: str
    size: int
    sha256: str
    expires_at: str | None
    backend: str


@dataclass(frozen=True)
class Event:
    event: str  # start | stage | final | restored
    state: str  # running | success | warning | failed
    simulation_id: str
    run_id: str
    title: str | None
    seconds: float
    percent: float | None = None
    stage: str | None = None
    reason: str | None = None
    stage_seconds: dict | None = None
    delivery: Delivery | Restored | None = None

    def as_dict(self) -> dict:
        body = {"schema_version": SCHEMA_VERSION, "event": self.event, "state": self.state,
                "simulation_id": self.simulation_id, "run_id": self.run_id, "title": self.title,
                "seconds": self.seconds}
        for key in ("percent", "stage", "reason", "stage_seconds"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        if self.state == "failed":
            body["link"] = None
        if self.delivery is not None:
            body.update(self.delivery.__dict__)
        return body


@dataclass(frozen=True)
class RunInfo:
    """The run every event is about; seconds are counted from its start."""

    simulation_id: str
    run_id: str
    title: str | None
    started_at: datetime

    def seconds(self, now: datetime | None = None) -> float:
        return max(0.0, round((now or datetime.now(timezone.utc)).timestamp() - self.started_at.timestamp(), 3))

    def _event(self, event: str, state: str, now: datetime | None, **more) -> Event:
        return Event(event, state, self.simulation_id, self.run_id, self.title or None, self.seconds(now), **more)

    def start(self, now: datetime | None = None) -> Event:
        return self._event("start", "running", now, percent=0)

    def stage_ended(self, stage: str, now: datetime | None = None) -> Event:
        return self._event("stage", "running", now, percent=percent_done(stage), stage=stage)

    def succeeded(self, delivery: Delivery, now: datetime | None = None) -> Event:
        state = "warning" if delivery.problems else "success"
        return self._event("final", state, now, percent=100, delivery=delivery)

    def restored(self, restored: Restored, now: datetime | None = None) -> Event:
        return self._event("restored", "success", now, delivery=restored)

    def failed(self, stage: str, reason: str, stage_seconds: dict | None = None,
               now: datetime | None = None) -> Event:
        return self._event("final", "failed", now, stage=stage, reason=reason, stage_seconds=stage_seconds or None)


def sim_runtime_stats(simrun: dict | None) -> dict:
    """The simulation's own figures (Cmdenv log) under the names OPS exported them with."""
    return {k: (simrun or {}).get(k) for k in FIGURES}


def stage_seconds(figures: list[dict]) -> dict:
    return {f["stage"]: f["seconds"] for f in figures if f and f.get("stage") in STAGES}


def resources(simulator: dict, peak_rss_bytes: int, wall_seconds: float) -> dict:
    """The simulator's figures as the engine merged them (the resources Param over a GNU time -v
    file) and the post-processing's own peak RSS and wall-clock over every task of the run."""
    merged = {k: simulator[k] for k in SIMULATOR_RESOURCES if simulator.get(k) is not None}
    merged["postprocessing_peak_rss_bytes"] = int(peak_rss_bytes)
    merged["postprocessing_wall_seconds"] = round(max(wall_seconds, 0.0), 3)
    return merged


def problem_lines(problems: list[dict]) -> list[str]:
    """Damaged input the engine skipped (its Problem records), one short line each."""
    lines = []
    for p in problems:
        text = f"{Path(p['path']).name}: {p['message']}"
        if p.get("line"):
            text += f" (line {p['line']})"
        if p.get("bytes_ignored"):
            text += f" ({p['bytes_ignored']} bytes ignored)"
        lines.append(text if len(text) <= 300 else text[:299] + "…")
    if len(lines) > MAX_PROBLEMS:
        lines = lines[:MAX_PROBLEMS - 1] + [f"... and {len(lines) - MAX_PROBLEMS + 1} more"]
    return lines
