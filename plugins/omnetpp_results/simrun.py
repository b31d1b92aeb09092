"""Simulation-run figures from a Cmdenv log (express mode status blocks)."""
from __future__ import annotations

import re
from pathlib import Path

from .textfmt import BOM, Lines

NOT_IN_LOG = "not in log"
BANNER = b"OMNeT++ Discrete Event Simulation"

_EVENT = re.compile(r"^\*\* Event #(\d+)\s+t=(\S+)\s+Elapsed:\s*([0-9.eE+-]+)s")
_SPEED = re.compile(r"^\s+Speed:\s+ev/sec=(\S+)\s+simsec/sec=(\S+)\s+ev/simsec=(\S+)")
_MSGS = re.compile(r"^\s+Messages:\s+created:\s*(\d+)\s+present:\s*(\d+)\s+in FES:\s*(\d+)")
_PREP = re.compile(r"^Preparing for running configuration (\S+), run #(\d+)")
_RUNID = re.compile(r"^Assigned runID=(\S+)")
_END = re.compile(r"^<!> (.*)")

FIGURES = ("events", "sim_time", "elapsed", "ev_per_sec", "simsec_per_sec", "ev_per_simsec",
           "messages_created", "messages_present")


def looks_like_cmdenv_log(path: Path) -> bool:
    """Recognised by content (banner or status block), whatever the file is called."""
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError:
        return False
    if b"\x00" in head:
        return False
    if head.startswith(BOM):
        head = head[len(BOM):]
    return BANNER in head or b"\n** Event #" in head or head.startswith(b"** Event #")


def _num(s: str):
    try:
        return int(s)
    except ValueError:
        try:
            return float(s)
        except ValueError:
            return None


def read_log(path: Path) -> list[dict]:
    """One dict per run found in the log; figures are from the final status block, None when
    the log has none. Read line by line in bounded memory (LF or CRLF; over-long lines, which
    hold no figures, are skipped)."""
    runs: list[dict] = []
    cur = None

    def new_run(config=None, number=None):
        r = {"log": str(path), "config": config, "run_number": number, "run_id": None,
             "status_blocks": 0, "end": None, **{k: None for k in FIGURES}}
        runs.append(r)
        return r

    state = None
    with open(path, "rb") as f:
        for _, line in Lines(f, path, strict=False):
            if line.startswith("Preparing for running"):
                m = _PREP.match(line)
                if m:
                    cur = new_run(m.group(1), int(m.group(2)))
                continue
            if line.startswith("Assigned runID="):
                if cur is None:
                    cur = new_run()
                cur["run_id"] = line.strip().split("=", 1)[1]
                continue
            if line.startswith("** Event #"):
                m = _EVENT.match(line)
                if m:
                    if cur is None:
                        cur = new_run()
                    cur["status_blocks"] += 1
                    cur["events"] = int(m.group(1))
                    cur["sim_time"] = _num(m.group(2))
                    cur["elapsed"] = _num(m.group(3))
                    state = "event"
                continue
            if state == "event" and "Speed:" in line:
                m = _SPEED.match(line)
                if m:
                    cur["ev_per_sec"], cur["simsec_per_sec"], cur["ev_per_simsec"] = (
                        _num(m.group(1)), _num(m.group(2)), _num(m.group(3)))
                continue
            if state == "event" and "Messages:" in line:
                m = _MSGS.match(line)
                if m:
                    cur["messages_created"] = int(m.group(1))
                    cur["messages_present"] = int(m.group(2))
                state = None
                continue
            if line.startswith("<!>") and cur is not None:
                cur["end"] = line[4:].strip()
    if not runs:
        runs.append({"log": str(path), "config": None, "run_number": None, "run_id": None,
                     "status_blocks": 0, "end": None, **{k: None for k in FIGURES}})
    return runs
