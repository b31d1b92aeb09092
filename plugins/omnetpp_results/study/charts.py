"""The study's charts: per varying result, its value against a numeric iteration variable, one
line per combination of the other variables (small multiples past MAX_LINES), each point the
mean over the repetitions with its 95% confidence interval; bars when no variable is numeric."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..charts import MAX_LINES, Chart, Line
from ..naming import NameInfo
from .compute import ConfigStudy, Result, Study
from .itervars import number

#: study charts in one report; the other varying results are listed (and all are in csv/study.csv)
MAX_CHARTS = 60


@dataclass
class StudyCharts:
    charts: list[Chart] = field(default_factory=list)
    uncharted: list[tuple[ConfigStudy, Result]] = field(default_factory=list)


def study_charts(study: Study, max_charts: int = MAX_CHARTS) -> StudyCharts:
    out = StudyCharts()
    shown = 0
    for cs in study.configs.values():
        xv = cs.x_variable()
        for res in cs.varying():
            if shown >= max_charts:
                out.uncharted.append((cs, res))
                continue
            shown += 1
            out.charts += _line_charts(cs, res, xv) if xv else [_bar_chart(cs, res)]
    return out


def _info(cs: ConfigStudy, res: Result) -> NameInfo:
    name = f"{cs.config}: {res.module} {res.name}" + (" (mean)" if res.field == "mean" else "")
    return NameInfo(name, (res.title or res.name) + (", mean" if res.field == "mean" else ""), res.unit)


def _reps(res: Result) -> str:
    ns = sorted({acc.n for acc in res.points.values()})
    n = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]} to {ns[-1]}"
    single = "; one repetition: no interval" if ns[0] == 1 else ""
    return f"each point the mean of {n} repetition{'s' if ns[-1] > 1 else ''} with its 95% confidence " \
           f"interval (Student's t){single}"


def _point(acc) -> tuple[float, float, float]:
    ci = acc.interval()
    return acc.mean, *(ci if ci else (math.nan, math.nan))


def _line_charts(cs: ConfigStudy, res: Result, xv: str) -> list[Chart]:
    xi = cs.variables.index(xv)
    others = [i for i in range(len(cs.variables)) if i != xi]
    groups: dict[tuple, list] = {}
    for combo in cs.combos:
        acc = res.points.get(combo)
        if acc is not None:
            groups.setdefault(tuple(combo[i] for i in others), []).append((number(combo[xi]), *_point(acc)))
    lines = []
    for key, pts in groups.items():
        pts.sort()
        a = np.array(pts, dtype=float).reshape(-1, 4)
        label = ", ".join(f"{cs.variables[i]}={v}" for i, v in zip(others, key)) or res.heading()
        lines.append(Line(label, a[:, 0], a[:, 1], "errorbar", a[:, 2], a[:, 3]))
    panels = [lines[i:i + MAX_LINES] for i in range(0, len(lines), MAX_LINES)]
    note = _reps(res) + (f"; one line per combination of {', '.join(cs.variables[i] for i in others)}"
                         if others else "")
    unit = _unit([c[xi] for c in cs.combos])
    charts = []
    for k, panel in enumerate(panels):
        more = f"; part {k + 1} of {len(panels)}" if len(panels) > 1 else ""
        charts.append(Chart("study", _info(cs, res), len(panel), note + more, lines=panel,
                            xlabel=xv + (f" [{unit}]" if unit else "")))
    return charts


def _bar_chart(cs: ConfigStudy, res: Result) -> Chart:
    combos = [c for c in cs.combos if c in res.points]
    pts = np.array([_point(res.points[c]) for c in combos], dtype=float).reshape(-1, 3)
    cats = [", ".join(f"{v}={x}" for v, x in zip(cs.variables, c)) for c in combos]
    line = Line(res.heading(), np.arange(len(combos), dtype=float), pts[:, 0], "bar", pts[:, 1], pts[:, 2])
    return Chart("study", _info(cs, res), 1, _reps(res), lines=[line], xlabel="variables", categories=cats)


def _unit(values: list[str]) -> str:
    """The unit all of a variable's values carry (`1.5s` -> s), or ""."""
    units = {v.strip().lstrip("+-0123456789.eE") for v in values}
    return units.pop() if len(units) == 1 else ""
