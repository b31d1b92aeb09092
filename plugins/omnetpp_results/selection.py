"""Which results to summarize and plot: "all", the "ops" preset, or glob patterns on names."""
from __future__ import annotations

import csv
import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ResultsError

PRESETS = ("all", "ops")
OPS_FILE = Path(__file__).with_name("data") / "ops_statistics.csv"
_GLOB = set("*?[")


@dataclass(frozen=True)
class OpsStatistic:
    name: str
    layer: str
    unit: str
    type: str  # int | float
    field: str  # scalar recording mode, e.g. last, mean
    variable: str  # @statistic name, e.g. appTotalDataBytesReceived
    networks: tuple


def load_ops(path: Path | None = None) -> list[OpsStatistic]:
    """The OPS statistic list; a user may replace the file (or set OMNETPP_RESULTS_OPS_STATISTICS)."""
    path = Path(path or os.environ.get("OMNETPP_RESULTS_OPS_STATISTICS") or OPS_FILE)
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(line for line in f if not line.startswith("#"))]
    except OSError as e:
        raise ResultsError(f"cannot read the ops statistic list ({e.strerror})", path=path) from None
    if not rows or rows[0][:7] != ["name", "layer", "unit", "type", "field", "variable", "networks"]:
        raise ResultsError("ops statistic list must start with the header "
                           "name,layer,unit,type,field,variable,networks", path=path)
    out = []
    for i, r in enumerate(rows[1:], start=2):
        if not r or not any(r):
            continue
        if len(r) < 7 or r[3] not in ("int", "float") or not r[4] or not r[5]:
            raise ResultsError(f"bad ops statistic row {r!r}", path=path)
        out.append(OpsStatistic(r[0], r[1], r[2], r[3], r[4], r[5], tuple(r[6].split())))
    return out


class Selection:
    """A predicate select(run, module, name) built from the `statistics` option."""

    def __init__(self, spec="all"):
        self.spec = spec
        self.kind = "all"
        self.patterns: list[str] = []
        self.ops: list[OpsStatistic] = []
        self._ops_rows: dict[str, OpsStatistic] = {}
        if spec is None or spec == "all" or spec == ["all"]:
            return
        if isinstance(spec, str):
            if spec == "ops":
                self._ops()
                return
            if not (_GLOB & set(spec)) and ":" not in spec and "." not in spec:
                raise ResultsError(f"unknown statistic preset {spec!r} (known: all, ops); "
                                   f"to select by name pass a list of glob patterns")
            spec = [spec]
        spec = list(spec)
        if spec == ["ops"]:
            self._ops()
            return
        if not spec or not all(isinstance(p, str) and p for p in spec):
            raise ResultsError(f"statistics must be 'all', 'ops' or a list of glob patterns, not {self.spec!r}")
        self.kind = "patterns"
        self.patterns = spec

    def _ops(self) -> None:
        self.kind = "ops"
        self.ops = load_ops()
        self._ops_names: dict[str, set] = {}
        for s in self.ops:
            self._ops_rows.setdefault(f"{s.variable}:{s.field}", s)
            self._ops_rows.setdefault(f"{s.variable}:vector", s)
            for net in s.networks:
                names = self._ops_names.setdefault(net, set())
                names.add(f"{s.variable}:{s.field}")
                names.add(f"{s.variable}:vector")

    def __call__(self, run, module: str, name: str) -> bool:
        if self.kind == "all":
            return True
        if self.kind == "patterns":
            base = name.split(":", 1)[0]
            return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(base, p)
                       for p in self.patterns)
        network = run.attrs.get("network", "") if run is not None else ""
        names = self._ops_names.get(network)
        return bool(names) and module == network and name in names

    def ops_row(self, name: str) -> OpsStatistic | None:
        """The OPS statistic a result name stands for (its human name, layer and unit), under the
        ops preset; None otherwise."""
        return self._ops_rows.get(name)

    def describe(self) -> str:
        if self.kind == "all":
            return "all"
        if self.kind == "ops":
            nets = sorted({n for s in self.ops for n in s.networks})
            return f"ops ({len(self.ops)} OPS statistics of {', '.join(nets)})"
        return "patterns " + " ".join(self.patterns)
