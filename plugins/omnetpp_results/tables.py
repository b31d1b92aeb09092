"""Per result name, across modules: how many, the mean, the extremes and who holds them.

The same figures as csv/scalars.csv, csv/statistics.csv and csv/vectors.csv, folded by name for
INFO.txt and the report: scalars by their value; statistics and vectors pooled over their
samples (count-weighted mean, smallest min, largest max).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from .naming import NameInfo
from .record import Record


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


class Fold:
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


@dataclass(frozen=True)
class Kind:
    """What the tables and charts take from one kind of item: its figures (count, mean, min,
    max) and whether it is drawn (a vector with data, a statistic with bins)."""
    name: str  # scalar | statistic | vector
    figures: Callable[[dict], tuple]
    drawn: Callable[[dict], bool]


def _scalar(s: dict) -> tuple:
    v = num(s["value"])
    return 0 if math.isnan(v) else 1, v, v, v


SCALAR = Kind("scalar", _scalar, lambda s: False)
STATISTIC = Kind("statistic", lambda s: tuple(num(s["fields"].get(k)) for k in ("count", "mean", "min", "max")),
                 lambda s: bool(s["bins"]))
VECTOR = Kind("vector", lambda v: (v["count"], num(v["mean"]), num(v["min"]), num(v["max"])),
              lambda v: bool(v["count"]))
