"""Export: the parse intermediate becomes the archive's csv/, simrun/, graphs/, INFO.txt and report.

Every vector is read once, piece by piece, and each piece goes to everything that needs it: its
resampled CSV (and the long-format csv/vectors-resampled.csv), the chart of its result name, and
its own graph when graphs are per vector.
"""
from __future__ import annotations

import csv
import io
import json
import math
import shutil
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from . import charts as charts_
from .contents import GRAPHS, Contents
from .errors import ResultsError
from .info import write_info
from .naming import run_labels, vector_stems
from .parsing import Problem, peak_rss_mb
from .record import Record
from .report import write_report
from .resample import resample
from .resources import Resources, from_param
from .runfigures import RunFigures, run_figures, write_simrun_csv
from .selection import Selection
from .store import Parsed
from .tables import scalar_rows, statistic_rows, vector_rows
from .textfmt import fmt


@dataclass
class StatsResult(Record):
    runs: list[str]
    scalars: int
    statistics: int
    histogram_bins: int
    vectors: int
    empty_vectors: int
    resampled: int
    charts: int  # in the report, one per result name
    graphs: int  # PNG files under graphs/
    graphs_mode: str
    precision: float
    selection: str
    seconds: float
    graph_seconds: float  # per-vector graphs (graphs: "vector")
    report_seconds: float
    postprocessing_seconds: float
    peak_rss_mb: float
    simrun: RunFigures | None
    simrun_runs: list[RunFigures] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    problems: list[Problem] = field(default_factory=list)


def stats(parsed_dir, out_dir, *, precision=100.0, statistics="all", graphs="statistic",
          resources=None, progress=None) -> StatsResult:
    """Write the archive's content into out_dir from parse()'s parsed_dir.

    graphs: "statistic" (the report's charts also as PNGs), "vector" (a PNG per vector) or
    "none" (False, the former switch, means "none"). resources: what the simulator measured
    (peak_sim_ram_bytes, peak_disk_bytes, sim_wall_seconds); it wins over a `time -v` file.
    """
    t_start = time.perf_counter()
    precision, graphs, param = _precision(precision), _graphs(graphs), from_param(resources)
    sel = Selection(statistics)
    parsed = Parsed(parsed_dir)
    doc = json.loads((Path(parsed_dir) / "parsed.json").read_text())
    out = Path(out_dir)
    for sub in ("csv/vectors", "simrun"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    labels = run_labels(parsed.runs)
    runs_by_id = {r.run_id: r for r in parsed.runs}

    def chosen(items):
        return [i for i in items if sel(runs_by_id.get(i["run"]), i["module"], i["name"])]

    scalars, statistics_, vectors = chosen(parsed.scalars), chosen(parsed.statistics), chosen(parsed.vectors)
    _write_scalars(out / "csv" / "scalars.csv", scalars)
    nbins = _write_statistics(out / "csv", statistics_)
    vpass = _VectorPass(parsed, vectors, labels, sel, precision, out, graphs == "vector", progress)
    vpass.run()
    if (Path(parsed_dir) / "omnetpp.ini").is_file():
        shutil.copyfile(Path(parsed_dir) / "omnetpp.ini", out / "omnetpp.ini")
    post_seconds = doc.get("parse_seconds", 0.0) + time.perf_counter() - t_start
    peak = max(doc.get("parse_peak_rss_mb", 0.0), peak_rss_mb())
    figures, job = run_figures(doc.get("simrun", []), doc.get("time_outputs", []), param, post_seconds, peak)
    write_simrun_csv(out / "simrun" / "simrun-stats.csv", figures)
    contents = Contents(
        results_dir=doc.get("results_dir", ""), runconfig=doc.get("runconfig"), selection=sel.describe(),
        precision=precision, graphs=graphs, runs=parsed.runs, labels=labels, files=doc.get("files", []),
        skipped_files=doc.get("skipped_files", []), has_ini=(out / "omnetpp.ini").is_file(),
        scalars=len(scalars), statistics=len(statistics_), histogram_bins=nbins, vectors=len(vectors),
        empty_vectors=[v for v in vectors if not v["count"]], figures=figures, resources=job,
        post_seconds=post_seconds, peak_mb=peak,
        problems=[Problem.from_dict(p) for p in doc.get("problems", [])],
        scalar_rows=scalar_rows(scalars, labels, sel), statistic_rows=statistic_rows(statistics_, labels, sel),
        vector_rows=vector_rows(vectors, labels, sel),
        charts=[c.chart() for c in vpass.charts] + charts_.histogram_charts(statistics_, labels, sel),
        graph_files=vpass.graphs)
    t_report = time.perf_counter()
    write_report(out, contents)
    write_info(out / "INFO.txt", contents)
    done = time.perf_counter()
    return StatsResult(
        runs=[r.run_id for r in parsed.runs], scalars=len(scalars), statistics=len(statistics_),
        histogram_bins=nbins, vectors=len(vectors), empty_vectors=len(contents.empty_vectors),
        resampled=vpass.resampled, charts=len(contents.charts), graphs=contents.graph_files,
        graphs_mode=graphs, precision=precision, selection=sel.describe(),
        seconds=round(done - t_start, 3), graph_seconds=round(vpass.graph_seconds, 3),
        report_seconds=round(done - t_report, 3),
        postprocessing_seconds=round(doc.get("parse_seconds", 0.0) + done - t_start, 3),
        peak_rss_mb=round(max(peak, peak_rss_mb()), 1), simrun=figures[0], simrun_runs=figures,
        resources=job, problems=contents.problems)


def _precision(precision) -> float:
    try:
        precision = float(precision)
    except (TypeError, ValueError):
        raise ResultsError(f"summarizing precision must be a number, not {precision!r}") from None
    if not (precision > 0 and math.isfinite(precision)):
        raise ResultsError(f"summarizing precision must be a positive number of seconds, not {precision!r}")
    return precision


def _graphs(graphs) -> str:
    if graphs is False:
        return "none"
    if graphs not in GRAPHS:
        raise ResultsError(f"graphs must be one of {', '.join(GRAPHS)}, not {graphs!r}")
    return graphs


def _writer(f):
    return csv.writer(f, lineterminator="\n")


def _write_scalars(path: Path, scalars: list) -> None:
    with open(path, "w", newline="") as f:
        w = _writer(f)
        w.writerow(["run", "module", "name", "value"])
        w.writerows([s["run"], s["module"], s["name"], s["value"]] for s in scalars)


def _write_statistics(csv_dir: Path, statistics: list) -> int:
    """statistics.csv and histograms.csv; returns the number of histogram bins written."""
    nbins = 0
    with open(csv_dir / "statistics.csv", "w", newline="") as f, \
            open(csv_dir / "histograms.csv", "w", newline="") as fh:
        w, wh = _writer(f), _writer(fh)
        w.writerow(["run", "module", "name", "count", "mean", "stddev", "min", "max", "sum"])
        wh.writerow(["run", "module", "name", "bin_lower", "bin_upper", "count"])
        for s in statistics:
            fl = s["fields"]
            total = fl.get("sum", fl.get("weightedSum", ""))
            w.writerow([s["run"], s["module"], s["name"], fl.get("count", ""), fl.get("mean", ""),
                        _stddev(fl), fl.get("min", ""), fl.get("max", ""), total])
            bins = s["bins"]
            for i, (edge, cnt) in enumerate(bins):  # first bin: underflow; last: overflow
                upper = bins[i + 1][0] if i + 1 < len(bins) else "inf"
                wh.writerow([s["run"], s["module"], s["name"], edge, upper, cnt])
            nbins += len(bins)
    return nbins


def _stddev(fl: dict) -> str:
    """Standard deviation as OMNeT++'s tools report it: recomputed from count, sum and sqrsum
    (opp_scavetool does this; the stddev field in the file can differ in the 14th digit).
    Weighted statistics and counts below 2 keep the field as written."""
    try:
        n = float(fl["count"])
        total, sq = float(fl["sum"]), float(fl["sqrsum"])
    except (KeyError, ValueError):
        return fl.get("stddev", "")
    if n < 2 or "weights" in fl or not (math.isfinite(total) and math.isfinite(sq)):
        return fl.get("stddev", "")
    var = (sq - total * total / n) / (n - 1)
    return fmt(math.sqrt(var) if var > 0 else 0.0)


class _VectorPass:
    """csv/vectors.csv, then every vector with data read once, name by name."""

    def __init__(self, parsed: Parsed, vectors: list, labels: dict, sel: Selection, precision: float,
                 out: Path, per_vector_graphs: bool, progress):
        self.parsed, self.vectors, self.precision, self.out = parsed, vectors, precision, out
        self.progress = progress
        self.stems = vector_stems(vectors, labels)
        self.charts = charts_.vector_charts(vectors, labels, sel)
        self.plotter = None
        if per_vector_graphs and any(v["count"] for v in vectors):
            from .graphs import VectorPlotter
            self.plotter = VectorPlotter()
            (out / "graphs").mkdir(exist_ok=True)
        self.resampled = self.graphs = 0
        self.graph_seconds = 0.0

    def run(self) -> None:
        self._write_summaries()
        done, last_note = 0, time.monotonic()
        with open(self.out / "csv" / "vectors-resampled.csv", "w", newline="") as long:
            long.write("run,module,name,time,value\n")
            for chart in self.charts:
                axis = chart.info.axis()
                for i, vec in enumerate(chart.vectors):
                    add, finish = chart.feeder(i)
                    self._vector(vec, add, long, axis)
                    finish()
                    done += 1
                    if self.progress and time.monotonic() - last_note > 2.0:
                        last_note = time.monotonic()
                        self.progress(f"stats: {done} of {self.resampled_total()} vectors with data")
        if self.plotter is not None:
            self.plotter.close()

    def resampled_total(self) -> int:
        return sum(len(c.vectors) for c in self.charts)

    def _write_summaries(self) -> None:
        with open(self.out / "csv" / "vectors.csv", "w", newline="") as f:
            w = _writer(f)
            w.writerow(["run", "module", "name", "count", "mean", "stddev", "min", "max",
                        "first_time", "last_time", "file"])
            for v in self.vectors:
                w.writerow([v["run"], v["module"], v["name"], v["count"], fmt(v["mean"]), fmt(v["stddev"]),
                            fmt(v["min"]), fmt(v["max"]), fmt(v["first_time"]), fmt(v["last_time"]),
                            f"vectors/{self.stems[v['key']]}.csv" if v["count"] else ""])

    def _vector(self, vec: dict, add_to_chart, long, axis: str) -> None:
        env = None
        if self.plotter is not None:
            env = charts_.Envelope(float(vec["first_time"]), float(vec["last_time"]), charts_.LINE_COLUMNS)

        def pieces():
            for t, v in self.parsed.pieces(vec["key"]):
                add_to_chart(t, v)
                if env is not None:
                    env.add(t, v)
                yield t, v

        stem = self.stems[vec["key"]]
        prefix = _csv_line([vec["run"], vec["module"], vec["name"]])[:-1] + ","
        feed = pieces()
        try:
            with open(self.out / "csv" / "vectors" / f"{stem}.csv", "w") as f:
                f.write("time,value\n")
                for g, vals, has in resample(feed, self.precision, float(vec["last_time"])):
                    rows = [f"{gt:.15g},{fmt(x) if h else ''}\n"
                            for gt, x, h in zip(g.tolist(), vals.tolist(), has.tolist())]
                    f.write("".join(rows))
                    long.write("".join(prefix + r for r in rows))
        except ValueError as e:
            raise ResultsError(f"cannot resample {vec['module']} {vec['name']}: {e}") from None
        deque(feed, maxlen=0)  # the chart and the graph see every sample, whatever resample read
        self.resampled += 1
        if env is not None:
            t0 = time.perf_counter()
            (self.out / "graphs" / f"{stem}.png").write_bytes(self.plotter.png(vec, env, axis))
            self.graphs += 1
            self.graph_seconds += time.perf_counter() - t0


def _csv_line(cells: list) -> str:
    """One CSV line (quoted as the csv module quotes), for rows written as text."""
    buf = io.StringIO()
    _writer(buf).writerow(cells)
    return buf.getvalue()
