"""INFO.txt: what the archive holds and the run(s) it comes from, as plain text.

Names from result files are data: control characters (a line break in a quoted module name)
are written as escapes, so every entry stays on its own line.
"""
from __future__ import annotations

from pathlib import Path

from . import display
from .contents import Contents
from .study.itervars import repetition, variables

EMPTY_LISTED = 200


def write_info(path, c: Contents) -> None:
    lines = _header(c) + _runs(c) + _files(c) + _layout(c) + _warnings(c) + _empty(c) + _simrun(c)
    Path(path).write_text("\n".join(display.plain(line) for line in lines) + "\n")


def _header(c: Contents) -> list[str]:
    return ["OMNeT++ simulation results, post-processed by simpost (omnetpp_results)", "=" * 72, "",
            f"Results folder : {c.results_dir}",
            f"Run config     : {c.runconfig or '(all configs in the folder)'}",
            f"Statistics     : {c.selection}",
            f"Precision      : {c.precision:g} s (csv/vectors/: value held at every multiple of it)",
            f"Graphs         : {c.graphs}", ""]


def _runs(c: Contents) -> list[str]:
    out = [f"Runs ({len(c.runs)})"]
    for r in c.runs:
        a = r.attrs
        out.append(f"  {r.run_id}")
        out.append(f"    config {a.get('configname', '?')}, run #{a.get('runnumber', '?')}, "
                   f"network {a.get('network', '?')}, repetition {repetition(r)}, "
                   f"started {a.get('datetime', '?')}")
        if (iv := variables(r)):
            out.append("    itervars " + ", ".join(f"{k}={v}" for k, v in iv.items()))
        shown = set()
        for k, v in r.config:
            if k in ("sim-time-limit", "seed-set", "repeat") and k not in shown:
                shown.add(k)  # the first entry wins in OMNeT++ (command line before ini)
                out.append(f"    {k} = {v}")
    return out + [""]


def _files(c: Contents) -> list[str]:
    out = ["Result files read"]
    for fi in c.files:
        extra = f", index {fi.get('index')}" if fi.get("format") == "text" and fi.get("kind") == "vec" else ""
        out.append(f"  {Path(fi['path']).name}  ({fi['format']}, {fi['bytes']} bytes{extra})")
    out += [f"  {Path(s).name}  (skipped: other config)" for s in c.skipped_files]
    return out + [""]


def _layout(c: Contents) -> list[str]:
    graphs = {"statistic": f"{c.graph_files} charts of the report as PNG, one per result name",
              "vector": f"{c.graph_files} PNGs, one per vector with data",
              "none": "not drawn (graphs: none)"}[c.graphs]
    return [
        "Contents",
        "  INFO.txt                   this file",
        "  report.html                the run at a glance (opens offline in any browser): run figures,",
        f"                             {len(c.charts)} charts (one per result name across modules), tables",
        "  report.pdf                 the same for printing",
        "  omnetpp.ini                the simulation's configuration" if c.has_ini
        else "  (no omnetpp.ini was found in the results folder)",
        f"  csv/runs.csv               {len(c.runs)} runs: run,configname,repetition and one column per "
        "iteration variable (the other CSVs join to it by run)",
        f"  csv/scalars.csv            {c.scalars} scalars: run,module,name,value",
        f"  csv/statistics.csv         {c.statistics} statistics/histograms: count,mean,stddev,min,max,sum",
        f"  csv/histograms.csv         {c.histogram_bins} histogram bins: bin_lower,bin_upper,count "
        "(first row underflow from -inf, last row overflow to inf)",
        f"  csv/vectors.csv            {c.vectors} vectors: count,mean,stddev,min,max,first/last time",
        f"  csv/vectors/               {c.resampled} resampled vectors (time,value; empty value = nothing recorded yet)",
        "  csv/vectors-resampled.csv  the same in one file, long format: run,module,name,time,value",
        *(["  csv/study.csv              the study: per config, variable combination and result n, mean, "
           "stddev, ci95_low, ci95_high (Student's t over the repetitions)"] if c.study else []),
        f"  graphs/                    {graphs}",
        "  simrun/simrun-stats.csv    simulation run figures from the Cmdenv log, the simulator's resources,",
        "                             post-processing time and memory",
        "  MANIFEST.sha256            sha256sum of every file", ""]


def _warnings(c: Contents) -> list[str]:
    if not c.problems:
        return []
    out = [f"Warnings ({len(c.problems)})"]
    for p in c.problems:
        where = Path(p.path).name + (f":{p.line}" if p.line is not None else "")
        extra = (f", {p.action}" if p.action else ", file skipped as corrupt" if p.skipped else "") + \
            (f", {p.bytes_ignored} bytes ignored" if p.bytes_ignored else "")
        out.append(f"  {where}: {p.message}{extra}")
    return out + [""]


def _empty(c: Contents) -> list[str]:
    if not c.empty_count:
        return []
    out = [f"Declared vectors without data ({c.empty_count}): no resampled file, no graph"]
    out += [f"  {v['module']} {v['name']}" for v in c.empty_vectors[:EMPTY_LISTED]]
    if c.empty_count > EMPTY_LISTED:
        out.append(f"  ... and {c.empty_count - EMPTY_LISTED} more (see csv/vectors.csv, count 0)")
    return out + [""]


def _simrun(c: Contents) -> list[str]:
    out = ["Simulation run (Cmdenv)"]
    for r in c.figures:
        if r.events is None:
            out.append(f"  {r.log or '(no Cmdenv log found)'}: figures not in log")
        else:
            out.append(f"  {r.log}: {r.events} events, {display.number(r.sim_time)} s simulated in "
                       f"{display.number(r.elapsed)} s; messages created {display.number(r.messages_created)}"
                       + (f"; {r.end}" if r.end else ""))
    out.append("Simulator resources (the resources Param wins over a `time -v` file)")
    out += [f"  {label}: {value}" for label, value in display.resource_facts(c.resources)]
    out += [f"{label}: {value}" for label, value in display.postprocessing_facts(c)[:2]]
    return out + [""]
