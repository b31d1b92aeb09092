"""Parse orchestration: every result file of a folder read once into the parsed_dir hand-over.

The readers (vecfile, scafile, sqlitefile) do the reading; this module picks the files, applies
the run config and the statistics selection, reads the Cmdenv logs and `time -v` outputs, and
records what it found (files, problems) beside the data for the stats stage.
"""
from __future__ import annotations

import re
import resource
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import fastparse, simrun
from .errors import Problem, ResultsError
from .inputs import Inputs, find_inputs
from .record import Record
from .resources import read_time_output
from .readers import nothing_readable, read_result_file
from .selection import Selection
from .sqlitefile import _connect, is_sqlite
from .store import Sink

_CONFIGNAME = re.compile(rb"^attr configname (\S+)", re.M)


@dataclass
class FileRead(Record):
    path: str
    format: str
    bytes: int
    index: str | None = None  # .vec only: how its .vci was used


@dataclass
class ParseResult(Record):
    runs: list[str]
    files: list[FileRead]
    vectors: int
    scalars: int
    statistics: int
    params: int
    samples: int
    bytes_read: int
    seconds: float
    logs: int
    time_outputs: int
    problems: list[Problem] = field(default_factory=list)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def parse(results_dir, parsed_dir, *, runconfig=None, statistics="all", progress=None) -> ParseResult:
    """Read every result file of results_dir once; leave the intermediate in parsed_dir."""
    t_start = time.perf_counter()
    inputs = find_inputs(results_dir)
    sel = Selection(statistics)
    parsed_dir = Path(parsed_dir)
    parsed_dir.mkdir(parents=True, exist_ok=True)
    (parsed_dir / "omnetpp.ini").unlink(missing_ok=True)  # the Sink clears the files it writes
    sink = Sink(parsed_dir)
    try:
        files, skipped, problems = _read_results(inputs, sink, sel, runconfig, progress)
        logs = _read_logs(inputs, runconfig)
        times = [{"file": _rel(inputs, p), **read_time_output(p, _rel(inputs, p)).as_dict()}
                 for p in inputs.times]
        ini = inputs.ini_file()
        if ini is not None:
            shutil.copyfile(ini, parsed_dir / "omnetpp.ini")
        sink.files = files
        bytes_read = sum(f.get("bytes_read", f["bytes"]) for f in files)
        sink.extra = {
            "results_dir": str(inputs.root), "runconfig": runconfig,
            "statistics_option": statistics if isinstance(statistics, str) else list(statistics),
            "selection": sel.describe(), "skipped_files": skipped, "simrun": logs,
            "time_outputs": times, "problems": [p.as_dict() for p in problems],
            "ini": _rel(inputs, ini) if ini else None,
            "parse_seconds": time.perf_counter() - t_start, "parse_peak_rss_mb": peak_rss_mb(),
            "parser_backend": fastparse.backend(), "bytes_read": bytes_read,
        }
        sink.finish()
    finally:
        sink.close()
    result = ParseResult(
        runs=list(sink.runs), files=[FileRead(f["path"], f["format"], f["bytes"], f.get("index")) for f in files],
        vectors=len(sink.vectors), scalars=len(sink.scalars), statistics=len(sink.statistics),
        params=len(sink.params), samples=int(sink.pairs), bytes_read=bytes_read,
        seconds=round(time.perf_counter() - t_start, 3), logs=len(inputs.logs),
        time_outputs=len(inputs.times), problems=problems)
    if progress:
        progress(f"parsed {len(files)} files, {result.vectors} vectors, "
                 f"{result.samples} samples in {result.seconds:.2f} s")
    return result


def _rel(inputs: Inputs, path: Path) -> str:
    return str(path.relative_to(inputs.root))


def _read_results(inputs: Inputs, sink: Sink, sel: Selection, runconfig, progress):
    """Every .vec and .sca through its reader; returns (files read, files of other configs, problems)."""
    def run_ok(run) -> bool:
        return runconfig is None or run.attrs.get("configname") == runconfig

    def select(run, module, name) -> bool:
        return run_ok(run) and sel(run, module, name)
    select.whole_runs = sel.kind == "all"  # module and name do not matter: readers may skip them

    files, skipped, problems, configs_seen = [], [], [], set()
    for kind, paths in (("vec", inputs.vec), ("sca", inputs.sca)):
        for path in paths:
            if runconfig is not None:
                cfgs = _configs_of(path)
                if cfgs is not None:
                    configs_seen |= cfgs
                    if runconfig not in cfgs:
                        skipped.append(str(path))
                        continue
            read = read_result_file(path, kind, sink, select, inputs.vci_for(path), progress)
            problems += read.problems
            if read.info is not None:
                files.append(read.info)
    if not files and problems:
        raise nothing_readable(problems)
    for run in list(sink.runs.values()):
        configs_seen.add(run.attrs.get("configname"))
        if not run_ok(run):
            del sink.runs[run.run_id]
    if not sink.runs:
        known = ", ".join(sorted(c for c in configs_seen if c)) or "none"
        raise ResultsError(f"no run of config {runconfig!r} in this folder (configs found: {known})",
                           path=inputs.root)
    return files, skipped, problems


def _read_logs(inputs: Inputs, runconfig) -> list[dict]:
    logs = []
    for log in inputs.logs:
        for r in simrun.read_log(log):
            if runconfig is None or r["config"] in (None, runconfig):
                r["log"] = _rel(inputs, log)
                logs.append(r)
    return logs


def _configs_of(path: Path) -> set | None:
    """Config names of the runs in a result file, from its head (None if not found cheaply)."""
    try:
        if is_sqlite(path):
            con = _connect(path)
            try:
                return {r[0] for r in con.execute(
                    "select attrValue from runAttr where attrName='configname'")}
            finally:
                con.close()
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except (OSError, sqlite3.DatabaseError):
        return None
    found = {m.group(1).decode("utf-8", "replace").strip('"') for m in _CONFIGNAME.finditer(head)}
    return found or None
