"""A run's iteration variables, whatever OMNeT++ version wrote it.

5.x and 6.x write `itervar NAME VALUE` lines (values may carry units: `1.5s`); 4.x writes none,
only run attributes: `iterationvars "$numHosts=10, $mean=5"` (the variables of the run),
`iterationvars2` (the same and `$repetition=1`), `repetition` and one attribute per variable.
SQLite files keep them in their runItervar table (read into the same dict as the lines).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..textfmt import plain

#: `$name=value` items of an iterationvars attribute; a value runs to the next `, $` or the end
_ITEM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)=(.*?)(?=, *\$[A-Za-z_]|$)")
#: a number with an optional unit, as itervar values are written (`10`, `1.5s`, `-2e-3mps`)
_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z%/]*)\s*$")


def variables(run) -> dict[str, str]:
    """name -> value as written, in the ini file's order: the itervar lines when the run has
    them, else the 4.x `iterationvars` attribute (4.x's one attribute per variable repeats it)."""
    text = _unquote(run.attrs.get("iterationvars", ""))
    from_attr = {k: _unquote(v.strip()) for k, v in _ITEM.findall(text) if k != "repetition"}
    if not run.itervars:
        return from_attr
    order = list(from_attr)  # the ini file's order; 6.x writes its itervar lines sorted by name
    keys = sorted(run.itervars, key=lambda k: order.index(k) if k in order else len(order))
    return {k: run.itervars[k] for k in keys if k != "repetition"}


def repetition(run) -> str:
    a = run.attrs
    if "repetition" in a:
        return a["repetition"]
    m = re.search(r"\$repetition=(\d+)", _unquote(a.get("iterationvars2", "")))
    return m.group(1) if m else run.itervars.get("repetition", "0")


def number(value: str) -> float | None:
    """The number of an itervar value (units dropped: `1.5s` is 1.5), None for text."""
    m = _NUMBER.match(value)
    return float(m.group(1)) if m else None


def _unquote(s: str) -> str:
    s = s.strip()
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == '"' else s


@dataclass(frozen=True)
class RunVars:
    """What the study needs of one run: its config, variables and repetition."""
    run_id: str
    config: str
    variables: dict
    repetition: str

    def label(self, with_config: bool = False) -> str:
        """`numHosts=10, iaMean=1, #0` (the config first when the archive has several)."""
        parts = [f"{k}={v}" for k, v in self.variables.items()] + [f"#{self.repetition}"]
        text = ", ".join(parts)
        return f"{self.config}: {text}" if with_config else text


def run_vars(runs) -> list[RunVars]:
    return [RunVars(r.run_id, r.attrs.get("configname", ""), variables(r), repetition(r)) for r in runs]


def names(rvs: list[RunVars]) -> list[str]:
    """Every variable name, in the order the runs first show them."""
    return list(dict.fromkeys(k for rv in rvs for k in rv.variables))


def columns(variables: list[str], fixed: list[str]) -> list[str]:
    """CSV headers of the variable columns: the name, or `$name` (OMNeT++'s own spelling of a
    variable) when a fixed column already has it (the Aloha study's `mean`)."""
    return [f"${v}" if v in fixed else v for v in variables]


def write_runs_csv(path, runs) -> None:
    """csv/runs.csv: run, configname, repetition and one column per iteration variable (empty
    where a run has no such variable); the other CSVs join to it by run."""
    import csv
    rvs = run_vars(runs)
    cols = names(rvs)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        fixed = ["run", "configname", "repetition"]
        w.writerow([plain(x) for x in [*fixed, *columns(cols, fixed)]])
        for rv in rvs:
            w.writerow([plain(x) for x in (rv.run_id, rv.config, rv.repetition,
                                           *(rv.variables.get(k, "") for k in cols))])
