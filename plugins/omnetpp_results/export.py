"""Export: the parse intermediate becomes the archive's csv/, simrun/, graphs/, INFO.txt and report.

Every vector is read once, piece by piece, and each piece goes to everything that needs it: its
resampled CSV (and the long-format csv/vectors-resampled.csv), the chart of its result name, and
its own graph when graphs are per vector.
"""
from __future__ import annotations

import csv
import io
import math
import shutil
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import charts as charts_
from .contents import GRAPHS, Contents
from .errors import ResultsError
from .info import write_info
from .gather import Gathered, gather
from .naming import Stems, run_labels, run_stems, vector_stem
from .painter import Painter
from .parsing import Problem, peak_rss_mb
from .record import Record
from .report import write_report
from .resample import check_total, resample
from .resources import Resources, from_param
from .runfigures import RunFigures, run_figures, write_simrun_csv
from .scalartable import gather_scalars
from .selection import Selection
from .store import Parsed
from .study.charts import StudyCharts, study_charts
from .study.compute import Study
from .study.itervars import write_runs_csv
from .tables import STATISTIC, VECTOR
from .textfmt import fmt

ROWS = 1 << 16  # resampled rows formatted at a time

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
    draw_wait_seconds: float  # waiting for the drawing process once the data was done
    report_seconds: float
    postprocessing_seconds: float
    peak_rss_mb: float
    simrun: RunFigures | None
    simrun_runs: list[RunFigures] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    problems: list[Problem] = field(default_factory=list)


@dataclass
class _Selected:
    """The parse output, and what the statistics option selects from it gathered by name."""
    parsed_dir: Path
    sel: Selection
    parsed: Parsed
    doc: dict
    labels: dict  # run id -> name in charts and tables (by its iteration variables)
    keep: Callable[[dict], bool]
    vectors: Gathered
    stems: dict = field(default_factory=dict)  # run id -> name in file names


def stats(parsed_dir, out_dir, *, precision=100.0, statistics="all", graphs="statistic",
          resources=None, progress=None) -> StatsResult:
    """Write the archive's content into out_dir from parse()'s parsed_dir.

    graphs: "statistic" (the report's charts also as PNGs), "vector" (a PNG per vector) or
    "none" (False, the former switch, means "none"). resources: what the simulator measured
    (peak_sim_ram_bytes, peak_disk_bytes, sim_wall_seconds); it wins over a `time -v` file.
    """
    t_start = time.perf_counter()
    precision, graphs, param = _precision(precision), _graphs(graphs), from_param(resources)
    src = _select(Path(parsed_dir), Selection(statistics))
    try:  # refused before anything is written
        check_total(precision, _last_times(src))
    except ValueError as e:
        raise ResultsError(f"cannot resample: {e}") from None
    out = Path(out_dir)
    for sub in ("csv/vectors", "simrun"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    c, images, waited = _export(src, out, precision, graphs, param, progress, t_start)
    t_report = time.perf_counter()
    write_report(out, c, images)
    write_info(out / "INFO.txt", c)
    done = time.perf_counter()
    return StatsResult(
        runs=[r.run_id for r in c.runs], scalars=c.scalars, statistics=c.statistics,
        histogram_bins=c.histogram_bins, vectors=c.vectors, empty_vectors=c.empty_count,
        resampled=c.resampled, charts=len(c.charts), graphs=c.graph_files, graphs_mode=graphs,
        precision=precision, selection=c.selection, seconds=round(done - t_start, 3),
        draw_wait_seconds=round(waited, 3), report_seconds=round(done - t_report, 3),
        postprocessing_seconds=round(src.doc.get("parse_seconds", 0.0) + done - t_start, 3),
        peak_rss_mb=round(max(c.peak_mb, peak_rss_mb()), 1), simrun=c.figures[0], simrun_runs=c.figures,
        resources=c.resources, problems=c.problems)


def _select(parsed_dir: Path, sel: Selection) -> _Selected:
    parsed = Parsed(parsed_dir)
    runs_by_id = {r.run_id: r for r in parsed.runs}
    labels = run_labels(parsed.runs)

    def keep(item: dict) -> bool:
        return sel(runs_by_id.get(item["run"]), item["module"], item["name"])
    return _Selected(parsed_dir, sel, parsed, parsed.meta, labels, keep,
                     gather(parsed.vectors, VECTOR, keep, labels, keep_undrawn=True), run_stems(parsed.runs))


def _last_times(src: _Selected):
    """The last sample time of every selected vector with data (read again, one at a time)."""
    with src.parsed.vectors.reader() as at:
        for group in src.vectors.groups.values():
            for offset in group.offsets:
                yield float(at(offset)["last_time"])


def _export(src: _Selected, out: Path, precision: float, graphs: str, param: Resources, progress,
            t_start: float) -> tuple[Contents, list[bytes], float]:
    """csv/ and simrun/ with the charts drawn beside; (what the archive holds, the charts' PNGs,
    seconds spent waiting for the drawing once the data was done)."""
    sel, doc = src.sel, src.doc
    with Painter() as painter:
        vpass = _VectorPass(src, precision, out, graphs == "vector", painter, progress)
        if vpass.names:  # their imports run while the tables are written
            painter.start(charts=len(vpass.names) + (src.vectors.drawn if graphs == "vector" else 0))
        study = Study(src.parsed.runs)
        scalars, statistics, nbins = _write_tables(src, out, study)
        studied = _study(study, out, painter)
        hist = charts_.histogram_charts(statistics, src.parsed.statistics, src.labels, sel)
        for j, chart in enumerate(hist):
            if not chart.empty():
                painter.chart(("h", j), chart)
        vpass.run()
        post_seconds = doc.get("parse_seconds", 0.0) + time.perf_counter() - t_start
        peak = max(doc.get("parse_peak_rss_mb", 0.0), peak_rss_mb())
        figures, job = run_figures(doc.get("simrun", []), doc.get("time_outputs", []), param, post_seconds, peak)
        write_simrun_csv(out / "simrun" / "simrun-stats.csv", figures)
        t_wait = time.perf_counter()
        pngs = painter.finish()
        waited = time.perf_counter() - t_wait
    keys = [*range(len(vpass.charts)), *(("h", j) for j in range(len(hist))),
            *(("s", j) for j in range(len(studied.charts)))]
    images, drawing = _drawn(keys, vpass.charts + hist + studied.charts, pngs, painter.failed)
    drawing += vpass.problems(painter.failed)
    return Contents(
        results_dir=doc.get("results_dir", ""), runconfig=doc.get("runconfig"), selection=sel.describe(),
        precision=precision, graphs=graphs, runs=src.parsed.runs, labels=src.labels,
        files=doc.get("files", []), skipped_files=doc.get("skipped_files", []),
        has_ini=(out / "omnetpp.ini").is_file(), scalars=scalars.count, statistics=statistics.count,
        histogram_bins=nbins, vectors=src.vectors.count, resampled=vpass.resampled,
        empty_vectors=src.vectors.undrawn, empty_count=src.vectors.undrawn_count, figures=figures,
        resources=job, post_seconds=post_seconds, peak_mb=peak,
        problems=[Problem.from_dict(p) for p in doc.get("problems", [])] + drawing,
        scalar_rows=scalars.rows(sel, with_samples=False), statistic_rows=statistics.rows(sel, with_samples=True),
        vector_rows=src.vectors.rows(sel, with_samples=True), charts=vpass.charts + hist + studied.charts,
        study=study, study_uncharted=studied.uncharted,
        graph_files=vpass.graphs), images, waited


def _drawn(keys: list, charts: list[charts_.Chart], pngs: dict, failed: dict) -> tuple[list, list[Problem]]:
    """The charts' PNGs (None where none was drawn) and a Problem for every chart the report
    shows without (part of) its drawing: its result named, its numbers still in csv/."""
    images, problems = [], []
    for key, chart in zip(keys, charts):
        if key in failed:
            chart.problem = "; ".join(filter(None, [chart.problem, f"the chart could not be drawn ({failed[key]}); "
                                                    "its numbers are in csv/"]))
        images.append(pngs.get(key))
        if chart.problem:
            action = "chart drawn without them" if key in pngs else "chart left out"
            problems.append(Problem("report.html", None, f"{chart.kind} chart of {chart.info.name!r}: "
                                    f"{chart.problem}", action=action))
    return images, problems


def _study(study: Study, out: Path, painter: Painter) -> StudyCharts:
    """csv/study.csv and the study's charts (sent to the painter), when a config's runs differ
    in their iteration variables."""
    if not study:
        return StudyCharts()
    study.write_csv(out / "csv" / "study.csv")
    studied = study_charts(study)
    for j, chart in enumerate(studied.charts):
        painter.chart(("s", j), chart)
    return studied


def _write_tables(src: _Selected, out: Path, study: Study) -> tuple[Gathered, Gathered, int]:
    """csv/scalars.csv, csv/statistics.csv, csv/histograms.csv and omnetpp.ini, each table read
    once; (scalars, statistics gathered by name, the number of histogram bins)."""
    if (src.parsed_dir / "omnetpp.ini").is_file():
        shutil.copyfile(src.parsed_dir / "omnetpp.ini", out / "omnetpp.ini")
    write_runs_csv(out / "csv" / "runs.csv", src.parsed.runs)
    with open(out / "csv" / "scalars.csv", "wb") as f:
        f.write(b"run,module,name,value\n")
        scalars = gather_scalars(src.parsed.scalars, src.keep, src.labels, f, study if study else None,
                                 everything=src.sel.kind == "all")
    statistics, nbins = _write_statistics(out / "csv", src, study.statistic if study else _nothing)
    return scalars, statistics, nbins


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


def _nothing(item: dict) -> None:
    pass


def _write_statistics(csv_dir: Path, src: _Selected, add: Callable[[dict], None]) -> tuple[Gathered, int]:
    """statistics.csv and histograms.csv; (the statistics gathered, the histogram bins written)."""
    nbins = 0
    with open(csv_dir / "statistics.csv", "w", newline="") as f, \
            open(csv_dir / "histograms.csv", "w", newline="") as fh:
        w, wh = _writer(f), _writer(fh)
        w.writerow(["run", "module", "name", "count", "mean", "stddev", "min", "max", "sum"])
        wh.writerow(["run", "module", "name", "bin_lower", "bin_upper", "count"])

        def each(s: dict) -> None:
            nonlocal nbins
            fl = s["fields"]
            total = fl.get("sum", fl.get("weightedSum", ""))
            w.writerow([s["run"], s["module"], s["name"], fl.get("count", ""), fl.get("mean", ""),
                        _stddev(fl), fl.get("min", ""), fl.get("max", ""), total])
            bins = s["bins"]
            for i, (edge, cnt) in enumerate(bins):  # first bin: underflow; last: overflow
                upper = bins[i + 1][0] if i + 1 < len(bins) else "inf"
                wh.writerow([s["run"], s["module"], s["name"], edge, upper, cnt])
            nbins += len(bins)
            add(s)
        statistics = gather(src.parsed.statistics, STATISTIC, src.keep, src.labels, each)
    return statistics, nbins


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
    """csv/vectors.csv, then every vector with data read once, name by name; each name's chart
    (and each vector's graph when asked for) goes to the painter as soon as its data is complete."""

    def __init__(self, src: _Selected, precision: float, out: Path, per_vector_graphs: bool,
                 painter: Painter, progress):
        self.src, self.parsed, self.precision, self.out = src, src.parsed, precision, out
        self.painter, self.progress = painter, progress
        self.renamed: dict[int, str] = {}  # vector key -> stem, where vector_stem() was taken
        self.names = charts_.vector_charts(src.vectors, src.labels, src.sel)
        self.charts: list[charts_.Chart] = []
        self.graphs_dir = out / "graphs" if per_vector_graphs else None
        self.resampled = self.graphs = 0

    def problems(self, failed: dict) -> list[Problem]:
        """The per-vector graphs the drawing process could not draw (keyed by their path; the
        stem names run, module and vector, and its CSV is written)."""
        out = []
        for path, why in failed.items():
            if isinstance(path, str):
                self.graphs -= 1
                stem = Path(path).stem
                out.append(Problem(f"graphs/{stem}.png", None, f"graph of vector {stem} not drawn: {why}",
                                   action=f"graph left out, numbers in csv/vectors/{stem}.csv"))
        return out

    def run(self) -> None:
        self._write_summaries()
        if self.graphs_dir is not None and self.names:
            self.graphs_dir.mkdir(exist_ok=True)
        total = self.src.vectors.drawn
        last_note = time.monotonic()
        with open(self.out / "csv" / "vectors-resampled.csv", "w", newline="") as long, \
                self.parsed.vectors.reader() as at:
            long.write("run,module,name,time,value\n")
            for name in self.names:
                axis = name.info.axis()
                for i, offset in enumerate(name.offsets):
                    vec = at(offset)
                    add, finish = name.feeder(i, vec)
                    self._vector(vec, add, long, axis)
                    finish()
                    if self.progress and time.monotonic() - last_note > 2.0:
                        last_note = time.monotonic()
                        self.progress(f"stats: {self.resampled} of {total} vectors with data")
                self.charts.append(name.chart())
                self.painter.chart(len(self.charts) - 1, self.charts[-1])

    def _stem(self, vec: dict) -> str:
        return self.renamed.get(vec["key"]) or vector_stem(vec, self.src.stems)

    def _write_summaries(self) -> None:
        """csv/vectors.csv in file order, which is also the order the vectors get their stems."""
        stems = Stems()
        with open(self.out / "csv" / "vectors.csv", "w", newline="") as f:
            w = _writer(f)
            w.writerow(["run", "module", "name", "count", "mean", "stddev", "min", "max",
                        "first_time", "last_time", "file"])
            for v in self.parsed.vectors:
                if not self.src.keep(v):
                    continue
                file = ""
                if v["count"]:
                    wanted = vector_stem(v, self.src.stems)
                    if (stem := stems(wanted)) != wanted:
                        self.renamed[v["key"]] = stem
                    file = f"vectors/{stem}.csv"
                w.writerow([v["run"], v["module"], v["name"], v["count"], fmt(v["mean"]), fmt(v["stddev"]),
                            fmt(v["min"]), fmt(v["max"]), fmt(v["first_time"]), fmt(v["last_time"]), file])

    def _vector(self, vec: dict, add_to_chart, long, axis: str) -> None:
        env = None
        if self.graphs_dir is not None:
            env = charts_.Envelope(float(vec["first_time"]), float(vec["last_time"]), charts_.LINE_COLUMNS)

        def pieces():
            for t, v in self.parsed.pieces(vec["key"]):
                add_to_chart(t, v)
                if env is not None:
                    env.add(t, v)
                yield t, v

        stem = self._stem(vec)
        prefix = _csv_line([vec["run"], vec["module"], vec["name"]])[:-1] + ","
        feed = pieces()
        try:
            with open(self.out / "csv" / "vectors" / f"{stem}.csv", "w") as f:
                f.write("time,value\n")
                for g, vals, has in resample(feed, self.precision, float(vec["last_time"])):
                    for a in range(0, g.size, ROWS):  # bounded text in memory, whatever the grid
                        rows = [f"{gt:.15g},{fmt(x) if h else ''}\n" for gt, x, h in
                                zip(g[a:a + ROWS].tolist(), vals[a:a + ROWS].tolist(), has[a:a + ROWS].tolist())]
                        f.write("".join(rows))
                        long.write("".join(prefix + r for r in rows))
        except ValueError as e:
            raise ResultsError(f"cannot resample {vec['module']} {vec['name']}: {e}") from None
        deque(feed, maxlen=0)  # the chart and the graph see every sample, whatever resample read
        self.resampled += 1
        if env is not None:
            self.painter.vector(self.graphs_dir / f"{stem}.png", vec, env.points(), axis)
            self.graphs += 1


def _csv_line(cells: list) -> str:
    """One CSV line (quoted as the csv module quotes), for rows written as text."""
    buf = io.StringIO()
    _writer(buf).writerow(cells)
    return buf.getvalue()
