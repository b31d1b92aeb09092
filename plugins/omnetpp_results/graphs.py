"""The report's charts and the per-vector graphs as PNGs, drawn by raster.py (numpy and Pillow)
for about a tenth of what a matplotlib figure cost (issue 20), with the same meaning as the
matplotlib charts before them: tab10 colours, OMNeT++'s step styles, bands, histogram stairs, the
study's error bars and bars, state names on the y axis, a legend between title and plot.

A chart becomes a Plot: its items in data coordinates, its legend and its texts; render() sets
the scales (scales.py), lays the plot out with room measured for every label (long state names
and tick labels are never cut off) and draws it. Text from result files is drawn as it is (a `$`
is a dollar sign), on one line, shortened at its start when it does not fit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import scales
from .charts import Chart, drawstyle
from .raster import BLACK, Canvas, clean, fit, mix, text_width

TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
         "#bcbd22", "#17becf")
COLORS = [tuple(int(h[i:i + 2], 16) for i in (1, 3, 5)) for h in TAB10]
BLUE, ORANGE = COLORS[0], COLORS[1]
GRID, NOTE = (228, 228, 228), (89, 89, 89)
INKS = (*COLORS, BLACK, NOTE, GRID)  # every colour a chart is drawn with (raster's palette)
LABEL_CHARS = 60
LEGEND_COLUMNS = 4
LEGEND_CHARS = 140  # legend characters across a chart's width
PAD, TICK = 6, 5  # pixels: the picture's edge, a tick mark's length
DASH = (3.7, 1.6)  # matplotlib's "--", in line widths


@dataclass(frozen=True)
class Look:
    """One kind of PNG in pixels (what matplotlib's points came to at the figure's dpi)."""
    size: tuple[int, int]
    title: float  # font sizes
    label: float
    tick: float
    legend: float
    note: float
    line: float  # a data line's width
    title_left: bool  # the report's charts; a per-vector graph centres its title, its note beside the x label


CHART = Look((1000, 380), title=14.6, label=12.5, tick=11.1, legend=10.4, note=9.7, line=1.25, title_left=True)
VECTOR = Look((900, 360), title=12.5, label=12.5, tick=12.5, legend=10.4, note=8.75, line=0.875, title_left=False)


@dataclass
class Item:
    """One thing in the plot, in data coordinates. kind: line (style: a matplotlib drawstyle),
    dots, fill (between lo and hi), stairs (x: bin edges, y: counts), errorbar (points with their
    interval lo..hi), bars (at x, from 0 to y, interval lo..hi)."""
    kind: str
    x: np.ndarray
    y: np.ndarray
    color: tuple
    width: float = 1.39  # pixels (1 pt at the charts' 100 dpi)
    style: str = "default"
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    size: float = 0.0  # marker diameter (a line's: the marker of its lone sample)
    alpha: float = 1.0
    dash: bool = False
    filled: bool = True


@dataclass
class Plot:
    """What render() draws: items in data coordinates, the legend's entries (label, item) in
    `columns` columns, texts, and how the axes read."""
    title: str
    xlabel: str
    ylabel: str
    note: str
    items: list[Item]
    legend: list[tuple[str, Item]] = field(default_factory=list)
    columns: int = 1
    enum: dict | None = None  # y value -> state name
    categories: list[str] | None = None  # labels of x = 0, 1, 2, ...
    time: bool = False  # x is simulation time: a single time gets +-0.5 s


def _short(s: str, limit: int = LABEL_CHARS) -> str:
    """Long module paths keep their end, the part that tells modules apart."""
    s = clean(s)
    return s if len(s) <= limit else "…" + s[-(limit - 1):]


def _one_time(x: np.ndarray) -> bool:
    """A single sample, or samples all at one time: a line of no length, drawn as dots."""
    return x.size > 0 and x[0] == x[-1]


def _finite(y: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(y), y, np.nan)


def _legend_columns(chart: Chart) -> int:
    """As many legend columns as labels of this length fit across the chart (at most four)."""
    longest = max([len(_short(x.label)) for x in [*chart.lines, *chart.bars]] + [12])
    return max(1, min(LEGEND_COLUMNS, LEGEND_CHARS // (longest + 6)))


def _legend_rows(chart: Chart) -> int:
    """Rows of the legend; none for a lone line without its band (its title says it all)."""
    entries = len(chart.lines) + (1 if len(chart.lines) == 1 and chart.lines[0].low is not None else 0) \
        + (3 if chart.band is not None else 0) + len(chart.bars)
    return 0 if entries < 2 else -(-entries // _legend_columns(chart))


# ------------------------------------------------------------------------ charts as plots
def chart_plot(chart: Chart, look: Look = CHART) -> Plot:
    """What one chart of the report draws."""
    info = chart.info
    items, legend = _study_items(chart) if chart.kind == "study" else _series_items(chart, look)
    xlabel, ylabel = chart.axis_labels()
    ylabel = ylabel if chart.kind == "histogram" else _short(ylabel, 50)
    title = info.heading() + (f"  ·  {info.layer} layer" if info.layer else "")
    return Plot(_short(title, 110), clean(xlabel), ylabel, clean(chart.note), items,
                legend if _legend_rows(chart) else [], _legend_columns(chart), chart.enum,
                chart.categories if any(line.style == "bar" for line in chart.lines) else None,
                time=chart.kind == "vector")


def _series_items(chart: Chart, look: Look) -> tuple[list, list]:
    """A vector chart's lines (with the step's min to max of a lone reduced line), its band
    across modules, a histogram's stairs."""
    items, legend = [], []
    for i, line in enumerate(chart.lines):
        if line.low is not None and len(chart.lines) == 1:
            items.append(Item("fill", line.x, None, BLUE, lo=_finite(line.low), hi=_finite(line.high), alpha=0.2))
            legend.append(("min to max in the step", items[-1]))
        color, one = COLORS[i % 10], _one_time(line.x)
        if line.style == "points":
            items.append(Item("dots", line.x, _finite(line.y), color, size=6.0 if one else 3.1))
        else:
            items.append(Item("line", line.x, _finite(line.y), color, look.line, line.style, size=9.7 if one else 0))
        legend.append((_short(line.label), items[-1]))
    if chart.band is not None:
        b = chart.band
        items += [Item("fill", b.x, None, BLUE, lo=_finite(b.min), hi=_finite(b.max), alpha=0.22),
                  Item("line", b.x, _finite(b.median), BLUE), Item("line", b.x, _finite(b.mean), ORANGE, dash=True)]
        legend += list(zip(("min to max", "median", "mean"), items[-3:]))
    single = len(chart.bars) == 1
    for i, bars in enumerate(chart.bars):
        items.append(Item("stairs", bars.edges, bars.counts, BLUE if single else COLORS[i % 10],
                          alpha=0.85 if single else 1.0, filled=single))
        legend.append((_short(bars.label), items[-1]))
    return items, legend


def _study_items(chart: Chart) -> tuple[list, list]:
    """Means with their 95% intervals: lines over a numeric variable, or bars per combination.
    A point without an interval (one repetition) has no error bar."""
    items = []
    for i, line in enumerate(chart.lines):
        y = _finite(line.y)
        low, high = y - np.abs(y - _finite(line.low)), y + np.abs(_finite(line.high) - y)
        if line.style == "bar":
            items.append(Item("bars", line.x, y, BLUE, lo=low, hi=high, alpha=0.85))
        else:
            items.append(Item("errorbar", line.x, y, COLORS[i % 10], lo=low, hi=high, size=6.25))
    return items, [(_short(line.label), item) for line, item in zip(chart.lines, items)]


# ------------------------------------------------------------------------------ scales
def _extent(it: Item) -> tuple[list, list, tuple]:
    """The x and y values an item reaches (for the limits) and the values its y sticks to."""
    if it.kind == "fill":
        ok = np.isfinite(it.lo) & np.isfinite(it.hi)
        return [it.x[ok]], [it.lo[ok], it.hi[ok]], ()
    if it.kind == "stairs":
        return [it.x], [it.y, [0.0]], (0.0,)
    if it.kind == "bars":
        return [it.x - 0.4, it.x + 0.4], [it.y, it.lo, it.hi, [0.0]], (0.0,)
    ok = np.isfinite(it.x) & np.isfinite(it.y)
    if it.kind == "errorbar":
        return [it.x[ok]], [it.y[ok], it.lo[ok], it.hi[ok]], ()
    return [it.x[ok]], [it.y[ok]], ()


def _span(parts: list) -> tuple[float, float]:
    v = np.concatenate([np.asarray(p, float).ravel() for p in parts]) if parts else np.zeros(0)
    v = v[np.isfinite(v)]
    return (float(v.min()), float(v.max())) if v.size else (math.nan, math.nan)


def _limits(plot: Plot) -> tuple[tuple, tuple]:
    xs, ys, sticky = [], [], set()
    for it in plot.items:
        x, y, s = _extent(it)
        xs += x
        ys += y
        sticky.update(s)
    if plot.enum:
        ys.append(np.array(list(plot.enum), float))
    xlim = scales.limits(*_span(xs), pad=0.5 if plot.time else None)
    return xlim, scales.limits(*_span(ys), sticky=tuple(sticky))


@dataclass
class Axis:
    """One axis: its view limits, pixel positions of the limits, ticks and their labels."""
    lo: float
    hi: float
    a: float = 0.0
    b: float = 1.0
    ticks: np.ndarray = field(default_factory=lambda: np.zeros(0))
    labels: list = field(default_factory=list)
    angle: float = 0.0  # the labels' turn (study categories)

    def __call__(self, v) -> np.ndarray:
        return self.a + (np.asarray(v, float) - self.lo) * ((self.b - self.a) / (self.hi - self.lo))


def _numeric(ax: Axis, length: float, need) -> None:
    """The most ticks (at most 10) whose labels still have room: need(labels) pixels apart."""
    for n in range(9, 0, -1):
        t = scales.ticks(ax.lo, ax.hi, n)
        if not t.size:
            continue
        ax.ticks, ax.labels = t, scales.labels(t)
        if t.size < 2 or scales.step_of(t) * length / (ax.hi - ax.lo) >= need(ax.labels):
            return


def _named(ax: Axis, positions, names: list[str], length: float, need: float) -> None:
    """Ticks at given positions with names, every k-th named when they are too close."""
    pos = np.asarray(positions, float)
    inside = (pos >= ax.lo) & (pos <= ax.hi)
    pos, names = pos[inside], [n for n, i in zip(names, inside) if i]
    gap = length / max(ax.hi - ax.lo, 1e-300) * (np.min(np.diff(np.sort(pos))) if pos.size > 1 else 1.0)
    every = max(1, math.ceil(need / max(gap, 1e-9)))
    ax.ticks = pos
    ax.labels = [n if k % every == 0 else "" for k, n in enumerate(names)]


# ------------------------------------------------------------------------------ layout
@dataclass
class Frame:
    """The plot's box in pixels, inside its spines, and its two axes."""
    left: int
    top: int
    right: int
    bottom: int
    x: Axis
    y: Axis
    xblock: float  # the height of the x tick labels


def _legend_top(look: Look) -> float:
    return PAD + 1.3 * look.title + 4


def _row(look: Look) -> float:
    return 1.45 * look.legend


def _layout(plot: Plot, look: Look) -> Frame:
    """Margins measured from what they hold: the title and legend rows above, the tick labels,
    x label and note below, the widest y tick label at the left, the last x label at the right."""
    w, h = look.size
    (x0, x1), (y0, y1) = _limits(plot)
    x, y = Axis(x0, x1), Axis(y0, y1)
    rows = -(-len(plot.legend) // plot.columns)
    top = round(_legend_top(look) + (rows * _row(look) + 2 if rows else 0))
    xblock = 1.2 * look.tick
    if plot.categories:
        x.angle, room = _turn(plot.categories, look, w)
        labels = [fit(_short(c, 30), look.tick, room) for c in plot.categories]
        xblock = _turned_height(labels, look.tick, x.angle)
    below = TICK + 4 + xblock + 4 + 1.2 * look.label + (1.3 * look.note + 2 if look.title_left and plot.note else 0)
    bottom = round(h - PAD - below)
    y.a, y.b = bottom, top
    if plot.enum:
        keys = sorted(plot.enum)
        _named(y, keys, [fit(clean(plot.enum[k]), look.tick, 0.25 * w) for k in keys], bottom - top, 1.3 * look.tick)
    else:
        _numeric(y, bottom - top, lambda labels: 1.7 * look.tick)
    left = round(PAD + 1.3 * look.label + 4 + max([text_width(s, look.tick) for s in y.labels] + [0]) + 4 + TICK)
    right = w - 15
    for _ in range(2):  # once more when the last label would stick out of the picture
        x.a, x.b = left, right
        if plot.categories:
            _named(x, range(len(labels)), labels, right - left, 1.3 * look.tick if x.angle == 90 else 0)
            break
        _numeric(x, right - left, lambda labels: max(text_width(s, look.tick) for s in labels) + 10)
        out = x(x.ticks[-1]) + text_width(x.labels[-1], look.tick) / 2 - (w - 3)
        if out <= 0:
            break
        right -= math.ceil(out)
    return Frame(left, top, right, bottom, x, y, xblock)


def _turn(categories: list[str], look: Look, w: int) -> tuple[float, float]:
    """How a study bar chart's category labels go: level while few and short enough, turned by
    20 degrees while each has 35 pixels, else upright (every k-th when even that is too close);
    and how long each may be."""
    each = (w - 120) / max(len(categories), 1)
    widest = max(text_width(_short(c, 30), look.tick) for c in categories)
    if len(categories) <= 4 and widest + 8 <= each:
        return 0.0, each
    return (20.0, 200.0) if each >= 35 else (90.0, 110.0)


def _turned_height(labels: list[str], px: float, angle: float) -> float:
    widest = max([text_width(s, px) for s in labels] + [0])
    a = math.radians(angle)
    return math.sin(a) * widest + math.cos(a) * 1.2 * px + 2


# ------------------------------------------------------------------------------ drawing
def render(plot: Plot, look: Look) -> bytes:
    """The plot as a PNG of look.size pixels."""
    f = _layout(plot, look)
    c = Canvas(look.size)
    for it in plot.items:  # areas first, under the grid (as matplotlib's z-order has them)
        _area(c, it, f.x, f.y)
    for t in f.x.ticks:
        c.rect(math.floor(f.x(t)), f.top, math.floor(f.x(t)) + 1, f.bottom, GRID)
    for t in f.y.ticks:
        c.rect(f.left, math.floor(f.y(t)), f.right, math.floor(f.y(t)) + 1, GRID)
    for it in plot.items:
        _draw(c, it, f.x, f.y)
    _axes(c, f, look)
    _texts(c, plot, f, look)
    if plot.legend:
        _legend(c, plot, f, look)
    return c.png(INKS)


def _dash(it: Item) -> tuple | None:
    return (DASH[0] * it.width, DASH[1] * it.width) if it.dash else None


def _stepped(x: np.ndarray, y: np.ndarray, style: str) -> tuple[np.ndarray, np.ndarray]:
    """The corners of a step line, as matplotlib's drawstyles put them."""
    if x.size < 2:
        return x, y
    if style == "steps-post":
        return np.repeat(x, 2)[1:], np.repeat(y, 2)[:-1]
    if style in ("steps-pre", "steps"):
        return np.repeat(x, 2)[:-1], np.repeat(y, 2)[1:]
    if style == "steps-mid":
        mid = (x[1:] + x[:-1]) / 2
        return np.concatenate(([x[0]], np.repeat(mid, 2), [x[-1]])), np.repeat(y, 2)
    return x, y


def _area(c: Canvas, it: Item, sx: Axis, sy: Axis) -> None:
    """An item's filled part: a band, a single histogram's bars, a study's bars."""
    if it.kind == "fill":
        c.between(sx(it.x), sy(it.lo), sy(it.hi), mix(it.color, it.alpha))
    elif it.kind == "stairs" and it.filled:
        c.stairs(sx(it.x), sy(it.y), float(sy(0.0)), mix(it.color, it.alpha))
    elif it.kind == "bars":
        for xi, yi in zip(it.x.tolist(), it.y.tolist()):
            if math.isfinite(yi):
                c.rect(float(sx(xi - 0.4)), float(sy(0.0)), float(sx(xi + 0.4)), float(sy(yi)), mix(it.color, it.alpha))


def _draw(c: Canvas, it: Item, sx: Axis, sy: Axis) -> None:
    """An item's lines and markers."""
    if it.kind == "line":
        x, y = _stepped(it.x, it.y, it.style)
        c.line(sx(x), sy(y), it.color, it.width, _dash(it))
        if it.size:
            c.dots(sx(it.x), sy(it.y), it.color, it.size)
    elif it.kind == "dots":
        c.dots(sx(it.x), sy(it.y), it.color, it.size)
    elif it.kind == "stairs":
        _stairs(c, it, sx, sy)
    elif it.kind == "errorbar":
        _errorbars(c, sx(it.x), sy(it.lo), sy(it.hi), it.color, it.width)
        c.line(sx(it.x), sy(it.y), it.color, it.width)
        c.dots(sx(it.x), sy(it.y), it.color, it.size)
    elif it.kind == "bars":
        _errorbars(c, sx(it.x), sy(it.lo), sy(it.hi), BLACK, 1.39)


def _stairs(c: Canvas, it: Item, sx: Axis, sy: Axis) -> None:
    """A histogram's outline from the base line 0 up and back down at the ends (a filled one's
    only while its bins are wider than a pixel)."""
    edges, counts = sx(it.x), sy(it.y)
    if it.filled and counts.size > (edges[-1] - edges[0]):
        return
    xs = np.repeat(edges, 2)
    ys = np.concatenate(([sy(0.0)], np.repeat(counts, 2), [sy(0.0)]))
    c.line(xs, ys, it.color, it.width)


def _errorbars(c: Canvas, x, lo, hi, color, width: float, cap: float = 8.3) -> None:
    """Vertical bars from lo to hi with caps; none where there is no interval."""
    for xi, a, b in zip(np.asarray(x).tolist(), np.asarray(lo).tolist(), np.asarray(hi).tolist()):
        if not (math.isfinite(a) and math.isfinite(b)) or a == b:
            continue
        c.stroke(xi, a, xi, b, color, width)
        for end in (a, b):
            c.stroke(xi - cap / 2, end, xi + cap / 2, end, color, width)


def _axes(c: Canvas, f: Frame, look: Look) -> None:
    """Spines, outward tick marks and tick labels."""
    for box in ((f.left - 1, f.top - 1, f.right + 1, f.top), (f.left - 1, f.bottom, f.right + 1, f.bottom + 1),
                (f.left - 1, f.top, f.left, f.bottom), (f.right, f.top, f.right + 1, f.bottom)):
        c.rect(*box, BLACK)
    below = f.bottom + 1 + TICK + 3
    for t, s in zip(f.x.ticks.tolist(), f.x.labels):
        px = math.floor(f.x(t))
        c.rect(px, f.bottom + 1, px + 1, f.bottom + 1 + TICK, BLACK)
        if f.x.angle == 20:
            room = min((px - PAD) / math.cos(math.radians(20)), 200.0)
            c.turned(px + 1, below, fit(s, look.tick, room), look.tick, 20, (1.0, 0.0))
        elif f.x.angle:
            c.turned(px + 0.5, below, s, look.tick, f.x.angle, (0.5, 0.0))
        else:
            c.text(px + 0.5, below, s, look.tick, anchor="ma")
    for t, s in zip(f.y.ticks.tolist(), f.y.labels):
        py = math.floor(f.y(t))
        c.rect(f.left - 1 - TICK, py, f.left - 1, py + 1, BLACK)
        c.text(f.left - 1 - TICK - 3, py + 0.5, s, look.tick, anchor="rm")


def _texts(c: Canvas, plot: Plot, f: Frame, look: Look) -> None:
    """Title, axis labels and the note."""
    w = look.size[0]
    if look.title_left:
        c.text(f.left, PAD, fit(plot.title, look.title, w - f.left - PAD), look.title)
    else:
        c.text((f.left + f.right) / 2, PAD, fit(plot.title, look.title, w - 2 * PAD), look.title, anchor="ma")
    ylabel = fit(plot.ylabel, look.label, f.bottom - f.top + 30)
    c.turned(PAD + 0.65 * look.label, (f.top + f.bottom) / 2, ylabel, look.label, 90, (0.5, 0.5))
    xlabel_y = f.bottom + 1 + TICK + 4 + f.xblock + 3
    c.text((f.left + f.right) / 2, xlabel_y, fit(plot.xlabel, look.label, w - 2 * PAD), look.label, anchor="ma")
    if look.title_left:
        c.text(f.left, xlabel_y + 1.2 * look.label + 3, fit(plot.note, look.note, w - f.left - PAD), look.note,
               NOTE, "la")
    else:
        room = (f.right - f.left) / 2 - text_width(plot.xlabel, look.label) / 2 - 10
        c.text(f.right, xlabel_y, fit(plot.note, look.note, room), look.note, NOTE, "ra")


def _legend(c: Canvas, plot: Plot, f: Frame, look: Look) -> None:
    """Entries between the title and the plot, column by column as matplotlib fills them, in at
    most plot.columns columns as wide as their widest entry."""
    px, rows = look.legend, -(-len(plot.legend) // plot.columns)
    handle, pad, gap = 1.6 * px, 0.8 * px, 1.2 * px
    room = (look.size[0] - PAD - f.left) / plot.columns - handle - pad - gap
    labels = [fit(clean(s), px, room) for s, _ in plot.legend]
    widths = [max(text_width(s, px) for s in labels[j:j + rows]) for j in range(0, len(labels), rows)]
    starts = np.concatenate(([f.left], f.left + np.cumsum([handle + pad + wd + gap for wd in widths])))
    for k, ((_, it), s) in enumerate(zip(plot.legend, labels)):
        x, y = float(starts[k // rows]), _legend_top(look) + (k % rows + 0.5) * _row(look)
        _handle(c, it, x, y, handle, px)
        c.text(x + handle + pad, y, s, px, anchor="lm")


def _handle(c: Canvas, it: Item, x: float, y: float, length: float, px: float) -> None:
    """The legend's sample of an item: a patch for areas, a dot for points, else a line (with
    the error bar or the marker the item has)."""
    mid = x + length / 2
    if it.kind in ("fill", "bars") or (it.kind == "stairs" and it.filled):
        c.rect(x, y - 0.35 * px, x + length, y + 0.35 * px, mix(it.color, it.alpha))
    elif it.kind == "dots":
        c.dots([mid], [y], it.color, max(it.size, 4.0))
    else:
        c.line([x, x + length], [y, y], it.color, it.width, _dash(it))
        if it.kind == "errorbar":
            _errorbars(c, [mid], [y - 0.45 * px], [y + 0.45 * px], it.color, it.width, cap=5.0)
        if it.size:
            c.dots([mid], [y], it.color, min(it.size, 0.6 * px))


# ---------------------------------------------------------------------------- painters
def chart_png(chart: Chart) -> bytes:
    """One chart of the report as a PNG."""
    return render(chart_plot(chart), CHART)


def vector_png(vec: dict, xs: np.ndarray, ys: np.ndarray, reduced: bool, axis: str) -> bytes:
    """The graph of one vector (graphs: "vector"): its samples drawn as OMNeT++ means them (steps,
    points, or a line through the per-column first, min, max and last of a long vector). vec:
    module, name, count and attrs; xs, ys, reduced: its Envelope's points."""
    style = drawstyle(vec["attrs"], reduced)
    if style == "points" or _one_time(xs):  # a single sample is a point, whatever the mode
        item = Item("dots", xs, _finite(ys), BLUE, size=5.0 if _one_time(xs) else 2.5)
    else:
        item = Item("line", xs, _finite(ys), BLUE, VECTOR.line, style)
    note = f"{vec['count']} sample{'s' if vec['count'] != 1 else ''}" + (
        ", min/max per pixel column" if reduced else "")
    plot = Plot(_short(f"{vec['module']}  {vec['name']}", 110), "simulation time [s]", _short(axis, 50),
                note, [item], time=True)
    return render(plot, VECTOR)
