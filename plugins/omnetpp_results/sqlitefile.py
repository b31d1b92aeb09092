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
from .store import MAX_ATTRS, MAX_BINS, Run, Sink
from .textfmt import fmt

MAGIC = b"SQLite format 3\x00"
BATCH = 65_536  # vectorData rows per fetch (bounds memory)


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
        except sqlite3.DatabaseError as e:
            raise ResultsError(f"corrupt SQLite result file ({e})", path=self.path) from None
        try:
            tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
            if "run" not in tables:
                raise ResultsError("SQLite file without a 'run' table: not an OMNeT++ result file",
                                   path=self.path)
            return self._read(con, tables)
        except sqlite3.DatabaseError as e:
            raise ResultsError(f"corrupt SQLite result file ({e})", path=self.path) from None
        except (ValueError, TypeError, KeyError, OverflowError) as e:  # wrong types, bad UTF-8
            raise ResultsError(f"SQLite result file with values OMNeT++ does not write "
                               f"({e.__class__.__name__})", path=self.path) from None
        finally:
            con.close()

    def _read(self, con, tables) -> dict:
        runs = {}
        exps = {}
        for rid, name, exp in con.execute("select runId, runName, simtimeExp from run order by runId"):
            runs[rid] = Run(name)
            exps[rid] = int(exp)
        for rid, k, v in con.execute("select runId, attrName, attrValue from runAttr order by rowid"):
            self.sink.charge(len(k) + len(str(v)), self.path)
            runs[rid].attrs.setdefault(k, v)
        if "runItervar" in tables:
            for rid, k, v in con.execute("select runId, itervarName, itervarValue from runItervar order by rowid"):
                self.sink.charge(len(k) + len(str(v)), self.path)
                runs[rid].itervars.setdefault(k, v)
        for rid, k, v in con.execute("select runId, configKey, configValue from runConfig order by runId, configOrder"):
            self.sink.charge(len(k) + len(str(v)), self.path)
            runs[rid].config.append((k, v))
        counts = {"scalars": 0, "params": 0, "statistics": 0, "histograms": 0, "vectors": 0}
        if "scalar" in tables:
            for (sid, rid, mod, name, val), attrs in _joined(
                    con, "select scalarId, runId, moduleName, scalarName, scalarValue from scalar order by scalarId",
                    "select scalarId, attrName, attrValue from scalarAttr order by scalarId, rowid"):
                counts["scalars"] += 1
                if self.select(runs[rid], mod, name):
                    self.sink.scalars.add({"run": runs[rid].run_id, "module": mod, "name": name,
                                           "value": _num(val), "attrs": _capped(attrs, self.path)})
        if "parameter" in tables:
            for (pid, rid, mod, name, val), attrs in _joined(
                    con, "select paramId, runId, moduleName, paramName, paramValue from parameter order by paramId",
                    "select paramId, attrName, attrValue from paramAttr order by paramId, rowid"):
                counts["params"] += 1
                self.sink.params.add({"run": runs[rid].run_id, "module": mod, "name": name,
                                      "value": val, "attrs": _capped(attrs, self.path)})
        if "statistic" in tables:
            self._statistics(con, runs, counts)
        if "vector" in tables:
            vids, keys, kexp = [], [], []
            for (vid, rid, mod, name), attrs in _joined(
                    con, "select vectorId, runId, moduleName, vectorName from vector order by vectorId",
                    "select vectorId, attrName, attrValue from vectorAttr order by vectorId, rowid"):
                counts["vectors"] += 1
                if self.select(runs[rid], mod, name):
                    vids.append(vid)
                    keys.append(self.sink.add_vector(runs[rid].run_id, mod, name, "ETV",
                                                     _capped(attrs, self.path), self.path, vid))
                    kexp.append(exps[rid])
            if vids and "vectorData" in tables:
                self._data(con, np.array(vids, dtype=np.int64), np.array(keys, dtype=np.int64),
                           np.array(kexp, dtype=np.int64))
        for run in runs.values():
            self.sink.add_run(run)
        return {"path": str(self.path), "format": "sqlite", "bytes": self.path.stat().st_size,
                "runs": [r.run_id for r in runs.values()], "problems": [], **counts}

    def _statistics(self, con, runs, counts) -> None:
        bins = _grouped(con.execute("select statId, lowerEdge, binValue from histogramBin order by statId, rowid"))
        cur_bins = next(bins, None)
        for row, attrs in _joined(
                con, "select statId, runId, moduleName, statName, isWeighted, statCount, statMean, statStddev,"
                     " statSum, statSqrsum, statMin, statMax, statWeights, statWeightedSum,"
                     " statSqrSumWeights, statWeightedSqrSum from statistic order by statId",
                "select statId, attrName, attrValue from statisticAttr order by statId, rowid"):
            sid, rid, mod, name, weighted, n = row[:6]
            mine = []
            while cur_bins is not None and cur_bins[0] <= sid:
                if cur_bins[0] == sid:
                    mine = cur_bins[1]
                cur_bins = next(bins, None)
            counts["statistics"] += 1
            if mine:
                counts["histograms"] += 1
            if not self.select(runs[rid], mod, name):
                continue
            if len(mine) > MAX_BINS:
                raise ResultsError(f"histogram with more than {MAX_BINS} bins (limit of the engine)", path=self.path)
            f = {"count": str(int(n)), "mean": _num(row[6]), "stddev": _num(row[7]),
                 "min": _num(row[10]), "max": _num(row[11])}
            if weighted:
                f.update({"weights": _num(row[12]), "weightedSum": _num(row[13]),
                          "sqrSumWeights": _num(row[14]), "weightedSqrSum": _num(row[15])})
            else:
                f.update({"sum": _num(row[8]), "sqrsum": _num(row[9])})
            self.sink.statistics.add({"run": runs[rid].run_id, "module": mod, "name": name, "fields": f,
                                      "attrs": _capped(attrs, self.path),
                                      "bins": [[_num(e), _num(v)] for e, v in mine]})

    def _data(self, con, vids, keys, exps) -> None:
        """vids: selected vector ids (ascending), keys: their sink keys, exps: their runs' simtimeExp."""
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
            self.sink.add_samples(keys[pos], t, val, path=self.path)


def _grouped(cur):
    """(id, [(a, b), ...]) per id from a cursor of (id, a, b) rows ordered by id."""
    cur_id, items = None, []
    for i, a, b in cur:
        if i != cur_id:
            if cur_id is not None:
                yield cur_id, items
            cur_id, items = i, []
        items.append((a, b))
    if cur_id is not None:
        yield cur_id, items


def _joined(con, main_sql: str, attr_sql: str):
    """(row, attrs dict) per row of main_sql (ordered by its first column, an id), attrs from
    attr_sql (id, name, value rows ordered by id): a merge of two cursors, so neither table is
    held in memory."""
    try:
        attrs = _grouped(con.execute(attr_sql))
    except sqlite3.OperationalError:  # no such attr table
        attrs = iter(())
    cur = next(attrs, None)
    for row in con.execute(main_sql):
        mine = []
        while cur is not None and cur[0] <= row[0]:
            if cur[0] == row[0]:
                mine = cur[1]
            cur = next(attrs, None)
        yield row, mine


def _capped(items, path) -> dict:
    if len(items) > MAX_ATTRS:
        raise ResultsError(f"more than {MAX_ATTRS} attributes on one item (limit of the engine)", path=path)
    return dict(items)
