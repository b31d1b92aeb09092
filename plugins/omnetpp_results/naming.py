"""How results are called in the archive: run labels, file stems, and the human side of a result
name (title, unit, OPS layer), shared by the CSV files, the charts, INFO.txt and the report."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .selection import Selection
from .study.itervars import run_vars

_SAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


def safe(s: str) -> str:
    """A file-name-safe form of a name taken from a result file."""
    return _SAFE.sub("_", s).strip("_") or "x"


class Stems:
    """Stems made unique (case-insensitively, for case-insensitive file systems) and bounded,
    handed out one at a time. Only a hash of each stem is kept, so a million vectors cost a
    set of ints (a hash collision only adds a needless suffix)."""

    def __init__(self):
        self.used: set[int] = set()

    def __call__(self, stem: str) -> str:
        if len(stem) > 150:
            stem = stem[:130] + "_" + hashlib.sha1(stem.encode()).hexdigest()[:10]
        base, i = stem, 2
        while hash(stem.lower()) in self.used:
            stem = f"{base}_{i}"
            i += 1
        self.used.add(hash(stem.lower()))
        return stem


def unique_stems(wanted: list[str]) -> list[str]:
    stems = Stems()
    return [stems(w) for w in wanted]


def run_stems(runs) -> dict:
    """run id -> short label for file names ("config-runnumber" when the run says so)."""
    out = {}
    for r in runs:
        a = r.attrs
        out[r.run_id] = f"{a['configname']}-{a['runnumber']}" if "configname" in a and "runnumber" in a \
            else r.run_id
    return out


def run_labels(runs) -> dict:
    """run id -> how charts and tables name the run: by its iteration variables and repetition
    (`numHosts=10, iaMean=1, #0`, the config first when there are several), else as run_stems();
    a label two runs share gets the run's file label added."""
    stems = run_stems(runs)
    rvs = run_vars(runs)
    several = len({rv.config for rv in rvs}) > 1
    out = {rv.run_id: rv.label(several) if rv.variables else stems[rv.run_id] for rv in rvs}
    seen: dict[str, int] = {}
    for label in out.values():
        seen[label] = seen.get(label, 0) + 1
    return {rid: label if seen[label] == 1 else f"{label} ({stems[rid]})" for rid, label in out.items()}


def vector_stem(v: dict, stems: dict) -> str:
    """A readable file stem for a vector: module__name, the run's file label (run_stems) first if
    the archive has several runs (Stems makes it unique)."""
    stem = f"{safe(v['module'])}__{safe(v['name'])}"
    return f"{safe(stems.get(v['run'], v['run']))}__{stem}" if len(stems) > 1 else stem


@dataclass(frozen=True)
class NameInfo:
    """The human side of a result name: OPS name, layer and unit under the ops preset, else the
    `title` and `unit` attributes OMNeT++ recorded with it."""
    name: str
    title: str = ""
    unit: str = ""
    layer: str = ""

    def heading(self) -> str:
        return f"{self.title} ({self.name})" if self.title else self.name

    def axis(self, fallback: str = "value") -> str:
        label = self.title or fallback
        return f"{label} [{self.unit}]" if self.unit else label


def describe(name: str, title: str, unit: str, sel: Selection) -> NameInfo:
    """title and unit: the first recorded with the name (attrs of its items)."""
    ops = sel.ops_row(name)
    if ops is not None:
        return NameInfo(name, ops.name, ops.unit, ops.layer)
    return NameInfo(name, title, unit)
