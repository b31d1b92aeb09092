"""Resampling of a vector on a fixed grid: the value held at every multiple of the precision.

This is the old platform's "same" accumulation: at grid time g = k * precision (k = 1, 2, ...)
the value is the last sample with time <= g (for several samples at one time, the last one
written); grid points before the first sample have no value. The grid ends at the first grid
point at or after the last sample. Works piece by piece, so a vector of any length streams
through in bounded memory.
"""
from __future__ import annotations

import math
from typing import Iterable, Iterator

import numpy as np

#: refuse grids that would produce absurd files (e.g. precision 1e-9 on an hour of simulation):
#: per vector, and over all vectors of a run (csv/vectors/ and the long-format csv hold every point)
MAX_POINTS = 10_000_000
MAX_POINTS_TOTAL = 20_000_000


def _points(span: float, p: float) -> float:
    """span / p, refused before any integer loop when it cannot be a sane grid (inf, nan, huge)."""
    q = span / p if span > 0 else 0.0
    if not (math.isfinite(q) and q <= MAX_POINTS):
        raise ValueError(f"precision {p:g} s over a span of {span:g} s would give {q:.3g} points "
                         f"(at most {MAX_POINTS:,} per vector): choose a coarser summarizing_precision")
    return q


def count_below(x: float, p: float) -> int:
    """Number of grid points k >= 1 with k * p < x (the same float products as the grid)."""
    if not x > p:  # also handles nan
        return 0
    k = int(math.ceil(_points(x, p)))
    while k > 0 and k * p >= x:
        k -= 1
    while (k + 1) * p < x:
        k += 1
    return k


def grid_size(last_time: float, p: float) -> int:
    """Index K of the first grid point at or after last_time (at least 1)."""
    k = max(1, int(math.ceil(_points(last_time, p))))
    while k > 1 and (k - 1) * p >= last_time:
        k -= 1
    while k * p < last_time:
        k += 1
    return k


def check_total(precision: float, last_times) -> int:
    """Grid points of a whole run, refused past MAX_POINTS_TOTAL before anything is written."""
    p = _precision(precision)
    spans = list(last_times)
    total = sum(grid_size(t, p) for t in spans)
    if total > MAX_POINTS_TOTAL:
        raise ValueError(f"precision {p:g} s over {len(spans)} vectors spanning up to {max(spans):g} s "
                         f"would give {total:,} points (at most {MAX_POINTS_TOTAL:,} per run): "
                         "choose a coarser summarizing_precision or fewer statistics")
    return total


def _precision(precision) -> float:
    p = float(precision)
    if not (p > 0 and math.isfinite(p)):
        raise ValueError(f"precision must be a positive number of seconds, not {precision!r}")
    return p


def _grid(precision, last_time) -> tuple[float, int]:
    p = _precision(precision)
    return p, grid_size(last_time, p)


def resample(pieces: Iterable[tuple[np.ndarray, np.ndarray]], precision: float,
             last_time: float) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (grid times, values, has_value) in order; pieces are (times, values), time-sorted."""
    p, K = _grid(precision, last_time)
    k = 1  # next grid index to emit
    held = None

    def emit_held(upto: int):
        nonlocal k
        if upto < k:
            return None
        ks = np.arange(k, upto + 1, dtype=np.float64)
        k = upto + 1
        if held is None:
            return ks * p, np.full(ks.size, np.nan), np.zeros(ks.size, bool)
        return ks * p, np.full(ks.size, held), np.ones(ks.size, bool)

    for t, v in pieces:
        if t.size == 0:
            continue
        out = emit_held(min(count_below(float(t[0]), p), K))
        if out is not None:
            yield out
        # grid points in [t[0], t[-1]): looked up inside this piece
        upto = min(count_below(float(t[-1]), p), K)
        if upto >= k:
            g = np.arange(k, upto + 1, dtype=np.float64) * p
            idx = np.searchsorted(t, g, side="right") - 1
            k = upto + 1
            yield g, v[idx], np.ones(g.size, bool)
        held = float(v[-1])
        if k > K:
            return
    out = emit_held(K)
    if out is not None:
        yield out


def resample_direct(times, values, precision, last_time):
    """The definition, point by point (for tests)."""
    K = grid_size(last_time, precision)
    out = []
    for k in range(1, K + 1):
        g = k * precision
        val = None
        for t, v in zip(times, values):
            if t <= g:
                val = v
            else:
                break
        out.append((g, val))
    return out
