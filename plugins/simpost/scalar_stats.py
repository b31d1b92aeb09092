"""scalar_stats: the result values a simulator keeps per simulation (OPS kept them as meta.scalar_stats).

Read from the archive's csv/scalars.csv and csv/statistics.csv, so they are exactly what the user
downloads. With the `ops` preset: one item per row of the OPS statistic list and run, with its human
name, layer, unit and type (value null when the run did not record it); otherwise every selected
scalar and every statistic field, capped.
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from omnetpp_results.selection import load_ops

MAX_ITEMS = 1000
STATISTIC_FIELDS = ("count", "mean", "stddev", "min", "max", "sum")
_INTEGER = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class ScalarStat:
    run: str
    module: str | None
    name: str
    kind: str  # scalar | statistic
    value: int | float | str | None
    field: str | None = None
    title: str | None = None
    layer: str | None = None
    unit: str | None = None
    type: str | None = None

    def as_dict(self) -> dict:
        optional = ("field", "title", "layer", "unit", "type")
        return {k: v for k, v in self.__dict__.items() if v is not None or k not in optional}


@dataclass(frozen=True)
class ScalarStats:
    preset: str  # ops | all | patterns
    count: int
    truncated: bool
    items: tuple[ScalarStat, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        return {"preset": self.preset, "count": self.count, "truncated": self.truncated,
                "items": [i.as_dict() for i in self.items]}


def value_of(text: str, type_: str | None = None) -> int | float | str | None:
    """A CSV cell as JSON: integers exact, nan/inf as text (JSON has no such numbers), junk as null."""
    text = (text or "").strip()
    if _INTEGER.match(text):
        return int(text)
    try:
        x = float(text)
    except ValueError:
        return None
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return int(x) if type_ == "int" and x.is_integer() else x


def preset_of(statistics) -> str:
    if statistics in ("ops", ["ops"]):
        return "ops"
    return "all" if statistics in (None, "all", ["all"]) else "patterns"


def scalar_stats(content_dir, statistics, runs: list[str], limit: int = MAX_ITEMS) -> ScalarStats:
    """scalar_stats of a run's archive content; `runs` are the run ids the stats step reported."""
    csv_dir = Path(content_dir) / "csv"
    preset = preset_of(statistics)
    if preset == "ops":
        items = _ops_items(csv_dir, runs)
        count = len(items)
    else:
        items, count = [], 0
        for item in _selected_items(csv_dir):
            count += 1
            if len(items) < limit:
                items.append(item)
    kept = items[:limit]
    return ScalarStats(preset, count, count > len(kept), tuple(kept))


def _rows(path: Path):
    if path.is_file():
        with open(path, newline="") as f:
            yield from csv.DictReader(f)


def _selected_items(csv_dir: Path):
    for row in _rows(csv_dir / "scalars.csv"):
        yield ScalarStat(row["run"], row["module"], row["name"], "scalar", value_of(row["value"]))
    for row in _rows(csv_dir / "statistics.csv"):
        for name in STATISTIC_FIELDS:
            yield ScalarStat(row["run"], row["module"], row["name"], "statistic", value_of(row[name]), field=name)


def _ops_items(csv_dir: Path, runs: list[str]) -> list[ScalarStat]:
    """Every preset row for every run; the ops selection kept only scalars on the network module."""
    preset = load_ops()
    wanted = {f"{s.variable}:{s.field}" for s in preset}
    recorded: dict[tuple[str, str], tuple[str, str]] = {}
    networks: dict[str, str] = {}
    for row in _rows(csv_dir / "scalars.csv"):
        if row["name"] in wanted:
            recorded[(row["run"], row["name"])] = (row["module"], row["value"])
            networks.setdefault(row["run"], row["module"])
    items = []
    for run in runs:
        network = networks.get(run)
        for s in preset:
            if network is not None and network not in s.networks:
                continue
            name = f"{s.variable}:{s.field}"
            module, text = recorded.get((run, name), (None, ""))
            items.append(ScalarStat(run, module, name, "scalar", value_of(text, s.type) if module else None,
                                    title=s.name, layer=s.layer, unit=s.unit, type=s.type))
    return items
