"""Input discovery: which files of a run's results folder the engine reads (found recursively)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import simrun
from .errors import ResultsError
from .resources import looks_like_time_output


@dataclass
class Inputs:
    """What a run's result folder holds. Cmdenv logs and `time -v` outputs are recognised by
    content, whatever they are called."""
    root: Path
    vec: list = field(default_factory=list)
    vci: list = field(default_factory=list)
    sca: list = field(default_factory=list)
    ini: list = field(default_factory=list)
    logs: list = field(default_factory=list)
    times: list = field(default_factory=list)

    def files(self) -> list[Path]:
        """Every file the engine reads (what collect must copy), sorted."""
        return sorted({*self.vec, *self.vci, *self.sca, *self.ini, *self.logs, *self.times})

    def vci_for(self, vec: Path) -> Path | None:
        p = vec.with_suffix(".vci")
        return p if p in self.vci else None

    def ini_file(self) -> Path | None:
        """The simulation's omnetpp.ini: that name first, then the shallowest .ini."""
        named = [p for p in self.ini if p.name == "omnetpp.ini"]
        pool = named or self.ini
        if not pool:
            return None
        return min(pool, key=lambda p: (len(p.relative_to(self.root).parts), str(p)))


def find_inputs(results_dir) -> Inputs:
    root = Path(results_dir)
    if not root.is_dir():
        raise ResultsError("results folder does not exist or is not a folder", path=root)
    inp = Inputs(root=root)
    by_suffix = {".vec": inp.vec, ".vci": inp.vci, ".sca": inp.sca, ".ini": inp.ini}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if not p.is_file():
                continue
            known = by_suffix.get(p.suffix.lower())
            if known is not None:
                known.append(p)
            elif simrun.looks_like_cmdenv_log(p):
                inp.logs.append(p)
            elif looks_like_time_output(p):
                inp.times.append(p)
    if not inp.vec and not inp.sca:
        raise ResultsError("no OMNeT++ result files (.vec or .sca) in this folder", path=root)
    return inp
