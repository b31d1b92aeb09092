"""A chart's picture drawn straight onto a Pillow image: a tenth of a matplotlib figure's cost.

Shapes are drawn at SCALE times the final size and box-filtered down, which is their
antialiasing (one reduce for the whole picture); text is set afterwards at the final size by
FreeType, crisper than scaled-down text, in the DejaVu Sans that report.pdf uses (pdfdoc.font_dir).
The PNG is mapped to a fixed palette of the chart's inks and their mixes with white: a palette PNG
encodes in half the time and is less than half as big (report.html carries every chart in base64).

Coordinates are final pixels (floats) from the top left. NaN breaks a line; lines are drawn as a
round brush moved along Pillow's one-pixel lines, several times faster than its wide lines.
"""
from __future__ import annotations

import functools
import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .pdfdoc import FONTS, font_dir

SCALE = 2
WHITE, BLACK = (255, 255, 255), (0, 0, 0)
NEAR_WHITE = 8  # palette entries this close to white are left out (_palette)
CHUNK = 100  # points of a fill's polygon
LIMIT = 1e5  # coordinates are clipped to +-LIMIT canvas pixels: Pillow takes C ints
_CONTROL = {c: " " for c in [*range(32), *range(127, 160)]}  # one line of text, whatever the file held


def clean(s) -> str:
    """Text from a result file as one line (a newline or tab in a name would break the layout)."""
    return str(s).translate(_CONTROL)


@functools.lru_cache(maxsize=32)
def font(px: float) -> ImageFont.FreeTypeFont:
    """DejaVu Sans px pixels high; the basic layout, the same on every machine (no libraqm)."""
    return ImageFont.truetype(str(font_dir() / FONTS["F1"][2]), px, layout_engine=ImageFont.Layout.BASIC)


@functools.lru_cache(maxsize=8192)
def text_width(s: str, px: float) -> float:
    """Cached: tick labels and names recur from chart to chart."""
    return font(px).getlength(s)


def fit(s: str, px: float, room: float) -> str:
    """s, or an ellipsis and as much of its end as fits in room pixels: module paths and axis
    labels tell themselves apart at their end (the submodule, the unit)."""
    if text_width(s, px) <= room:
        return s
    lo, hi = 0, len(s)  # the longest tail that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if text_width("…" + s[len(s) - mid:], px) <= room:
            lo = mid
        else:
            hi = mid - 1
    return "…" + s[len(s) - lo:]


@functools.lru_cache(maxsize=16)
def _brush(diameter: int) -> tuple:
    """Canvas pixel offsets covering a disc of this diameter (1: the pixel itself)."""
    if diameter <= 1:
        return ((0, 0),)
    r = diameter / 2
    c = (diameter - 1) / 2
    return tuple((dx - math.floor(c), dy - math.floor(c)) for dx in range(diameter) for dy in range(diameter)
                 if (dx - c) ** 2 + (dy - c) ** 2 < r * r - 0.3)


def runs(x: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The pieces of a polyline between its non-finite points."""
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.all():
        return [(x, y)]
    idx = np.flatnonzero(ok)
    return [(x[g], y[g]) for g in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1) if g.size]


def _runs_of(x: np.ndarray, *ys: np.ndarray) -> list:
    """(x, (y, ...)) of each run of points where x and every y are finite, two points or more."""
    ok = np.isfinite(x) & np.logical_and.reduce([np.isfinite(y) for y in ys])
    idx = np.flatnonzero(ok)
    groups = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1) if idx.size else []
    return [(x[g], tuple(y[g] for y in ys)) for g in groups if g.size > 1]


def dashes(x: np.ndarray, y: np.ndarray, on: float, off: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A polyline with the ends of its dashes put in: (x, y, k x 2 first and last index of each
    dash). Dashes are `on` pixels long every on + off pixels, measured along x when x never
    decreases (a time series: a noisy line keeps a dash per few pixels of time, not hundreds
    along its zigzag), else along the line."""
    if np.all(np.diff(x) >= 0):
        s = x - x[0]
    else:
        s = np.concatenate(([0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))))
    starts = np.arange(0.0, s[-1], on + off)
    ends = np.column_stack((starts, np.minimum(starts + on, s[-1]))).ravel()
    at = np.searchsorted(s, ends, "left")
    px, py = np.insert(x, at, np.interp(ends, s, x)), np.insert(y, at, np.interp(ends, s, y))
    return px, py, (at + np.arange(ends.size)).reshape(-1, 2)


def _canvas_points(x: np.ndarray, y: np.ndarray, thin: bool = True) -> np.ndarray:
    """Final pixel coordinates as canvas pixels (n x 2 ints); thin: repeated neighbours dropped."""
    xy = np.floor(np.clip(np.column_stack((x, y)) * SCALE, -LIMIT, LIMIT)).astype(np.int64)
    if thin and len(xy) > 2:
        keep = np.ones(len(xy), bool)
        keep[1:] = (np.diff(xy, axis=0) != 0).any(axis=1)
        keep[-1] = True
        xy = xy[keep]
    return xy


def mix(color: tuple, alpha: float) -> tuple:
    """color at alpha over white, opaque."""
    return tuple(round(255 - alpha * (255 - c)) for c in color)


@functools.lru_cache(maxsize=4)
def _palette(inks: tuple) -> Image.Image:
    """Each ink mixed with white in as many steps as 256 entries allow. A chart's pixels are its
    inks, their mixes with white (areas, antialiased edges on the white canvas) and a few edges
    where two inks meet, so mapping to this fixed palette keeps every colour the chart is made of
    and costs a sixth of an adaptive octree's (0.4 ms a chart instead of 2.6)."""
    steps = 256 // len(inks) - 1
    colors = dict.fromkeys(mix(ink, k / steps) for ink in inks for k in range(steps + 1))
    # Pillow maps a pixel through a cube of 4-level cells: an entry a shade off white would take
    # the white background's cell, and the page would turn grey
    colors = [WHITE] + [c for c in colors if min(c) < 255 - NEAR_WHITE]
    flat = [v for color in colors for v in color]
    img = Image.new("P", (1, 1))
    img.putpalette(flat + [0] * (768 - len(flat)))
    return img


@functools.lru_cache(maxsize=4096)
def _glyphs(s: str, px: float, anchor: str | None, angle: float) -> tuple[Image.Image, int, int]:
    """The text's coverage mask and where its top left goes from the anchor point (turned text:
    from its box's top left). Cached: tick labels and axis labels recur from chart to chart."""
    f = font(px)
    if not angle:
        left, top, right, bottom = f.getbbox(s, anchor=anchor)
        mask = Image.new("L", (max(right - left, 1), max(bottom - top, 1)), 0)
        ImageDraw.Draw(mask).text((-left, -top), s, font=f, fill=255, anchor=anchor)
        return mask, left, top
    ascent, descent = f.getmetrics()
    mask = Image.new("L", (math.ceil(f.getlength(s)) + 2, ascent + descent), 0)
    ImageDraw.Draw(mask).text((1, 0), s, font=f, fill=255, anchor="la")
    if angle == 90:
        return mask.transpose(Image.Transpose.ROTATE_90), 0, 0
    return mask.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True), 0, 0


class Canvas:
    """One picture of size (width, height) final pixels; png() finishes it. Areas (fills, bars)
    go first, onto the white canvas, in a colour already mixed with white (mix()): drawn opaque,
    they cost no blending, and nothing is under them to show through but the white."""

    def __init__(self, size: tuple[int, int]):
        self.size = size
        self.img = Image.new("RGB", (size[0] * SCALE, size[1] * SCALE), WHITE)
        self.draw = ImageDraw.Draw(self.img)
        self.texts: list[tuple] = []

    def line(self, x, y, color, width: float, dash: tuple | None = None) -> None:
        """A polyline width pixels wide; a run of one point between NaNs is not drawn (as in
        matplotlib: a lone sample of a line style is the caller's marker to draw). Up to three
        canvas pixels wide it is a brush moved along Pillow's thin line, cheaper than its wide
        line. Widths are rounded up: every line keeps at least one pixel of its full colour."""
        w = max(1, math.ceil(width * SCALE - 0.01))
        for rx, ry in runs(np.asarray(x, float), np.asarray(y, float)):
            if rx.size < 2:
                continue
            if dash:
                px, py, pieces = dashes(rx, ry, *dash)
                flat = _canvas_points(px, py, thin=False).ravel().tolist()
                for a, b in pieces.tolist():
                    self.draw.line(flat[2 * a:2 * b + 2], fill=color, width=w)
                continue
            xy = _canvas_points(rx, ry)
            if w > 3:
                self.draw.line(xy.ravel().tolist(), fill=color, width=w, joint="curve")
                continue
            for dx, dy in _brush(w):
                self.draw.line((xy + (dx, dy)).ravel().tolist(), fill=color)

    def dots(self, x, y, color, diameter: float) -> None:
        """Round markers; stamped with a brush when there are many."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        ok = np.isfinite(x) & np.isfinite(y)
        xy = np.floor(np.clip(np.column_stack((x[ok], y[ok])) * SCALE, -LIMIT, LIMIT)).astype(np.int64)
        d = max(1, round(diameter * SCALE))
        if len(xy) <= 40:
            for cx, cy in xy.tolist():
                self.draw.ellipse((cx - d / 2, cy - d / 2, cx + d / 2, cy + d / 2), fill=color)
            return
        xy = np.unique(xy, axis=0)
        for dx, dy in _brush(d):
            self.draw.point((xy + (dx, dy)).ravel().tolist(), fill=color)

    def rect(self, x0: float, y0: float, x1: float, y1: float, color) -> None:
        """The pixels from x0, y0 up to (not including) x1, y1."""
        x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
        box = [math.floor(x0 * SCALE), math.floor(y0 * SCALE), math.ceil(x1 * SCALE) - 1, math.ceil(y1 * SCALE) - 1]
        self.draw.rectangle([box[0], box[1], max(box[0], box[2]), max(box[1], box[3])], fill=color)

    def stroke(self, x0: float, y0: float, x1: float, y1: float, color, width: float) -> None:
        """A level or upright segment as line() would draw it, at the cost of one rectangle."""
        w = max(1, math.ceil(width * SCALE - 0.01))
        (a0, a1), (b0, b1) = sorted((x0, x1)), sorted((y0, y1))
        if a0 == a1:
            cx = math.floor(a0 * SCALE)
            box = [cx - (w - 1) // 2, math.floor(b0 * SCALE), cx + w // 2, math.floor(b1 * SCALE)]
        else:
            cy = math.floor(b0 * SCALE)
            box = [math.floor(a0 * SCALE), cy - (w - 1) // 2, math.floor(a1 * SCALE), cy + w // 2]
        self.draw.rectangle(box, fill=color)

    def between(self, x, y0, y1, color) -> None:
        """The area between two curves over x (final pixels), as matplotlib's fill_between: a
        NaN leaves out the segments on either side of its point. Drawn as polygons of at most
        CHUNK points (Pillow's fill costs edges x rows), each overlapping the next by one."""
        x = np.asarray(x, float)
        a, b = np.asarray(y0, float), np.asarray(y1, float)
        for rx, (ra, rb) in _runs_of(x, a, b):
            for i in range(0, rx.size - 1, CHUNK):
                k = slice(i, min(i + CHUNK + 1, rx.size))
                ring = np.concatenate((np.column_stack((rx[k], rb[k])), np.column_stack((rx[k], ra[k]))[::-1]))
                self.draw.polygon(_canvas_points(ring[:, 0], ring[:, 1], thin=False).ravel().tolist(), fill=color)

    def stairs(self, edges, heights, base: float, color) -> None:
        """Bars between increasing edges (final pixels) from base up to heights; a column that
        several narrow bins share shows the highest of them."""
        e = np.asarray(edges, float) * SCALE
        h = np.asarray(heights, float) * SCALE
        cols = np.arange(max(math.floor(e[0]), 0), min(math.ceil(e[-1]), self.img.width))
        if cols.size and h.size:
            first = np.clip(np.searchsorted(e, cols + 0.5, "right") - 1, 0, h.size - 1)
            top = np.fmin.reduceat(h, first)  # per column: its bins up to the next column's first
            self._columns(cols, top, np.full(cols.size, base * SCALE), color)

    def _columns(self, cols: np.ndarray, top: np.ndarray, bottom: np.ndarray, color) -> None:
        """Canvas columns filled from top to bottom (canvas pixels; NaN: left empty), each run of
        columns one zigzag line: down one column, up the next."""
        ok = np.isfinite(top) & np.isfinite(bottom)
        idx = np.flatnonzero(ok)
        for g in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1) if idx.size else []:
            ends = np.floor(np.clip(np.column_stack((top[g], bottom[g])), -LIMIT, LIMIT)).astype(np.int64)
            ends[1::2] = ends[1::2, ::-1]
            self.draw.line(np.column_stack((np.repeat(cols[g], 2), ends.ravel())).ravel().tolist(), fill=color)

    def text(self, x: float, y: float, s: str, px: float, color=BLACK, anchor: str = "la") -> None:
        """Text set after the shapes are scaled down; anchor as Pillow's (la: left, ascender)."""
        self.texts.append((x, y, s, px, color, anchor, 0, None))

    def turned(self, x: float, y: float, s: str, px: float, angle: float, at: tuple, color=BLACK) -> None:
        """Text turned angle degrees counterclockwise; the point `at` (fractions of the turned
        text's box: (1, 0) its top right) is put at (x, y)."""
        self.texts.append((x, y, s, px, color, None, angle, at))

    def png(self, inks: tuple) -> bytes:
        """inks: every colour drawn with (opaque, before mixing with white)."""
        img = self.img.reduce(SCALE)
        for x, y, s, px, color, anchor, angle, at in self.texts:
            if not s:
                continue
            mask, dx, dy = _glyphs(s, px, anchor, angle)
            if angle:
                dx, dy = -at[0] * mask.width, -at[1] * mask.height
            img.paste(color, (round(x + dx), round(y + dy)), mask)
        img = img.quantize(palette=_palette(inks), dither=Image.Dither.NONE)
        buf = io.BytesIO()
        img.save(buf, format="png", compress_level=3)
        return buf.getvalue()
