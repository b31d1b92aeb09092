"""The charts' drawing (graphs.py on scales.py and raster.py): axis ticks a reader can use on any
range of values, and pictures that show what the data says, read back from the PNG's pixels: a
constant series as a level line mid-plot, a NaN gap left empty, a lone sample as a visible dot, a
band between its min and max, state names and study categories as labels."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from omnetpp_results import scales
from omnetpp_results.charts import Band, Chart, Line
from omnetpp_results.graphs import CHART, _layout, chart_plot, chart_png, vector_png
from omnetpp_results.naming import NameInfo
from omnetpp_results.pdfdoc import png_flate


def number(label: str) -> float:
    return float(label.replace(scales.MINUS, "-"))


@pytest.mark.parametrize("lo, hi", [(0, 1), (-95.5, -84.5), (32760.0, 32761.0), (0, 3.3e9), (0, 2e-9),
                                    (-1e-5, 3e-5), (1e6, 1e6 + 3), (0.95, 1.05), (-1e300, 1e300),
                                    (1e10, 1e10 + 0.1)])
def test_ticks_are_steps_of_1_2_or_5_and_their_labels_read_back_as_the_ticks(lo, hi):
    for intervals in (9, 5, 2):
        t = scales.ticks(lo, hi, intervals)
        step = scales.step_of(t)
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert 2 <= t.size <= intervals + 1 and min(abs(mantissa - m) for m in (1, 2, 5)) < 1e-9
        assert lo <= t[0] and t[-1] <= hi
        labels = scales.labels(t)
        assert len(set(labels)) == t.size  # no two ticks read the same
        assert all(math.isclose(number(s), v, rel_tol=1e-9, abs_tol=step * 1e-6) for s, v in zip(labels, t))


def test_labels_are_plain_numbers_with_an_exponent_only_for_the_very_large_or_small():
    assert scales.labels(scales.ticks(0, 1, 5)) == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    # no offset (+3.276e4) on a long run's time axis: the times themselves
    assert scales.labels(scales.ticks(32760, 32761, 5))[:2] == ["32760.0", "32760.2"]
    assert scales.labels(scales.ticks(0, 5e6, 5))[-1] == "5000000"
    assert scales.labels(scales.ticks(0, 3e9, 3)) == ["0", "1e9", "2e9", "3e9"]
    assert scales.labels(scales.ticks(0, 2e-9, 4)) == ["0", "0.5e\u22129", "1.0e\u22129", "1.5e\u22129", "2.0e\u22129"]
    assert scales.labels(scales.ticks(-95, -85, 5)) == ["\u221294", "\u221292", "\u221290", "\u221288", "\u221286"]


def test_limits_pad_single_values_and_keep_a_baseline_the_data_stands_on():
    assert scales.limits(0, 10) == (-0.5, 10.5)
    assert scales.limits(0, 10, sticky=(0.0,)) == (0.0, 10.5)  # histogram bars from 0
    assert scales.limits(-4, 10, sticky=(0.0,)) == (-4.7, 10.7)  # bars below 0 get their margin
    assert scales.limits(5400, 5400) == pytest.approx((5130, 5670))  # a constant series
    assert scales.limits(0, 0) == (-0.5, 0.5)
    assert scales.limits(7, 7, pad=0.5) == (6.5, 7.5)  # a vector of a single time
    assert scales.limits(math.nan, math.nan) == (0.0, 1.0)  # nothing finite: an empty frame
    with pytest.raises(OverflowError, match="largest number"):
        scales.limits(-1.7e308, 1.7e308)


# ------------------------------------------------------------------------------ pictures
def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def blue(img: np.ndarray) -> np.ndarray:
    """Where the picture shows a line's blue (BLUE, or a pixel it half covers)."""
    return img[..., 2] - img[..., 0] > 60


def band(img: np.ndarray) -> np.ndarray:
    """Where it shows the band's light blue (BLUE at 0.22 over white)."""
    return np.abs(img - np.array((210, 227, 240))).sum(axis=2) < 12


def vector_chart(x, y, style="default", **kw) -> Chart:
    return Chart("vector", NameInfo("q:vector", "queue length", "pk"), 1, "module Net.host[0]",
                 lines=[Line("Net.host[0]", np.asarray(x, float), np.asarray(y, float), style, **kw)])


def test_a_chart_is_a_palette_png_that_report_pdf_embeds_as_it_is():
    png = chart_png(vector_chart(np.arange(100), np.sin(np.arange(100) / 9)))
    assert Image.open(io.BytesIO(png)).mode == "P" and Image.open(io.BytesIO(png)).size == CHART.size
    assert png_flate(png) is not None  # its IDAT goes into report.pdf without a decode


def test_a_constant_series_is_a_level_line_in_the_middle_of_the_plot():
    chart = vector_chart(np.arange(50), np.full(50, 5400.0), "steps-post")
    f = _layout(chart_plot(chart), CHART)
    rows = np.flatnonzero(blue(pixels(chart_png(chart))).sum(axis=1) > 100)
    assert rows.size and rows.max() - rows.min() <= 2
    assert abs(rows.mean() - (f.top + f.bottom) / 2) <= 2


def test_a_nan_gap_is_left_empty_and_a_lone_sample_is_a_visible_dot():
    x = np.arange(101.0)
    y = np.where((x > 40) & (x < 60), np.nan, 1 + x / 100)
    chart = vector_chart(x, y)
    f = _layout(chart_plot(chart), CHART)
    cols = blue(pixels(chart_png(chart)))[f.top:f.bottom].any(axis=0)
    assert not cols[math.ceil(f.x(41)):math.floor(f.x(59))].any()
    assert cols[math.ceil(f.x(1)):math.floor(f.x(39))].all() and cols[math.ceil(f.x(61)):math.floor(f.x(99))].all()
    for style in ("steps-post", "points"):
        assert blue(pixels(chart_png(vector_chart([5.0], [1.0], style)))).sum() >= 20
    for times in ([5.0], [5.0, 5.0]):  # one sample, or two at one time: a line of no length
        meta = {"module": "Net.host[0]", "name": "q:vector", "count": len(times), "attrs": {}}
        png = vector_png(meta, np.array(times), np.zeros(len(times)), False, "q")
        assert blue(pixels(png)).sum() >= 12


def test_a_band_is_drawn_between_its_min_and_max_under_its_median():
    x = np.linspace(0, 10, 300)
    across = Band(x, np.full(300, 1.0), np.full(300, 2.0), np.full(300, 3.0), np.full(300, 2.1))
    chart = Chart("vector", NameInfo("q:vector", "queue length"), 20, "20 modules", band=across)
    f = _layout(chart_plot(chart), CHART)
    img = pixels(chart_png(chart))
    mid = round(f.x(5.0))
    rows = np.flatnonzero(band(img)[:, mid])
    assert abs(rows.min() - f.y(3.0)) <= 2 and abs(rows.max() - f.y(1.0)) <= 2
    assert blue(img)[round(f.y(2.0)) - 1:round(f.y(2.0)) + 2, mid].any()  # the median line over it


def test_state_names_label_the_y_axis_and_many_categories_stand_upright():
    states = {0.0: "IDLE", 1.0: "TRANSMIT", 2.0: "RECEIVE_A_VERY_LONG_STATE_NAME"}
    chart = vector_chart(np.arange(10), np.arange(10) % 3, "steps-post")
    chart.enum = states
    f = _layout(chart_plot(chart), CHART)
    assert f.y.labels == list(states.values()) and list(f.y.ticks) == [0, 1, 2]
    assert f.left > 200  # room for the longest name, nothing cut off
    n = 40
    study = Chart("study", NameInfo("Cfg: Net throughput", "throughput"), 1, "", xlabel="variables",
                  lines=[Line("throughput", np.arange(n, dtype=float), np.ones(n), "bar", np.zeros(n), np.full(n, 2.0))],
                  categories=[f"protocol=variant{i}" for i in range(n)])
    f = _layout(chart_plot(study), CHART)
    assert f.x.angle == 90 and f.x.labels == [f"protocol=variant{i}" for i in range(n)]
    assert f.bottom < CHART.size[1] - 100  # their room below the plot
    study.categories, study.lines[0].x = [f"v{i}" for i in range(150)], np.arange(150.0)
    for attr in ("y", "lo", "hi"):
        setattr(study.lines[0], "low" if attr == "lo" else "high" if attr == "hi" else attr, np.ones(150))
    labels = _layout(chart_plot(study), CHART).x.labels
    assert labels[:3] == ["v0", "", ""] and labels.count("") >= 100  # too close to name each: every k-th


def test_the_palette_keeps_the_inks_and_the_white_exactly():
    """Each line's colour, the black of the text and the white page come out as they were drawn,
    whatever the fixed palette's lookup does to the blends between them."""
    x = np.linspace(0, 10, 200)
    chart = Chart("vector", NameInfo("q:vector", "queue length", "pk"), 3, "3 modules",
                  lines=[Line(f"Net.host[{i}]", x, np.sin(x + i), "default") for i in range(3)])
    img = pixels(chart_png(chart))
    colours = {tuple(c) for c in img.reshape(-1, 3)}
    assert tuple(img[0, 0]) == (255, 255, 255) and (0, 0, 0) in colours
    assert {(31, 119, 180), (255, 127, 14), (44, 160, 44)} <= colours  # tab10's first three
