"""What the .vec and .sca readers share: the version line and the run header (run, attr, itervar,
config lines) each run of a text result file starts with."""
from __future__ import annotations

from .errors import ResultsError
from .store import MAX_ATTRS, Run, Sink
from .textfmt import snippet

#: what a run costs in memory besides its header text (charged against the sink's budget)
RUN_COST = 512


class RunHeaderReader:
    """Base of the text readers. Run headers are kept in memory, within the sink's budget; attr
    lines go to the run, or to the item before them (a dict with "attrs"), at most MAX_ATTRS."""

    def __init__(self, path, sink: Sink):
        self.path = path
        self.sink = sink
        self.version = None
        self.version_line = False  # OMNeT++ 4.0's files have none
        self.run: Run | None = None
        self.runs: list[Run] = []
        self.target = None  # what an attr line belongs to: a Run, an item's dict, or None

    def err(self, msg, ln=None):
        return ResultsError(msg, path=self.path, line=ln)

    def header_line(self, kw: str, toks: list, ln) -> bool:
        """version, run, itervar and config lines (True), or another kind (False)."""
        if kw == "version":
            if len(toks) != 2 or toks[1] not in ("2", "3"):
                raise self.err(f"unsupported result file version {snippet(' '.join(toks[1:]))} "
                               "(2 and 3 are known)", ln)
            self.version, self.version_line = int(toks[1]), True
        elif kw == "run":
            if len(toks) != 2:
                raise self.err("malformed run line", ln)
            if self.version is None:
                self.version = 2  # OMNeT++ 4.0 wrote no version line; its grammar is version 2's
            self.sink.charge(RUN_COST + len(toks[1]), self.path, ln)
            self.run = Run(toks[1])
            self.runs.append(self.run)
            self.target = self.run
        elif kw in ("itervar", "config"):
            if len(toks) != 3 or self.run is None:
                raise self.err(f"malformed {kw} line", ln)
            self.config_line(toks, ln, kw == "itervar")
        else:
            return False
        return True

    def config_line(self, toks: list, ln, itervar: bool = False) -> None:
        self.sink.charge(len(toks[1]) + len(toks[2]), self.path, ln)
        if itervar:
            self.run.itervars[toks[1]] = toks[2]
        else:
            self.run.config.append((toks[1], toks[2]))

    def attr_line(self, toks: list, ln) -> None:
        if len(toks) != 3:
            raise self.err("malformed attr line (expected: attr NAME VALUE)", ln)
        name, value = toks[1], toks[2]
        if isinstance(self.target, Run):
            self.sink.charge(len(name) + len(value), self.path, ln)
            self.target.attrs[name] = value
        elif self.target is not None:
            attrs = self.target["attrs"]
            if len(attrs) >= MAX_ATTRS and name not in attrs:
                raise self.err(f"more than {MAX_ATTRS} attr lines on one item", ln)
            attrs[name] = value
