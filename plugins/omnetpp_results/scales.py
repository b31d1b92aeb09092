"""The charts' axis scales: view limits around the data, "nice" ticks and their labels.

The rules are matplotlib's defaults, which the charts were drawn with before graphs.py drew them
itself: a 5% margin beyond the data (none past a baseline such as a histogram's 0 that the data
stands on), a range around a single value, ticks 1, 2 or 5 x 10^k apart, labels as the plain
numbers a reader would type (no offset such as +3.276e4) with an exponent only for the very large
or very small.
"""
from __future__ import annotations

import math

import numpy as np

MARGIN = 0.05
STEPS = (1.0, 2.0, 5.0, 10.0)
#: tick labels get an exponent at and past BIG, and below SMALL (largest tick in magnitude)
BIG, SMALL = 1e7, 1e-4
MINUS = "\u2212"  # a real minus sign, as matplotlib sets it


def limits(lo: float, hi: float, *, sticky: tuple = (), pad: float | None = None) -> tuple[float, float]:
    """View limits for data from lo to hi: MARGIN of the range on each side, but not past a
    sticky value the data reaches (bars from 0 start at 0). A single value (or a range too small
    for float steps) gets +-pad around it, default 5% of the value (0.5 at 0). Raises
    OverflowError when the range exceeds the largest double: such data cannot be placed."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0  # nothing finite to show: an empty unit frame
    span = hi - lo
    if span <= 1e-12 * max(abs(lo), abs(hi)):
        mid = (lo + hi) / 2
        d = pad if pad is not None else (0.05 * abs(mid) or 0.5)
        return mid - d, mid + d
    a, b = lo - MARGIN * span, hi + MARGIN * span
    if not (math.isfinite(span) and math.isfinite(a) and math.isfinite(b)):
        raise OverflowError(f"the values from {lo:.4g} to {hi:.4g} span more than the largest number")
    for s in sticky:
        if lo >= s > a:
            a = s
        if hi <= s < b:
            b = s
    return a, b


def ticks(lo: float, hi: float, intervals: int) -> np.ndarray:
    """The multiples of the smallest step of 1, 2 or 5 x 10^k that cuts lo..hi into at most
    `intervals` intervals, within lo..hi; a smaller step when that leaves fewer than two."""
    span = hi - lo
    if not span > 0:
        return np.array([lo])
    raw = span / max(intervals, 1)
    base = 10.0 ** math.floor(math.log10(raw))
    steps = [m * base * 10.0 ** k for k in (-1, 0) for m in STEPS[:3]] + [m * base for m in STEPS]
    i = next(i for i, s in enumerate(steps) if s >= raw * (1 - 1e-9))
    while True:
        step = steps[i]
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        if last > first or i == 0:
            return np.arange(first, last + 1) * step
        i -= 1


def step_of(t: np.ndarray) -> float:
    """The ticks' step, without the float noise of large ticks (1e10 + 0.02 - 1e10)."""
    return float(f"{(t[-1] - t[0]) / (t.size - 1):.3g}") if t.size > 1 else (abs(float(t[0])) or 1.0)


def labels(t: np.ndarray) -> list[str]:
    """Tick labels with the decimals the step needs: plain numbers, or a mantissa and the common
    exponent (2.5e8) when the largest tick is at least BIG or below SMALL."""
    if t.size == 0:
        return []
    step = step_of(t)
    top = float(np.max(np.abs(t)))
    exp = math.floor(math.log10(top)) if top > 0 else 0
    sci = top >= BIG or 0 < top < SMALL
    unit = 10.0 ** exp if sci else 1.0
    decimals = max(0, -math.floor(math.log10(step / unit) + 1e-9))
    out = []
    for v in t.tolist():
        if abs(v) < step * 1e-6:  # no -0.0 from float steps
            out.append("0" if sci else f"{0.0:.{decimals}f}")
            continue
        s = f"{v / unit:.{decimals}f}" + (f"e{exp}" if sci else "")
        out.append(s.replace("-", MINUS))
    return out
