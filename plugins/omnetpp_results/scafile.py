"""Text .sca reader (format versions 2 and 3, and 4.0's files without a version line): run header,
scalar, par/param, statistic with its field/attr/bin lines. Values are kept as written (full
precision, OMNeT++'s nan/inf spelling; the Windows spellings become nan/inf).

Streamed line by line: items go to the sink's spill files as they are read, so memory does not
grow with the file. A last line cut off mid-way, a missing end-of-run blank line, or a histogram
whose bins do not add up to its count are reported as Problems and the rest is kept; anything
else malformed is a ResultsError naming the line.
"""
from __future__ import annotations

from pathlib import Path

from .errors import Problem
from .runheader import RunHeaderReader
from .store import MAX_BINS, Sink
from .textfmt import Lines, number_text, parse_number, snippet, tokenize


class ScaReader(RunHeaderReader):
    def __init__(self, path: Path, sink: Sink, select):
        super().__init__(Path(path), sink)
        self.select = select
        self.stat = None  # the statistic being filled (fields, bins), with bookkeeping
        self.problems: list[Problem] = []
        self.counts = {"scalars": 0, "params": 0, "statistics": 0, "histograms": 0}
        self.whole_runs = getattr(select, "whole_runs", False)  # select() looks at the run only

    def read(self) -> dict:
        size = self.path.stat().st_size
        if size == 0:
            raise self.err("empty file")
        last_blank = False
        with open(self.path, "rb") as f:
            lines = Lines(f, self.path, strict=True, fast=self.fast if self.whole_runs else None)
            for ln, line in lines:
                last_blank = not line.strip(" \t")
                self.line(ln, line)
        if not self.runs:
            raise self.err("no run line: not an OMNeT++ scalar file" + (", or cut off before it"
                                                                          if lines.cut_bytes else ""), 1)
        cut = lines.cut_bytes
        if cut:
            self.problems.append(Problem(str(self.path), lines.lines + 1, "the file ends in the middle of a "
                                         "line (cut off while written?): that last line was ignored", cut, False))
        self.close_stat(at_end=True)
        if not cut and self.version == 3 and not last_blank:
            self.problems.append(Problem(str(self.path), None, "no end-of-run blank line at the end: the "
                                         "simulation did not finish, or the file was cut at a line end", 0, False))
        for run in self.runs:
            self.sink.add_run(run)
        return {"path": str(self.path), "format": "text", "bytes": size, "version": self.version,
                "version_line": self.version_line, "runs": [r.run_id for r in self.runs],
                "problems": self.problems, **self.counts}

    def fast(self, buf: bytes, pos: int, end: int) -> tuple[int, int]:
        """Scalar items from pos on, read in bulk by the native reader (a large .sca is mostly
        these) into the sink's columns; returns where they end and their lines ((pos, 0): none
        taken, the lines are read one by one)."""
        if self.run is None or not buf.startswith(b"scalar ", pos):
            return pos, 0
        items = self.sink.scalars.take(buf, pos, end, self.run.run_id, self.select(self.run, "", ""))
        if items is None:
            return pos, 0
        self.close_stat()
        self.counts["scalars"] += len(items)
        self.target = None  # the next line starts an item or a run
        return pos + items.taken, items.lines

    def line(self, ln: int, line: str) -> None:
        toks = tokenize(line, self.path, ln)
        if not toks or toks[0].startswith("#"):
            return
        kw = toks[0]
        if kw not in ("bin", "field", "attr"):
            self.close_stat()
        if self.header_line(kw, toks, ln):
            pass
        elif self.run is None:
            raise self.err(f"{snippet(kw)} line before the run line"
                           if kw.isidentifier() else "not an OMNeT++ scalar file", ln)
        elif kw == "attr":
            self.attr_line(toks, ln)
        elif kw == "param" and self.version == 2 and len(toks) == 3:  # an ini entry in 4.x/5.x
            self.config_line(toks, ln)
            self.target = self.run
        elif kw == "scalar":
            if len(toks) != 4:
                raise self.err("malformed scalar line (expected: scalar MODULE NAME VALUE)", ln)
            self.target = self.item(self.sink.scalars, toks, number_text(toks[3], self.path, ln), "scalars")
        elif kw in ("par", "param"):
            if len(toks) != 4:
                raise self.err(f"malformed {kw} line (expected: {kw} MODULE NAME VALUE)", ln)
            self.target = self.item(self.sink.params, toks, toks[3], "params", always=True)
        elif kw == "statistic":
            if len(toks) != 3:
                raise self.err("malformed statistic line (expected: statistic MODULE NAME)", ln)
            stat = {"run": self.run.run_id, "module": toks[1], "name": toks[2], "fields": {},
                    "attrs": {}, "bins": []}
            self.counts["statistics"] += 1
            if self.select(self.run, toks[1], toks[2]):
                self.sink.statistics.add(stat)
            self.stat = {"row": stat, "line": ln, "total": 0.0}
            self.target = stat
        elif kw == "field":
            if self.stat is None or len(toks) != 3:
                raise self.err("field line outside a statistic" if self.stat is None else "malformed field line", ln)
            self.stat["row"]["fields"][toks[1]] = number_text(toks[2], self.path, ln)
        elif kw == "bin":
            self.bin(toks, ln)
        elif kw == "vector" or kw[:1].isdigit():
            raise self.err("vector data in a scalar file", ln)
        else:
            raise self.err(f"unexpected line starting with {snippet(kw)} in a .sca file", ln)

    def item(self, table, toks, value: str, count: str, always=False) -> dict:
        row = {"run": self.run.run_id, "module": toks[1], "name": toks[2], "value": value, "attrs": {}}
        if always or self.select(self.run, toks[1], toks[2]):
            table.add(row)
        self.counts[count] += 1
        return row

    def bin(self, toks, ln) -> None:
        st = self.stat
        if st is None or len(toks) != 3:
            raise self.err("bin line outside a statistic" if st is None else "malformed bin line", ln)
        bins = st["row"]["bins"]
        if not bins:
            self.counts["histograms"] += 1
        if len(bins) >= MAX_BINS:
            raise self.err(f"histogram with more than {MAX_BINS} bins (limit of the engine)", ln)
        st["total"] += parse_number(toks[2], self.path, ln)
        bins.append([number_text(toks[1], self.path, ln), number_text(toks[2], self.path, ln)])

    def close_stat(self, at_end: bool = False) -> None:
        """A statistic is complete: a histogram whose bins do not add up to its count (the sign of
        a file cut at a line end) is kept as written, with a Problem that says so."""
        st, self.stat = self.stat, None
        if st is None:
            return
        row = st["row"]
        fields = row["fields"]
        if not row["bins"] or "count" not in fields or "weights" in fields:
            return
        n = parse_number(fields["count"])
        if st["total"] != n:
            why = "its last bins are missing (file cut off?)" if at_end else "kept as written"
            self.problems.append(Problem(str(self.path), st["line"], f"histogram {row['module']} {row['name']}: "
                                         f"bins add up to {st['total']:g}, count is {n:g}: {why}", 0, False))
