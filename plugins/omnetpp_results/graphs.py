"""Drawing with matplotlib (Agg): the report's charts and the optional one-graph-per-vector PNGs.

Figures are made once and reused (creating figures is the slow part of matplotlib); PNGs are
encoded by Pillow straight from the Agg buffer instead of a second render through savefig.
Every text taken from result files goes through text() so that a `$` in a module name
(port$o[0]) is not read as mathtext.
"""
from __future__ import annotations

import io

import numpy as np

from .charts import Chart, drawstyle

BLUE, ORANGE = "#1f77b4", "#ff7f0e"
LABEL_CHARS = 60
LEGEND_COLUMNS = 4
LEGEND_CHARS = 140  # legend characters across a chart's width


def text(s: str) -> str:
    """A string from a result file, safe for matplotlib (no mathtext)."""
    return str(s).replace("$", r"\$")


def _short(s: str, limit: int = LABEL_CHARS) -> str:
    """Long module paths keep their end, the part that tells modules apart."""
    return s if len(s) <= limit else "…" + s[-(limit - 1):]


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def png(fig) -> bytes:
    """The figure as PNG, rendered once by Agg and encoded by Pillow (no metadata, reproducible).
    A chart has few colours: 256 of them (a palette, no dithering) look the same, encode in half
    the time and make a PNG less than half as big (report.html carries every one in base64)."""
    from PIL import Image
    fig.canvas.draw()
    w, h = fig.canvas.get_width_height(physical=True)
    img = Image.frombuffer("RGBA", (w, h), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
    img = img.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    img.save(buf, format="png", compress_level=3)
    return buf.getvalue()


def _finite(y: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(y), y, np.nan)


def draw_chart(ax, chart: Chart, fontsize: float = 9) -> None:
    """One chart of the report into an empty axes (PNG and PDF alike)."""
    info = chart.info
    if chart.kind == "study":
        _draw_study(ax, chart, fontsize)
    for i, line in enumerate(chart.lines if chart.kind != "study" else []):
        style = dict(linestyle="none", marker=".", markersize=2.5) if line.style == "points" \
            else dict(drawstyle=line.style, linewidth=0.9, marker="o" if line.x.size == 1 else "")
        if line.low is not None and len(chart.lines) == 1:
            ax.fill_between(line.x, _finite(line.low), _finite(line.high), color=BLUE, alpha=0.2,
                            linewidth=0, label="min to max in the step")
        ax.plot(line.x, _finite(line.y), color=f"C{i % 10}", label=text(_short(line.label)), **style)
    if chart.band is not None:
        b = chart.band
        ax.fill_between(b.x, _finite(b.min), _finite(b.max), color=BLUE, alpha=0.22, linewidth=0,
                        label="min to max")
        ax.plot(b.x, _finite(b.median), color=BLUE, linewidth=1.0, label="median")
        ax.plot(b.x, _finite(b.mean), color=ORANGE, linewidth=1.0, linestyle="--", label="mean")
    single = len(chart.bars) == 1
    for i, bars in enumerate(chart.bars):
        ax.stairs(bars.counts, bars.edges, fill=single, color=BLUE if single else f"C{i % 10}",
                  alpha=0.85 if single else 1.0, linewidth=1.0, label=text(_short(bars.label)))
    if chart.kind == "histogram":
        ax.set_xlabel(text(info.axis()), fontsize=fontsize)
        ax.set_ylabel("count", fontsize=fontsize)
    elif chart.kind == "study":
        ax.set_xlabel(text(chart.xlabel), fontsize=fontsize)
        ax.set_ylabel(text(_short(info.axis(), 50)), fontsize=fontsize)
    else:
        ax.set_xlabel("simulation time [s]", fontsize=fontsize)
        ax.set_ylabel(text(_short(info.axis(), 50)), fontsize=fontsize)
    if chart.enum:
        ax.set_yticks(list(chart.enum), [text(v) for v in chart.enum.values()])
    title = info.heading() + (f"  ·  {info.layer} layer" if info.layer else "")
    rows = _legend_rows(chart)
    ax.set_title(text(_short(title, 110)), fontsize=fontsize + 1.5, loc="left", pad=4 + rows * 1.5 * fontsize)
    ax.tick_params(labelsize=fontsize - 1)
    ax.grid(True, linewidth=0.3, color="0.8")
    if rows:  # between the title and the plot, never over the data
        ax.legend(fontsize=fontsize - 1.5, loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False,
                  ncol=_legend_columns(chart), borderaxespad=0.2, handlelength=1.6, columnspacing=1.2)
    ax.annotate(text(chart.note), xy=(0, 0), xycoords="axes fraction", xytext=(0, -3.4 * fontsize),
                textcoords="offset points", fontsize=fontsize - 2, color="0.35", va="top")


def _draw_study(ax, chart: Chart, fontsize: float) -> None:
    """Means with their 95% intervals: lines over a numeric variable, or bars per combination."""
    for i, line in enumerate(chart.lines):
        y = _finite(line.y)
        err = np.abs(np.vstack((y - _finite(line.low), _finite(line.high) - y)))
        err = np.where(np.isfinite(err), err, 0.0)  # no interval (one repetition): no bar
        if line.style == "bar":
            ax.bar(line.x, y, yerr=err, color=BLUE, alpha=0.85, capsize=3, label=text(_short(line.label)))
            ax.set_xticks(line.x, [text(_short(c, 30)) for c in chart.categories or []],
                          rotation=20 if len(line.x) > 4 else 0, ha="right" if len(line.x) > 4 else "center")
            continue
        ax.errorbar(line.x, y, yerr=err, color=f"C{i % 10}", marker="o", markersize=3.5, linewidth=1.0,
                    capsize=3, label=text(_short(line.label)))


def reuse(ax) -> None:
    """Empty an axes for the next chart without clearing it: its ticks, the costly part of a
    matplotlib draw, are kept and only moved."""
    from matplotlib.ticker import AutoLocator, FixedLocator
    for artist in [*ax.lines, *ax.collections, *ax.patches, *ax.texts]:
        artist.remove()
    ax.containers.clear()  # errorbar and bar groups of a study chart
    if ax.legend_ is not None:
        ax.legend_.remove()
    ax.yaxis.set_major_locator(AutoLocator())
    if isinstance(ax.xaxis.get_major_locator(), FixedLocator):  # a study bar chart's categories
        ax.xaxis.set_major_locator(AutoLocator())
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(_plain())
    ax.relim()
    ax.set_autoscale_on(True)


def _plain():
    """Tick labels as the numbers themselves: no offset (+3.276e4), exponents only past 1e7."""
    from matplotlib.ticker import ScalarFormatter
    f = ScalarFormatter(useOffset=False)
    f.set_powerlimits((-4, 7))
    return f


def _legend_columns(chart: Chart) -> int:
    """As many legend columns as labels of this length fit across the chart (at most four)."""
    longest = max([len(_short(x.label)) for x in [*chart.lines, *chart.bars]] + [12])
    return max(1, min(LEGEND_COLUMNS, LEGEND_CHARS // (longest + 6)))


def _legend_rows(chart: Chart) -> int:
    entries = len(chart.lines) + (1 if len(chart.lines) == 1 and chart.lines[0].low is not None else 0) \
        + (3 if chart.band is not None else 0) + len(chart.bars)
    return 0 if entries < 2 else -(-entries // _legend_columns(chart))


def _plot_area(chart: Chart, width: float, height: float) -> tuple:
    """Axes rectangle (figure fractions) leaving room for y tick labels (long state names), the
    title above and the x label and note below."""
    ticks = max((len(v) for v in (chart.enum or {}).values()), default=6)
    left = min(0.8 + 0.065 * ticks, 2.2) / width
    bottom, top = 0.95 / height, (0.4 + 0.17 * _legend_rows(chart)) / height
    return (left, bottom, 0.985 - left, 1 - top - bottom)


class ChartPainter:
    """PNGs of the report's charts, one reused figure."""

    def __init__(self):
        self.plt = _pyplot()
        self.fig = self.plt.figure(figsize=(10, 3.8), dpi=100)
        self.ax = self.fig.add_axes((0, 0, 1, 1))

    def png(self, chart: Chart) -> bytes:
        reuse(self.ax)
        self.ax.set_position(_plot_area(chart, width=10, height=3.8))
        draw_chart(self.ax, chart)
        return png(self.fig)

    def close(self) -> None:
        self.plt.close(self.fig)


class VectorPlotter:
    """One PNG per vector (graphs: "vector"): one figure and one line reused for every vector,
    only data and labels change, which is several times faster than a figure per vector."""

    def __init__(self):
        self.plt = _pyplot()
        self.fig, self.ax = self.plt.subplots(figsize=(10, 4), dpi=90)
        self.fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.13)
        (self.line,) = self.ax.plot([], [], linewidth=0.7, color=BLUE)
        self.ax.set_xlabel("simulation time [s]")
        self.ax.grid(True, linewidth=0.3, color="0.8")
        for axis in (self.ax.xaxis, self.ax.yaxis):
            axis.set_major_formatter(_plain())
        self.note = self.ax.text(0.995, 0.01, "", transform=self.ax.transAxes, ha="right",
                                 va="bottom", fontsize=7, color="0.4")

    def png(self, vec: dict, xs: np.ndarray, ys: np.ndarray, reduced: bool, axis: str) -> bytes:
        """vec: module, name, count and attrs; xs, ys, reduced: its Envelope's points."""
        ax, line = self.ax, self.line
        line.set_data(xs, _finite(ys))
        style = drawstyle(vec["attrs"], reduced)
        if style == "points" or xs.size == 1:  # a single sample is a point, whatever the mode
            line.set(drawstyle="default", linestyle="none", marker=".", markersize=2 if xs.size > 1 else 6)
        else:
            line.set(drawstyle=style, linestyle="-", marker="")
        ax.relim()
        ax.set_autoscale_on(True)  # a single-time vector before may have fixed the limits
        ax.autoscale_view()
        if xs.size and xs[0] == xs[-1]:
            ax.set_xlim(xs[0] - 0.5, xs[0] + 0.5)
        ax.set_title(text(_short(f"{vec['module']}  {vec['name']}", 110)), fontsize=10)
        ax.set_ylabel(text(_short(axis, 50)))
        self.note.set_text(f"{vec['count']} sample{'s' if vec['count'] != 1 else ''}"
                           + (", min/max per pixel column" if reduced else ""))
        return png(self.fig)

    def close(self) -> None:
        self.plt.close(self.fig)
