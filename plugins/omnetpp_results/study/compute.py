"""The study's numbers: per config, variable combination and result, the mean over the
repetitions with its 95% confidence interval from Student's t (none for one repetition).

Fed one scalar or statistic at a time while the tables are written (no second read of the
parse store); memory grows with results x combinations, never with repetitions (Welford's
running mean and sum of squares).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field

from ..textfmt import plain
from .itervars import RunVars, columns, names, number, run_vars
from .tdist import t_quantile

CONFIDENCE = 0.95


@dataclass
class Acc:
    """Running n, mean and sum of squared deviations (Welford) of one point's repetitions."""
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)

    def stddev(self) -> float | None:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else None

    def interval(self) -> tuple[float, float] | None:
        """The 95% confidence interval of the mean (Student's t, n-1 degrees of freedom)."""
        sd = self.stddev()
        if sd is None or not math.isfinite(sd):
            return None
        half = t_quantile(0.5 + CONFIDENCE / 2, self.n - 1) * sd / math.sqrt(self.n)
        return self.mean - half, self.mean + half


@dataclass
class Result:
    """One result (a module's scalar, or a statistic's mean) of one config: a point per
    variable combination."""
    module: str
    name: str
    field: str  # "value" (a scalar) or "mean" (of a statistic)
    title: str = ""
    unit: str = ""
    points: dict = field(default_factory=dict)  # combination (tuple of values) -> Acc
    lo: float = math.inf
    hi: float = -math.inf

    def add(self, combo: tuple, x: float) -> None:
        acc = self.points.get(combo)
        if acc is None:
            acc = self.points[combo] = Acc()
        acc.add(x)
        if x < self.lo and x != -math.inf:  # the finite extremes (NaN compares false)
            self.lo = x
        if x > self.hi and x != math.inf:
            self.hi = x

    def varies(self) -> bool:
        return self.hi > self.lo

    def heading(self) -> str:
        what = self.title or self.name
        return f"{what} ({self.module})" + (" mean" if self.field == "mean" else "")


@dataclass
class ConfigStudy:
    """A config whose runs differ in their iteration variables."""
    config: str
    variables: list[str]
    combos: list[tuple]  # in the order the runs show them
    results: dict = field(default_factory=dict)  # (module, name, field) -> Result

    def numeric(self) -> list[str]:
        """The variables whose every value is a number (units dropped)."""
        return [v for i, v in enumerate(self.variables) if all(number(c[i]) is not None for c in self.combos)]

    def x_variable(self) -> str | None:
        """The numeric variable with the most values (the first of those tied), or None."""
        nums = self.numeric()
        if not nums:
            return None
        return max(nums, key=lambda v: (len({c[self.variables.index(v)] for c in self.combos}),
                                        -self.variables.index(v)))

    def varying(self) -> list[Result]:
        """The results that differ between runs, other than those recording a variable's value."""
        return [r for r in self.results.values() if r.varies() and not self.echoes(r)]

    def echoes(self, res: Result) -> str | None:
        """The variable a result merely records (4.x Aloha writes `scalar . numHosts 10`), or None."""
        for i, v in enumerate(self.variables):
            if all(number(combo[i]) == acc.mean and not acc.m2 for combo, acc in res.points.items()):
                return v
        return None

    def recorded(self) -> list[Result]:
        return [r for r in self.results.values() if r.varies() and self.echoes(r)]

    def constant(self) -> list[Result]:
        return [r for r in self.results.values() if not r.varies()]


class Study:
    """Feed it every selected scalar and statistic; it keeps those of runs in a study config."""

    def __init__(self, runs):
        self.rvs = run_vars(runs)
        by_config: dict[str, list[RunVars]] = {}
        for rv in self.rvs:
            by_config.setdefault(rv.config, []).append(rv)
        self.configs: dict[str, ConfigStudy] = {}
        self.of_run: dict[str, tuple[ConfigStudy, tuple]] = {}
        for config, rvs in by_config.items():
            variables = names(rvs)
            combos = list(dict.fromkeys(tuple(rv.variables.get(v, "") for v in variables) for rv in rvs))
            if len(combos) < 2:
                continue
            cs = self.configs[config] = ConfigStudy(config, variables, combos)
            for rv in rvs:
                self.of_run[rv.run_id] = (cs, tuple(rv.variables.get(v, "") for v in variables))

    def __bool__(self) -> bool:
        return bool(self.configs)

    def scalar(self, item: dict) -> None:
        self._add(item, "value", item["value"])

    def statistic(self, item: dict) -> None:
        if "mean" in item["fields"]:
            self._add(item, "mean", item["fields"]["mean"])

    def add_scalars(self, runs: list[str], modules: list[str], names: list[str], values: list[float],
                    attrs: list[dict | None]) -> None:
        """scalar() of many scalars at once, in file order (the same steps: no dict per item, a
        run looked up once for its consecutive scalars)."""
        hit, last = None, None
        for run, module, name, x, a in zip(runs, modules, names, values, attrs):
            if run != last:
                hit, last = self.of_run.get(run), run
            if hit is not None:
                self._result(hit[0], module, name, "value", a).add(hit[1], x)

    def _add(self, item: dict, field_: str, value) -> None:
        hit = self.of_run.get(item["run"])
        if hit is None:
            return
        try:
            x = float(value)
        except (TypeError, ValueError):
            return
        self._result(hit[0], item["module"], item["name"], field_, item.get("attrs")).add(hit[1], x)

    @staticmethod
    def _result(cs: ConfigStudy, module: str, name: str, field_: str, attrs: dict | None) -> Result:
        key = (module, name, field_)
        res = cs.results.get(key)
        if res is None:
            attrs = attrs or {}
            res = cs.results[key] = Result(module, name, field_, attrs.get("title", ""), attrs.get("unit", ""))
        return res

    def variables(self) -> list[str]:
        return list(dict.fromkeys(v for cs in self.configs.values() for v in cs.variables))

    def write_csv(self, path) -> int:
        """csv/study.csv: one row per config, result and variable combination; rows written."""
        cols = self.variables()
        rows = 0
        with open(path, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            fixed = ["configname", "module", "name", "field", "n", "mean", "stddev", "ci95_low", "ci95_high"]
            w.writerow([plain(x) for x in [*fixed[:4], *columns(cols, fixed), *fixed[4:]]])
            for cs in self.configs.values():
                combos = {combo: [plain(dict(zip(cs.variables, combo)).get(v, "")) for v in cols]
                          for combo in cs.combos}  # each combination's cells once, not per result
                for res in cs.results.values():
                    head = [plain(x) for x in (cs.config, res.module, res.name, res.field)]
                    for combo, acc in res.points.items():
                        ci = acc.interval()
                        w.writerow([*head, *combos[combo], acc.n, repr(acc.mean),
                                    _num(acc.stddev()), _num(ci and ci[0]), _num(ci and ci[1])])
                        rows += 1
        return rows


def _num(x) -> str:
    return "" if x is None else repr(float(x))
