"""OMNeT++ SQLite result files (same .vec/.sca names, content starts with 'SQLite format 3').

Opened read-only and immutable (no journal, no lock files beside the results). Vector data is
streamed in rowid order in batches; time = simtimeRaw * 10^simtimeExp, computed so that the
double is the correctly rounded value of that decimal (the same double the text reader gives).
"""
from __future__ import annotations

import sqlite3
import urllib.parse
from pathlib import Path

import numpy as np

from .errors import ResultsError
from .store import Run, Sink
from .textfmt import fmt

MAGIC = b"SQLite format 3\x00"
BATCH = 500_000


def is_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == MAGIC
    except OSError:
        return False


def _connect(path: Path):
    uri = "file:" + urllib.parse.quote(str(Path(path).resolve())) + "?mode=ro&immutable=1"
    return sqlite3.connect(uri, uri=True)


def _num(x) -> str:
    """A REAL column as text: NULL is how OMNeT++ stores NaN."""
    return "nan" if x is None else fmt(float(x))


def simtimes(raw: np.ndarray, exp: int) -> np.ndarray:
    """raw * 10^exp as correctly rounded doubles."""
    raw = np.asarray(raw, dtype=np.int64)
    if exp >= 0:
        out = raw.astype(np.float64) * float(10 ** exp)
        big = np.abs(raw) >= (1 << 53)
        if big.any():
            out[big] = [float(int(r) * 10 ** exp) for r in raw[big]]
        return out
    div = 10 ** (-exp)
    out = raw.astype(np.float64) / float(div)
    big = np.abs(raw) >= (1 << 53)
    if div > 10 ** 22 or big.any():
        sel = big if div <= 10 ** 22 else np.ones(raw.size, bool)
        out[sel] = [int(r) / div for r in raw[sel]]  # int/int true division rounds correctly
    return out


class SqliteReader:
    def __init__(self, path: Path, sink: Sink, select, progress=None):
        self.path = Path(path)
        self.sink = sink
        self.select = select
        self.progress = progress

    def read(self) -> dict:
        try:
            con = _connect(self.path)
            tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
        except sqlite3.DatabaseError as e:
            raise ResultsError(f"corrupt SQLite result file ({e})", path=self.path) from None
        if "run" not in tables:
            raise ResultsError("SQLite file without a 'run' table: not an OMNeT++ result file",
                               path=self.path)
        try:
            return self._read(con, tables)
        except sqlite3.DatabaseError as e:
            raise ResultsError(f"corrupt SQLite result file ({e})", path=self.path) from None
        finally:
            con.close()

    def _read(self, con, tables) -> dict:
        runs = {}
        exps = {}
        for rid, name, exp in con.execute("select runId, runName, simtimeExp from run order by runId"):
            runs[rid] = self.sink.add_run(Run(name))
            exps[rid] = int(exp)
        for rid, k, v in con.execute("select runId, attrName, attrValue from runAttr order by rowid"):
            runs[rid].attrs.setdefault(k, v)
        if "runItervar" in tables:
            for rid, k, v in con.execute("select runId, itervarName, itervarValue from runItervar order by rowid"):
                runs[rid].itervars.setdefault(k, v)
        cfg = {}
        for rid, k, v in con.execute("select runId, configKey, configValue from runConfig order by runId, configOrder"):
            cfg.setdefault(rid, []).append((k, v))
        for rid, items in cfg.items():
            if not runs[rid].config:
                runs[rid].config = items
        counts = {"scalars": 0, "params": 0, "statistics": 0, "histograms": 0, "vectors": 0}
        if "scalar" in tables:
            attrs = self._attrs(con, "scalarAttr", "scalarId")
            for sid, rid, mod, name, val in con.execute(
                    "select scalarId, runId, moduleName, scalarName, scalarValue from scalar order by scalarId"):
                counts["scalars"] += 1
                if self.select(runs[rid], mod, name):
                    self.sink.scalars.append({"run": runs[rid].run_id, "module": mod, "name": name,
                                              "value": _num(val), "attrs": attrs.get(sid, {})})
        if "parameter" in tables:
            attrs = self._attrs(con, "paramAttr", "paramId")
            for pid, rid, mod, name, val in con.execute(
                    "select paramId, runId, moduleName, paramName, paramValue from parameter order by paramId"):
                counts["params"] += 1
                self.sink.params.append({"run": runs[rid].run_id, "module": mod, "name": name,
                                         "value": val, "attrs": attrs.get(pid, {})})
        if "statistic" in tables:
            attrs = self._attrs(con, "statisticAttr", "statId")
            bins = {}
            for sid, edge, val in con.execute("select statId, lowerEdge, binValue from histogramBin order by rowid"):
                bins.setdefault(sid, []).append([_num(edge), _num(val)])
            for row in con.execute(
                    "select statId, runId, moduleName, statName, isWeighted, statCount, statMean, statStddev,"
                    " statSum, statSqrsum, statMin, statMax, statWeights, statWeightedSum,"
                    " statSqrSumWeights, statWeightedSqrSum from statistic order by statId"):
                sid, rid, mod, name, weighted, n = row[:6]
                counts["statistics"] += 1
                if sid in bins:
                    counts["histograms"] += 1
                if not self.select(runs[rid], mod, name):
                    continue
                f = {"count": str(int(n)), "mean": _num(row[6]), "stddev": _num(row[7]),
                     "min": _num(row[10]), "max": _num(row[11])}
                if weighted:
                    f.update({"weights": _num(row[12]), "weightedSum": _num(row[13]),
                              "sqrSumWeights": _num(row[14]), "weightedSqrSum": _num(row[15])})
                else:
                    f.update({"sum": _num(row[8]), "sqrsum": _num(row[9])})
                self.sink.statistics.append({"run": runs[rid].run_id, "module": mod, "name": name,
                                             "fields": f, "attrs": attrs.get(sid, {}),
                                             "bins": bins.get(sid, [])})
        if "vector" in tables:
            attrs = self._attrs(con, "vectorAttr", "vectorId")
            keymap = {}
            for vid, rid, mod, name in con.execute(
                    "select vectorId, runId, moduleName, vectorName from vector order by vectorId"):
                counts["vectors"] += 1
                if self.select(runs[rid], mod, name):
                    key = self.sink.add_vector(runs[rid].run_id, mod, name, "ETV",
                                               attrs.get(vid, {}), self.path, vid)
                    keymap[vid] = (key, exps[rid])
            if keymap and "vectorData" in tables:
                self._data(con, keymap)
        return {"path": str(self.path), "format": "sqlite", "bytes": self.path.stat().st_size,
                "runs": [r.run_id for r in runs.values()], **counts}

    @staticmethod
    def _attrs(con, table, idcol) -> dict:
        out: dict = {}
        for i, k, v in con.execute(f"select {idcol}, attrName, attrValue from {table} order by rowid"):
            out.setdefault(i, {})[k] = v
        return out

    def _data(self, con, keymap) -> None:
        vids = np.array(sorted(keymap), dtype=np.int64)
        keys = np.array([keymap[v][0] for v in vids], dtype=np.int64)
        exps = np.array([keymap[v][1] for v in vids], dtype=np.int64)
        cur = con.execute("select vectorId, simtimeRaw, value from vectorData order by rowid")
        while True:
            rows = cur.fetchmany(BATCH)
            if not rows:
                break
            vid = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            raw = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
            val = np.fromiter((np.nan if r[2] is None else r[2] for r in rows), dtype=np.float64,
                              count=len(rows))
            pos = np.searchsorted(vids, vid)
            pos[pos >= vids.size] = 0
            keep = vids[pos] == vid
            if not keep.all():
                vid, raw, val, pos = vid[keep], raw[keep], val[keep], pos[keep]
            t = np.empty(raw.size)
            for e in np.unique(exps[pos]):
                m = exps[pos] == e
                t[m] = simtimes(raw[m], int(e))
            self.sink.add_samples(keys[pos], t, val)
