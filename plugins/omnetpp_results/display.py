"""Figures as a person reads them, the same in INFO.txt, report.html, report.pdf and the user's mail."""
from __future__ import annotations

import math

from .contents import Contents
from .runfigures import RunFigures
from .study.itervars import repetition, variables
from .textfmt import fmt, plain  # noqa: F401 - plain: the report's and INFO.txt's

NONE = "–"
MIB = 1 << 20


def number(x) -> str:
    """Counts in full, other numbers to 6 significant digits; nan/inf as OMNeT++ writes them."""
    if x is None:
        return NONE
    if isinstance(x, (bool, int)):
        return str(x)
    x = float(x)
    if not math.isfinite(x) or (x == int(x) and abs(x) < 1e15):
        return fmt(x)
    return f"{x:.6g}"


def figure(x) -> str:
    """A figure in running text: counts in full, other numbers to 6 significant digits, thousands
    grouped (38,516; 3,723.45); nan/inf as OMNeT++ writes them, text (a JSON "nan") as it is."""
    if x is None:
        return NONE
    if isinstance(x, str) or isinstance(x, bool):
        return plain(x)
    if isinstance(x, int) or (math.isfinite(x) and x == int(x) and abs(x) < 1e15):
        return f"{int(x):,}"
    return fmt(x) if not math.isfinite(x) else f"{x:,.6g}"


def scaled(x) -> str:
    """A rate to 3 significant digits with an SI prefix: 1.78 M, 12.3 k, 494, 0.5."""
    if x is None:
        return NONE
    x = float(x)
    if not math.isfinite(x):
        return fmt(x)
    x = float(f"{x:.3g}")  # rounded first, so 999,999 reads 1 M, not 1e+03 k
    for factor, prefix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= factor:
            return f"{x / factor:.3g}{prefix}"
    return f"{x:.3g}"


def seconds(x) -> str:
    return NONE if x is None else f"{figure(x)} s"


def mib(nbytes) -> str:
    return NONE if nbytes is None else f"{nbytes / MIB:.1f} MiB"


def figures_of(contents: Contents, run) -> RunFigures | None:
    """The Cmdenv/resources row of a run: by run id, else by config and run number, else the
    only row when there is one run."""
    rows = contents.figures
    for r in rows:
        if r.run_id and r.run_id == run.run_id:
            return r
    for r in rows:
        if r.config and r.config == run.attrs.get("configname") and \
                str(r.run_number) == run.attrs.get("runnumber"):
            return r
    return rows[0] if len(rows) == 1 and len(contents.runs) == 1 else None


def run_facts(contents: Contents, run) -> list[tuple[str, str]]:
    """(label, text) of one run: what it is, what its log says, what the simulator used."""
    a = run.attrs
    limit = next((v for k, v in run.config if k == "sim-time-limit"), None)  # first entry wins
    f = figures_of(contents, run) or RunFigures()
    facts = [
        ("Run id", run.run_id),
        ("Config", f"{a.get('configname', NONE)}, run #{a.get('runnumber', NONE)}"),
        ("Network", a.get("network", NONE)),
        ("Iteration variables", ", ".join(f"{k}={v}" for k, v in variables(run).items()) or "none"),
        ("Repetition", repetition(run)),
        ("Started", a.get("datetime", NONE)),
    ]
    facts += cmdenv_facts(f, limit)
    facts += [("End", f.end or NONE)] + resource_facts(f)
    return facts


def cmdenv_facts(f: RunFigures, limit: str | None = None) -> list[tuple[str, str]]:
    """What a run's Cmdenv log says, in words and units (the report's run card, the user's mail)."""
    speeds = [(f.ev_per_sec, "events/s"), (f.simsec_per_sec, "simsec/s"), (f.ev_per_simsec, "events/simsec")]
    return [
        ("Simulated time", seconds(f.sim_time) + (f" (limit {limit})" if limit else "")),
        ("Events", figure(f.events)),
        ("Wall time (Cmdenv)", seconds(f.elapsed)),
        ("Speed", ", ".join(f"{scaled(v)} {unit}" for v, unit in speeds if v is not None) or NONE),
        ("Messages created", figure(f.messages_created)),
        ("Messages present at the end", figure(f.messages_present)),
    ]


def resource_facts(f) -> list[tuple[str, str]]:
    """The simulator's resources (of a RunFigures row or a Resources), with where they come from."""
    source = f.resources_source if isinstance(f, RunFigures) else f.source

    def src(key):
        return f" (from {source[key]})" if key in source else ""
    return [("Simulator peak RAM", mib(f.peak_sim_ram_bytes) + src("peak_sim_ram_bytes")),
            ("Simulator peak disk", mib(f.peak_disk_bytes) + src("peak_disk_bytes")),
            ("Simulator wall time", seconds(f.sim_wall_seconds) + src("sim_wall_seconds"))]


POST_TIME, POST_PEAK = "Post-processing time", "Post-processing peak memory"


def postprocessing_facts(contents: Contents) -> list[tuple[str, str]]:
    return [(POST_TIME, f"{contents.post_seconds:.2f} s (parse and stats, before the report)"),
            (POST_PEAK, f"{contents.peak_mb:.0f} MiB"),
            ("Statistics selected", contents.selection),
            ("Summarizing precision", f"{contents.precision:g} s")]
