"""One PNG and one PDF per vector, drawn from a bounded number of points.

A vector longer than a few pixel columns' worth of points is reduced, piece by piece, to
first/min/max/last per pixel column, so matplotlib never sees more than ~4 points per column
whatever the vector's length. One figure is reused for all vectors (creating figures is the
slow part of matplotlib).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

COLUMNS = 900  # about the pixel columns of the plot area (figure is 10 in x 100 dpi)


class Envelope:
    """Per-column first/min/max/last of a time-sorted series fed in pieces."""

    def __init__(self, t0: float, t1: float, columns: int = COLUMNS):
        self.t0, self.t1 = t0, t1
        self.w = columns
        span = t1 - t0
        self.scale = columns / span if span > 0 else 0.0
        self.first = np.full(columns, np.nan)
        self.last = np.full(columns, np.nan)
        self.min = np.full(columns, np.inf)
        self.max = np.full(columns, -np.inf)
        self.seen = np.zeros(columns, bool)
        self.raw_t: list = []
        self.raw_v: list = []
        self.raw_n = 0

    def add(self, t: np.ndarray, v: np.ndarray) -> None:
        if t.size == 0:
            return
        if self.raw_n is not None:
            if self.raw_n + t.size <= 4 * self.w:
                self.raw_t.append(t.copy())
                self.raw_v.append(v.copy())
                self.raw_n += t.size
            else:
                for rt, rv in zip(self.raw_t, self.raw_v):
                    self._fold(rt, rv)
                self.raw_t = self.raw_v = None
                self.raw_n = None
        if self.raw_n is None:
            self._fold(t, v)

    def _fold(self, t, v) -> None:
        col = np.clip(((t - self.t0) * self.scale).astype(np.int64), 0, self.w - 1)
        br = np.flatnonzero(col[1:] != col[:-1]) + 1
        starts = np.concatenate(([0], br))
        ends = np.concatenate((br, [t.size]))
        c = col[starts]
        newc = ~self.seen[c]
        self.first[c[newc]] = v[starts[newc]]
        self.last[c] = v[ends - 1]
        self.min[c] = np.fmin(self.min[c], np.fmin.reduceat(v, starts))
        self.max[c] = np.fmax(self.max[c], np.fmax.reduceat(v, starts))
        self.seen[c] = True

    def points(self):
        """(times, values, reduced?) ready to plot."""
        if self.raw_n is not None:
            if not self.raw_t:
                return np.zeros(0), np.zeros(0), False
            return np.concatenate(self.raw_t), np.concatenate(self.raw_v), False
        c = np.flatnonzero(self.seen)
        width = 1.0 / self.scale if self.scale else 0.0
        x0 = self.t0 + c * width
        xs = np.stack((x0, x0 + 0.25 * width, x0 + 0.5 * width, x0 + 0.99 * width), axis=1).ravel()
        ys = np.stack((self.first[c], self.min[c], self.max[c], self.last[c]), axis=1).ravel()
        return xs, ys, True


class Plotter:
    """One figure and one line reused for every vector: only data and labels change, which is
    several times faster than a new figure or ax.clear() per vector."""

    def __init__(self):
        import matplotlib
        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
        self.plt = plt
        self.fig, self.ax = plt.subplots(figsize=(10, 4), dpi=100)
        self.fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.13)
        (self.line,) = self.ax.plot([], [], linewidth=0.7, color="tab:blue")
        self.ax.set_xlabel("simulation time [s]")
        self.ax.grid(True, linewidth=0.3)
        self.note = self.ax.text(0.995, 0.01, "", transform=self.ax.transAxes, ha="right",
                                 va="bottom", fontsize=7, color="0.4")

    def plot(self, vec: dict, env: Envelope, stem: Path, formats=("png", "pdf")) -> list[str]:
        ax, line = self.ax, self.line
        xs, ys, reduced = env.points()
        attrs = vec.get("attrs", {})
        mode = attrs.get("interpolationmode", "sample-hold")
        line.set_data(xs, ys)
        if reduced or mode == "linear":
            line.set(drawstyle="default", linestyle="-", marker="")
        elif mode == "none":
            line.set(drawstyle="default", linestyle="none", marker=".", markersize=2)
        else:
            line.set(drawstyle="steps-pre" if mode == "backward-sample-hold" else "steps-post",
                     linestyle="-", marker="")
        ax.relim()
        ax.autoscale_view()
        if xs.size and xs[0] == xs[-1]:
            ax.set_xlim(xs[0] - 0.5, xs[0] + 0.5)
        unit = attrs.get("unit", "")
        title = f"{vec['module']}  {vec['name']}" + (f"  [{unit}]" if unit else "")
        if len(title) > 110:
            title = title[:107] + "..."
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit or attrs.get("title", "value"))
        self.note.set_text(f"{vec['count']} samples" + (", min/max per pixel column" if reduced else ""))
        out = []
        for fmt in formats:
            path = stem.parent / f"{stem.name}.{fmt}"
            self.fig.savefig(path, format=fmt, metadata=_metadata(fmt))
            out.append(path.name)
        return out

    def close(self):
        self.plt.close(self.fig)


def _metadata(fmt):
    """Reproducible files: no creation dates inside."""
    if fmt == "pdf":
        return {"CreationDate": None, "Producer": None}
    if fmt == "png":
        return {"Software": None}
    return None
