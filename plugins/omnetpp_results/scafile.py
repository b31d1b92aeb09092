"""Text .sca reader (format versions 2 and 3): run header, scalar, par/param, statistic with its
field/attr/bin lines. Values are kept as written (full precision, OMNeT++'s nan/inf spelling)."""
from __future__ import annotations

from pathlib import Path

from .errors import ResultsError
from .store import Run, Sink
from .textfmt import parse_number, tokenize


class ScaReader:
    def __init__(self, path: Path, sink: Sink, select):
        self.path = Path(path)
        self.sink = sink
        self.select = select

    def err(self, msg, ln=None):
        return ResultsError(msg, path=self.path, line=ln)

    def read(self) -> dict:
        raw = self.path.read_bytes()
        if not raw:
            raise self.err("empty file")
        if not raw.endswith(b"\n"):
            raise self.err("file ends in the middle of a line: truncated?",
                           raw.count(b"\n") + 1)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise self.err("garbage bytes (not UTF-8 text)", raw[:e.start].count(b"\n") + 1) from None
        version = None
        run: Run | None = None
        target = None  # dict with "attrs" or a Run
        stat = None  # statistic being filled (fields, bins)
        counts = {"scalars": 0, "params": 0, "statistics": 0, "histograms": 0}
        runs = []
        mine = []
        pending = ""
        lines = text.split("\n")
        for ln, line in enumerate(lines, start=1):
            if line.endswith("\\") and not line.endswith("\\\\"):
                pending += line[:-1]
                continue
            if pending:
                line, pending = pending + line, ""
            toks = tokenize(line, self.path, ln)
            if not toks or toks[0].startswith("#"):
                continue
            kw = toks[0]
            if kw != "bin" and kw != "field" and kw != "attr":
                stat = None if kw != "statistic" else stat
            if kw == "version":
                if len(toks) != 2 or toks[1] not in ("2", "3"):
                    raise self.err(f"unsupported result file version {' '.join(toks[1:])!r} (2 and 3 are known)", ln)
                version = int(toks[1])
            elif kw == "run":
                if len(toks) != 2:
                    raise self.err("malformed run line", ln)
                run = self.sink.add_run(Run(toks[1]))
                runs.append(run.run_id)
                target, stat = run, None
            elif run is None:
                raise self.err(f"{kw[:40]!r} line before the run line"
                               if kw.isidentifier() else "not an OMNeT++ scalar file", ln)
            elif kw == "attr":
                if len(toks) != 3:
                    raise self.err("malformed attr line (expected: attr NAME VALUE)", ln)
                if isinstance(target, Run):
                    target.attrs[toks[1]] = toks[2]
                elif target is not None:
                    target["attrs"][toks[1]] = toks[2]
            elif kw == "itervar":
                if len(toks) != 3:
                    raise self.err("malformed itervar line", ln)
                run.itervars[toks[1]] = toks[2]
            elif kw == "config" or (kw == "param" and version == 2 and len(toks) == 3):
                if len(toks) != 3:
                    raise self.err(f"malformed {kw} line", ln)
                run.config.append((toks[1], toks[2]))
                target = run
            elif kw == "scalar":
                if len(toks) != 4:
                    raise self.err("malformed scalar line (expected: scalar MODULE NAME VALUE)", ln)
                parse_number(toks[3], self.path, ln)
                item = {"run": run.run_id, "module": toks[1], "name": toks[2], "value": toks[3],
                        "attrs": {}}
                if self.select(run, toks[1], toks[2]):
                    self.sink.scalars.append(item)
                counts["scalars"] += 1
                target = item
            elif kw in ("par", "param"):
                if len(toks) != 4:
                    raise self.err(f"malformed {kw} line (expected: {kw} MODULE NAME VALUE)", ln)
                item = {"run": run.run_id, "module": toks[1], "name": toks[2], "value": toks[3],
                        "attrs": {}}
                self.sink.params.append(item)
                counts["params"] += 1
                target = item
            elif kw == "statistic":
                if len(toks) != 3:
                    raise self.err("malformed statistic line (expected: statistic MODULE NAME)", ln)
                stat = {"run": run.run_id, "module": toks[1], "name": toks[2], "fields": {},
                        "attrs": {}, "bins": [], "line": ln}
                if self.select(run, toks[1], toks[2]):
                    self.sink.statistics.append(stat)
                mine.append(stat)
                counts["statistics"] += 1
                target = stat
            elif kw == "field":
                if stat is None or len(toks) != 3:
                    raise self.err("field line outside a statistic" if stat is None else "malformed field line", ln)
                parse_number(toks[2], self.path, ln)
                stat["fields"][toks[1]] = toks[2]
            elif kw == "bin":
                if stat is None or len(toks) != 3:
                    raise self.err("bin line outside a statistic" if stat is None else "malformed bin line", ln)
                parse_number(toks[1], self.path, ln)
                parse_number(toks[2], self.path, ln)
                if not stat["bins"]:
                    counts["histograms"] += 1
                stat["bins"].append([toks[1], toks[2]])
            elif kw == "vector" or kw[0].isdigit():
                raise self.err("vector data in a scalar file", ln)
            else:
                raise self.err(f"unexpected line starting with {kw[:40]!r} in a .sca file", ln)
        if version is None:
            raise self.err("no 'version' line: not an OMNeT++ scalar file", 1)
        if version == 3 and not raw.endswith(b"\n\n"):
            raise self.err("file does not end with the end-of-run blank line OMNeT++ writes: "
                           "truncated, or the simulation did not finish")
        for st in mine:
            self._check_hist(st)
            st.pop("line", None)
        return {"path": str(self.path), "format": "text", "bytes": len(raw), "version": version,
                "runs": runs, **counts}

    def _check_hist(self, st) -> None:
        """A histogram's bins must add up to its count (catches a file cut at a line end)."""
        if not st["bins"] or "count" not in st["fields"]:
            return
        total = sum(float(c) for _, c in st["bins"])
        n = float(st["fields"]["count"])
        if "weights" not in st["fields"] and total != n:
            raise self.err(f"histogram {st['module']} {st['name']}: bins add up to {total:g}, "
                           f"count is {n:g} (truncated?)", st.get("line"))
