"""Per result name, across modules: how many, the mean, the extremes and who holds them.

The same figures as csv/scalars.csv, csv/statistics.csv and csv/vectors.csv, folded by name for
INFO.txt and the report: scalars by their value; statistics and vectors pooled over their
samples (count-weighted mean, smallest min, largest max).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import groupby

from .naming import NameInfo, describe
from .record import Record
from .selection import Selection


@dataclass
class NameRow(Record):
    name: str
    title: str
    unit: str
    layer: str
    modules: int  # (run, module) pairs recording this name
    values: int  # of them with a value: a number (scalars), at least one sample (statistics, vectors)
    samples: int | None  # statistics and vectors: samples over all modules
    mean: float | None
    min: float | None
    min_at: str
    max: float | None
    max_at: str

    def info(self) -> NameInfo:
        return NameInfo(self.name, self.title, self.unit, self.layer)


#: the columns of a per-name table after name, title, unit (and layer): (header, NameRow field)
COLUMNS = {
    "scalar": [("Modules", "values"), ("Mean", "mean"), ("Min", "min"), ("Min at", "min_at"),
               ("Max", "max"), ("Max at", "max_at")],
    "statistic": [("Modules", "values"), ("Samples", "samples"), ("Mean", "mean"), ("Min", "min"),
                  ("Min at", "min_at"), ("Max", "max"), ("Max at", "max_at")],
}
COLUMNS["vector"] = COLUMNS["statistic"]


def num(x) -> float:
    """A value as the readers keep it (text as written, or a number); nan when it is no number."""
    if x is None or x == "":
        return math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


class _Fold:
    """Running count-weighted mean and the extremes with where they are."""

    def __init__(self):
        self.n = self.values = 0
        self.samples = 0
        self.weighted = 0.0
        self.weight = 0.0
        self.lo = self.hi = None  # (value, where)

    def add(self, where: str, count: float, mean: float, lo: float, hi: float) -> None:
        self.n += 1
        if not count > 0:
            return
        self.values += 1
        self.samples += count
        if not math.isnan(mean):
            self.weighted += count * mean
            self.weight += count
        if not math.isnan(lo) and (self.lo is None or lo < self.lo[0]):
            self.lo = (lo, where)
        if not math.isnan(hi) and (self.hi is None or hi > self.hi[0]):
            self.hi = (hi, where)

    def row(self, info: NameInfo, with_samples: bool) -> NameRow:
        mean = self.weighted / self.weight if self.weight else None
        lo, lo_at = self.lo if self.lo else (None, "")
        hi, hi_at = self.hi if self.hi else (None, "")
        samples = int(self.samples) if with_samples else None
        return NameRow(info.name, info.title, info.unit, info.layer, self.n, self.values, samples,
                       mean, lo, lo_at, hi, hi_at)


def where(item: dict, labels: dict) -> str:
    """The module of an item, with its run's label when the archive holds several runs."""
    return f"{labels[item['run']]} {item['module']}" if len(labels) > 1 else item["module"]


def _by_name(items: list) -> list[tuple[str, list]]:
    ordered = sorted(items, key=lambda i: i["name"])
    return [(name, list(group)) for name, group in groupby(ordered, key=lambda i: i["name"])]


def _rows(items: list, labels: dict, sel: Selection, figures, with_samples: bool) -> list[NameRow]:
    """One row per name; figures(item) -> (count, mean, min, max) of one module's item."""
    rows = []
    for name, group in _by_name(items):
        fold = _Fold()
        for item in group:
            fold.add(where(item, labels), *figures(item))
        rows.append(fold.row(describe(name, group, sel), with_samples))
    return rows


def _scalar(s: dict) -> tuple:
    v = num(s["value"])
    return 0 if math.isnan(v) else 1, v, v, v


def scalar_rows(scalars: list, labels: dict, sel: Selection) -> list[NameRow]:
    return _rows(scalars, labels, sel, _scalar, with_samples=False)


def statistic_rows(statistics: list, labels: dict, sel: Selection) -> list[NameRow]:
    return _rows(statistics, labels, sel, lambda s: tuple(num(s["fields"].get(k)) for k in
                                                          ("count", "mean", "min", "max")), with_samples=True)


def vector_rows(vectors: list, labels: dict, sel: Selection) -> list[NameRow]:
    return _rows(vectors, labels, sel, lambda v: (v["count"], num(v["mean"]), num(v["min"]), num(v["max"])),
                 with_samples=True)
