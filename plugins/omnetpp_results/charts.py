"""What the report draws per result name, across modules (numbers only; graphs.py draws them).

A vector's curve is its samples as recorded when they are few; otherwise one value per time step:
for state-like vectors the time average of the held value (`interpolationmode` sample-hold, the
default), for event-like ones (`none`) the mean of the samples in the step, with the min and max
per step as a band when the chart has one module. A name recorded by a few modules gets one curve
per module; by more, the envelope over the modules: per step the min, median, max and mean of the
modules' step values. Vectors arrive one at a time, piece by piece, so memory stays bounded
whatever their length. Histograms of a name are bars for one module, outlines for a few, and
their sum for more.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .gather import Gathered, NameGroup
from .naming import NameInfo
from .selection import Selection
from .store import Table
from .tables import num, where

MAX_LINES = 8  # modules drawn as lines of their own; more become an envelope
LINE_COLUMNS = 600  # time columns of a per-vector graph (first/min/max/last per column)
STEPS = 300  # time steps of a chart
SUB = 16  # held values per step averaged into a state-like vector's step value
CELL_BUDGET = 4_000_000  # modules x steps of one envelope (float32): bounds memory
HIST_BINS = 40  # common bins when a name's histograms have different bins


class Envelope:
    """Per-column first/min/max/last of a time-sorted series fed in pieces: a plot of any length
    of vector needs at most four points per pixel column. Short series are kept as they are."""

    def __init__(self, t0: float, t1: float, columns: int):
        self.t0 = t0
        self.w = columns
        span = t1 - t0
        self.scale = columns / span if span > 0 else 0.0
        self.first = np.full(columns, np.nan)
        self.last = np.full(columns, np.nan)
        self.min = np.full(columns, np.inf)
        self.max = np.full(columns, -np.inf)
        self.seen = np.zeros(columns, bool)
        self.raw_t: list | None = []
        self.raw_v: list | None = []
        self.raw_n = 0

    def add(self, t: np.ndarray, v: np.ndarray) -> None:
        if t.size == 0:
            return
        if self.raw_t is not None:
            if self.raw_n + t.size <= 4 * self.w:
                self.raw_t.append(t.copy())
                self.raw_v.append(v.copy())
                self.raw_n += t.size
                return
            for rt, rv in zip(self.raw_t, self.raw_v):
                self._fold(rt, rv)
            self.raw_t = self.raw_v = None
        self._fold(t, v)

    def _fold(self, t, v) -> None:
        col = np.clip(((t - self.t0) * self.scale).astype(np.int64), 0, self.w - 1)
        starts, ends = _runs(col)
        c = col[starts]
        newc = ~self.seen[c]
        self.first[c[newc]] = v[starts[newc]]
        self.last[c] = v[ends - 1]
        self.min[c] = np.fmin(self.min[c], np.fmin.reduceat(v, starts))
        self.max[c] = np.fmax(self.max[c], np.fmax.reduceat(v, starts))
        self.seen[c] = True

    def points(self):
        """(times, values, reduced?) ready to plot."""
        if self.raw_t is not None:
            if not self.raw_t:
                return np.zeros(0), np.zeros(0), False
            return np.concatenate(self.raw_t), np.concatenate(self.raw_v), False
        c = np.flatnonzero(self.seen)
        width = 1.0 / self.scale if self.scale else 0.0
        x0 = self.t0 + c * width
        xs = np.stack((x0, x0 + 0.25 * width, x0 + 0.5 * width, x0 + 0.99 * width), axis=1).ravel()
        ys = np.stack((self.first[c], self.min[c], self.max[c], self.last[c]), axis=1).ravel()
        return xs, ys, True


def _runs(col: np.ndarray):
    """Starts and ends of the runs of equal values in a non-decreasing index array."""
    br = np.flatnonzero(col[1:] != col[:-1]) + 1
    return np.concatenate(([0], br)), np.concatenate((br, [col.size]))


def drawstyle(attrs: dict, reduced: bool) -> str:
    """How OMNeT++ means a vector to be drawn (its interpolationmode); reduced series as lines."""
    mode = attrs.get("interpolationmode", "sample-hold")
    if reduced or mode == "linear":
        return "default"
    return {"none": "points", "backward-sample-hold": "steps-pre"}.get(mode, "steps-post")


@dataclass
class Line:
    label: str
    x: np.ndarray
    y: np.ndarray
    style: str  # default | steps-post | steps-pre | points | errorbar | bar (study charts)
    low: np.ndarray | None = None  # per-step min and max, when reduced to steps; study: the 95% interval
    high: np.ndarray | None = None


@dataclass
class Band:
    """The envelope across modules at each time step."""
    x: np.ndarray
    min: np.ndarray
    median: np.ndarray
    max: np.ndarray
    mean: np.ndarray


@dataclass
class Bars:
    label: str
    edges: np.ndarray
    counts: np.ndarray


@dataclass
class Chart:
    kind: str  # vector | histogram | study
    info: NameInfo
    modules: int
    note: str
    lines: list[Line] = field(default_factory=list)
    band: Band | None = None
    bars: list[Bars] = field(default_factory=list)
    enum: dict | None = None  # value -> state name, for the y axis
    stem: str = ""  # graphs/<stem>.png and the report's anchor
    problem: str = ""  # why (part of) it was not drawn; the report shows it where the chart would be
    xlabel: str = ""  # study charts: the iteration variable on the x axis
    categories: list[str] | None = None  # study bar charts: the variable combinations

    def axis_labels(self) -> tuple[str, str]:
        """(x, y) axis titles, one answer for the PNG and the page's interactive chart: a
        histogram counts values, a vector runs over simulation time, a study over its variable."""
        if self.kind == "histogram":
            return self.info.axis(), "count"
        return (self.xlabel if self.kind == "study" else "simulation time [s]"), self.info.axis()

    def series(self) -> dict:
        """The drawn numbers as JSON-able lists (NaN as None; 9 significant digits): what the
        page's interactive chart shows and what a reader of report.html can check."""
        def nums(a) -> list:
            return [None if not math.isfinite(v) else float(f"{v:.9g}") for v in np.asarray(a, float).tolist()]
        xlabel, ylabel = self.axis_labels()
        out: dict = {"kind": self.kind, "xlabel": xlabel, "ylabel": ylabel}
        if self.categories is not None:
            out["categories"] = self.categories
        out["lines"] = [{"label": ln.label, "style": ln.style, "x": nums(ln.x), "y": nums(ln.y),
                         **({"low": nums(ln.low), "high": nums(ln.high)} if ln.low is not None else {})}
                        for ln in self.lines]
        if self.band is not None:
            b = self.band
            out["band"] = {k: nums(getattr(b, k)) for k in ("x", "min", "median", "max", "mean")}
        if self.bars:
            out["bars"] = [{"label": b.label, "edges": nums(b.edges), "counts": nums(b.counts)} for b in self.bars]
        return out

    def empty(self) -> bool:
        """Nothing left to draw (every item of the name was unusable)."""
        return not (self.lines or self.band is not None or self.bars)


# ------------------------------------------------------------------------------- vectors
class _Steps:
    """One vector's value per time step (see the module docstring), found with binary searches:
    only the mean of an event-like vector needs a pass over the samples."""

    def __init__(self, t0: float, t1: float, width: int, held: bool):
        self.width, self.held = width, held
        if held:  # the held value at SUB points in each step
            self.points = t0 + (t1 - t0) * (np.arange(width * SUB) + 0.5) / (width * SUB)
            self.acc = np.full(width * SUB, np.nan)
        else:
            self.starts = t0 + (t1 - t0) * np.arange(width) / width
            self.acc = np.zeros(width)
            self.n = np.zeros(width)

    def add(self, t: np.ndarray, v: np.ndarray) -> None:
        if self.held:
            idx = np.searchsorted(t, self.points, side="right") - 1
            hit = idx >= 0
            self.acc[hit] = v[idx[hit]]
            return
        pos = np.searchsorted(t, self.starts, side="left")
        cnt = np.diff(np.append(pos, t.size))
        sums = np.add.reduceat(v, np.minimum(pos, t.size - 1))
        busy = cnt > 0
        self.acc[busy] += sums[busy]
        self.n += cnt

    def values(self) -> np.ndarray:
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # steps before the first sample stay nan
            if self.held:
                return np.nanmean(self.acc.reshape(self.width, SUB), axis=1)
            return np.where(self.n > 0, self.acc / np.maximum(self.n, 1), np.nan)


class VectorChart:
    """The chart of one vector name, fed its vectors one at a time: feeder(i, vec) for the i-th
    of the group's vectors with data."""

    def __init__(self, info: NameInfo, group: NameGroup, labels: dict):
        self.info, self.labels, self.n = info, labels, len(group.offsets)
        self.offsets, self.enum = group.offsets, _enum(group.enum())
        self.t0 = group.t0
        self.t1 = group.t1 if group.t1 > self.t0 else self.t0 + 1.0
        self.held = (group.attrs or {}).get("interpolationmode", "sample-hold") != "none"
        self.width = STEPS
        self.lines: list[Line] = []
        self.enveloped = self.n > MAX_LINES
        self.rows = None  # modules x steps while the chart is fed (one chart's rows at a time)
        if self.enveloped:
            self.width = max(50, min(STEPS, CELL_BUDGET // self.n))
        self.x = self.t0 + (self.t1 - self.t0) * (np.arange(self.width) + 0.5) / self.width

    def feeder(self, i: int, vec: dict):
        """(add(t, v), done()) for the i-th vector of this name."""
        steps = _Steps(self.t0, self.t1, self.width, self.held)
        if self.enveloped:
            if self.rows is None:
                self.rows = np.full((self.n, self.width), np.nan, dtype=np.float32)

            def done():
                self.rows[i] = steps.values()
            return steps.add, done
        env = Envelope(self.t0, self.t1, self.width)

        def add(t, v):
            steps.add(t, v)
            env.add(t, v)

        def done():
            x, y, reduced = env.points()
            label = where(vec, self.labels)
            if not reduced:
                self.lines.append(Line(label, x, y, drawstyle(vec["attrs"], False)))
                return
            seen = env.seen
            self.lines.append(Line(label, self.x, steps.values(), "default",
                                   np.where(seen, env.min, np.nan), np.where(seen, env.max, np.nan)))
        return add, done

    def _per_step(self) -> str:
        what = "time average of the held value" if self.held else "mean of the samples"
        return f"{what} in each of {self.width} steps of {(self.t1 - self.t0) / self.width:.3g} s"

    def chart(self) -> Chart:
        n, enum = self.n, self.enum
        if not self.enveloped:
            note = f"module {self.lines[0].label}" if n == 1 else f"{n} modules, one curve each"
            if any(line.low is not None for line in self.lines):
                note += f"; long vectors as the {self._per_step()}" + (
                    ", band min to max in the step" if n == 1 else "")
            return Chart("vector", self.info, n, note, lines=self.lines, enum=enum)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-nan steps stay nan
            rows = np.where(np.isfinite(self.rows), self.rows, np.nan)
            band = Band(self.x, np.nanmin(rows, 0), np.nanmedian(rows, 0), np.nanmax(rows, 0),
                        np.nanmean(rows, 0))
        self.rows = None  # drawn: its memory goes before the next name's
        note = (f"{n} modules: band min to max across modules, line median, dashed mean; "
                f"per module the {self._per_step()}")
        return Chart("vector", self.info, n, note, band=band, enum=enum)


def _enum(spec: str | None) -> dict | None:
    """value -> name from an `enum` attribute (e.g. IDLE=0,TRANSMIT=1)."""
    if spec is None:
        return None
    out = {}
    for part in spec.split(","):
        label, _, value = part.partition("=")
        try:
            out[float(value)] = label.strip()
        except ValueError:
            return None
    return out or None


def vector_charts(vectors: Gathered, labels: dict, sel: Selection) -> list[VectorChart]:
    """One VectorChart per name of the vectors with data, in name order."""
    return [VectorChart(g.info(sel), g, labels) for g in vectors.names() if g.offsets]


# ---------------------------------------------------------------------------- histograms
def histogram_charts(statistics: Gathered, table: Table, labels: dict, sel: Selection) -> list[Chart]:
    """One chart per histogram name with counts; bins as recorded (under/overflow noted)."""
    out = []
    with table.reader() as at:
        for group in statistics.names():
            if group.offsets and (chart := _histogram_chart(group, map(at, group.offsets), labels, sel)):
                out.append(chart)
    return out


def _histogram_chart(group: NameGroup, items, labels: dict, sel: Selection) -> Chart | None:
    bars, bad, under, over = [], {}, 0.0, 0.0
    for s in items:
        edges = np.array([num(e) for e, _ in s["bins"]])
        counts = np.array([num(c) for _, c in s["bins"]])
        first = 1 if edges[0] == -math.inf else 0  # the underflow bin, from -inf
        if not np.nansum(counts) > 0:
            continue  # never collected a value: nothing to draw, as a vector without data
        if (why := _unusable(edges[first:], counts[first:-1])):
            bad[where(s, labels)] = why
            continue
        under += counts[:first].sum()
        over += counts[-1]  # the last bin runs to +inf
        bars.append(Bars(where(s, labels), edges[first:], counts[first:-1]))
    problem = _left_out(bad, bool(bars))
    if not bars:
        return Chart("histogram", group.info(sel), 0, "", problem=problem) if bad else None
    n = len(bars)
    note = f"module {bars[0].label}" if n == 1 else f"{n} modules" + (
        "" if n <= MAX_LINES else ", counts summed")
    if n > MAX_LINES:
        bars, how = _summed(bars)
        note += how
    if under or over:
        note += f"; outside the bins: {under:g} below, {over:g} above"
    return Chart("histogram", group.info(sel), n, note, bars=bars, problem=problem)


def _unusable(edges: np.ndarray, counts: np.ndarray) -> str:
    """Why a histogram's bins cannot be drawn, or "" (OMNeT++ 4.6 wrote NaN edges for a histogram
    whose range was never set, inf ones for a value of inf)."""
    if edges.size < 2:
        return "it has no bins between its underflow and overflow (all values outside)"
    if not np.isfinite(edges).all():
        return "its bin edges are not finite numbers (" + \
            ("NaN" if np.isnan(edges).any() else "infinite") + ")"
    if (np.diff(edges) < 0).any():
        return "its bin edges decrease"
    if edges[-1] == edges[0]:
        return "all its bins have zero width (one value)"
    if not np.isfinite(counts).all() or (counts < 0).any():
        return "its bin counts are not all non-negative numbers"
    return ""


def _left_out(bad: dict, some_drawn: bool) -> str:
    """One sentence naming the modules whose histogram could not be drawn and why."""
    if not bad:
        return ""
    whos = list(bad)
    shown = ", ".join(whos[:3]) + (f" and {len(whos) - 3} more" if len(whos) > 3 else "")
    reason = bad[whos[0]]
    what = "left out of the chart" if some_drawn else "not drawn"
    return f"the histogram of {shown} {what}: {reason}; its numbers are in csv/histograms.csv"


def _summed(bars: list[Bars]) -> tuple[list[Bars], str]:
    """The modules' histograms added up: bin by bin when they share their bins, else onto common
    bins, each module's counts spread evenly over its own bins (so the totals are kept)."""
    first = bars[0].edges
    if all(b.edges.shape == first.shape and np.array_equal(b.edges, first) for b in bars):
        return [Bars("all modules", first, np.sum([b.counts for b in bars], axis=0))], ""
    lo = min(float(b.edges[0]) for b in bars)
    hi = max(float(b.edges[-1]) for b in bars)
    finest = min(float(np.min(np.diff(b.edges))) for b in bars)
    n = max(1, min(HIST_BINS, int(round((hi - lo) / finest)) if finest > 0 else HIST_BINS))
    edges = np.linspace(lo, hi, n + 1)
    counts = np.zeros(n)
    for b in bars:
        cum = np.concatenate(([0.0], np.cumsum(np.nan_to_num(b.counts))))
        counts += np.diff(np.interp(edges, b.edges, cum))
    return [Bars("all modules", edges, counts)], f" onto {n} common bins (each module's counts spread over its bins)"
