"""What the simulation used: peak RAM, peak disk and wall time of the simulator.

Two sources: the DAG's `resources` Param (what the simulator measured for its whole job) and a
GNU `time -v` output file in the results folder (runN.time.txt beside runN.stdout.log: one
simulation process). Where both give a figure the Param wins: it is the simulator's own
measurement and covers everything the job ran, a time file only the one process it timed.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import ResultsError
from .record import Record

PARAM = "param"
_MARKERS = (b"Command being timed:", b"Maximum resident set size (kbytes):")
_RSS = re.compile(r"^\s*Maximum resident set size \(kbytes\):\s*(\d+)\s*$", re.M)
_WALL = re.compile(r"^\s*Elapsed \(wall clock\) time \([^)]*\):\s*([0-9:.]+)\s*$", re.M)


@dataclass
class Resources(Record):
    peak_sim_ram_bytes: float | None = None
    peak_disk_bytes: float | None = None
    sim_wall_seconds: float | None = None
    #: where each figure came from: "param" or the time file's path in the results folder
    source: dict = field(default_factory=dict)

    def over(self, other: "Resources") -> "Resources":
        """These figures, and other's where these have none (self wins)."""
        out = Resources()
        for key in KEYS:
            mine = getattr(self, key)
            pick, src = (mine, self.source.get(key)) if mine is not None else (
                getattr(other, key), other.source.get(key))
            setattr(out, key, pick)
            if pick is not None:
                out.source[key] = src
        return out

    def any(self) -> bool:
        return any(getattr(self, k) is not None for k in KEYS)


KEYS = tuple(f.name for f in fields(Resources) if f.name != "source")


def looks_like_time_output(path: Path) -> bool:
    """GNU `time -v` output, recognised by content whatever the file is called."""
    try:
        with open(path, "rb") as f:
            head = f.read(8192)
    except OSError:
        return False
    return b"\x00" not in head and any(m in head for m in _MARKERS)


def read_time_output(path: Path, label: str) -> Resources:
    """Peak RSS and wall time of the timed process; label names the file in `source`."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    out = Resources()
    if m := _RSS.search(text):
        out.peak_sim_ram_bytes = int(m.group(1)) * 1024
        out.source["peak_sim_ram_bytes"] = label
    if m := _WALL.search(text):
        seconds = 0.0
        try:
            for part in m.group(1).split(":"):  # h:mm:ss or m:ss(.cc)
                seconds = seconds * 60 + float(part)
        except ValueError:
            seconds = None
        if seconds is not None:
            out.sim_wall_seconds = seconds
            out.source["sim_wall_seconds"] = label
    return out


def from_param(value) -> Resources:
    """The DAG Param (or a CLI/JSON value): a dict with optional numeric keys, or None."""
    if value is None:
        return Resources()
    if not isinstance(value, dict):
        raise ResultsError(f"resources must be an object with {', '.join(KEYS)}, not {type(value).__name__}")
    unknown = sorted(set(value) - set(KEYS))
    if unknown:
        raise ResultsError(f"unknown resources keys {unknown} (known: {', '.join(KEYS)})")
    out = Resources()
    for key in KEYS:
        v = value.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ResultsError(f"resources.{key} must be a number >= 0, not {v!r}")
        setattr(out, key, v)
        out.source[key] = PARAM
    return out


def of_whole_job(measured: list[Resources]) -> Resources:
    """Several timed processes (one per run) as one job: the largest peaks, the summed wall time."""
    out = Resources()
    for key in KEYS:
        got = [(getattr(r, key), r.source.get(key)) for r in measured if getattr(r, key) is not None]
        if not got:
            continue
        if key == "sim_wall_seconds":
            setattr(out, key, sum(v for v, _ in got))
            out.source[key] = ", ".join(s for _, s in got)
        else:
            v, s = max(got, key=lambda g: g[0])
            setattr(out, key, v)
            out.source[key] = s
    return out
