"""How results are called in the archive: run labels, file stems, and the human side of a result
name (title, unit, OPS layer), shared by the CSV files, the charts, INFO.txt and the report."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .selection import Selection

_SAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


def safe(s: str) -> str:
    """A file-name-safe form of a name taken from a result file."""
    return _SAFE.sub("_", s).strip("_") or "x"


def unique_stems(wanted: list[str]) -> list[str]:
    """The same stems made unique (case-insensitively, for case-insensitive file systems) and bounded."""
    out, used = [], set()
    for stem in wanted:
        if len(stem) > 150:
            stem = stem[:130] + "_" + hashlib.sha1(stem.encode()).hexdigest()[:10]
        base, i = stem, 2
        while stem.lower() in used:
            stem = f"{base}_{i}"
            i += 1
        used.add(stem.lower())
        out.append(stem)
    return out


def run_labels(runs) -> dict:
    """run id -> short label ("config-runnumber" when the run says so), for series and file names."""
    out = {}
    for r in runs:
        a = r.attrs
        out[r.run_id] = f"{a['configname']}-{a['runnumber']}" if "configname" in a and "runnumber" in a \
            else r.run_id
    return out


def vector_stems(vectors: list, labels: dict) -> dict:
    """A unique, readable file stem per vector: module__name (run label first if several runs)."""
    several = len({v["run"] for v in vectors}) > 1
    wanted = []
    for v in vectors:
        stem = f"{safe(v['module'])}__{safe(v['name'])}"
        wanted.append(f"{safe(labels.get(v['run'], v['run']))}__{stem}" if several else stem)
    return {v["key"]: s for v, s in zip(vectors, unique_stems(wanted))}


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


def describe(name: str, items: list, sel: Selection) -> NameInfo:
    """items: the scalars/statistics/vectors of this name (their attrs give title and unit)."""
    ops = sel.ops_row(name)
    if ops is not None:
        return NameInfo(name, ops.name, ops.unit, ops.layer)
    title = next((i["attrs"]["title"] for i in items if i.get("attrs", {}).get("title")), "")
    unit = next((i["attrs"]["unit"] for i in items if i.get("attrs", {}).get("unit")), "")
    return NameInfo(name, title, unit)
