"""Simulation-run figures: per run, what its Cmdenv log says (events, times, speed, messages),
what the simulator used (resources), and what post-processing it took; simrun/simrun-stats.csv."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field, fields
from pathlib import PurePath

from . import simrun
from .record import Record
from .resources import KEYS, Resources, of_whole_job
from .textfmt import fmt


@dataclass
class RunFigures(Record):
    log: str | None = None
    run_id: str | None = None
    config: str | None = None
    run_number: int | None = None
    events: int | None = None
    sim_time: float | None = None
    elapsed: float | None = None
    ev_per_sec: float | None = None
    simsec_per_sec: float | None = None
    ev_per_simsec: float | None = None
    messages_created: int | None = None
    messages_present: int | None = None
    status_blocks: int = 0
    end: str | None = None
    postprocessing_seconds: float | None = None
    peak_memory_mb: float | None = None
    peak_sim_ram_bytes: float | None = None
    peak_disk_bytes: float | None = None
    sim_wall_seconds: float | None = None
    #: where each resource figure came from: "param" or the time file (CSV: figure=source; ...)
    resources_source: dict = field(default_factory=dict)


COLUMNS = [f.name for f in fields(RunFigures)]


def run_figures(logs: list[dict], time_outputs: list[dict], param: Resources, post_seconds: float,
                peak_mb: float) -> tuple[list[RunFigures], Resources]:
    """One row per run found in the Cmdenv logs (one empty row when there is none), and the
    resources of the whole job: the Param's figures, else those of the time files."""
    measured = [Resources.from_dict(t) for t in time_outputs]
    rows = []
    for r in logs or [{}]:
        row = RunFigures(**{k: r.get(k) for k in COLUMNS if k in r})
        row.postprocessing_seconds = round(post_seconds, 3)
        row.peak_memory_mb = round(peak_mb, 1)
        res = param.over(_time_output_of(row.log, time_outputs, measured, len(logs)))
        for key in KEYS:
            setattr(row, key, getattr(res, key))
        row.resources_source = res.source
        rows.append(row)
    return rows, param.over(of_whole_job(measured))


def _time_output_of(log: str | None, time_outputs: list[dict], measured: list[Resources],
                    nlogs: int) -> Resources:
    """The time file of a run's log: same folder and name stem (run0.time.txt for
    run0.stdout.log); the only one when there is a single log (or none) and a single time file."""
    if len(measured) == 1 and nlogs <= 1:
        return measured[0]
    if log is not None:
        want = PurePath(log)
        for t, res in zip(time_outputs, measured):
            have = PurePath(t["file"])
            if have.parent == want.parent and have.name.split(".")[0] == want.name.split(".")[0]:
                return res
    return Resources()


def write_simrun_csv(path, rows: list[RunFigures]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        for r in rows:
            cells = []
            for c in COLUMNS:
                val = getattr(r, c)
                if val is None:
                    val = simrun.NOT_IN_LOG if c in simrun.FIGURES or c == "log" else ""
                elif isinstance(val, dict):
                    val = "; ".join(f"{k}={v}" for k, v in val.items())
                cells.append(val if isinstance(val, str) else fmt(val))
            w.writerow(cells)
