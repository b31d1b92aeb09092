"""The parse -> stats hand-over in parsed_dir, written and read in bounded memory.

parse() streams every result file once and leaves here:
  parsed.json       runs, files, problems, then the tables vectors (metadata + summaries),
                    scalars (those not in the columns), params, statistics, one JSON object
                    per line
  parsed.meta.json  the same without the tables, plus where each table starts in parsed.json
  scalars.cols, scalars.txt   the scalars in columns, in file order (scalarstore.py)
  series.bin        float64 (time, value) pairs, written chunk by chunk in file order
  segments.npy      int64 rows (vector key, first pair index, pair count), sorted by key
  segindex.npy      int64[vectors + 1]: vector k's rows are segments[segindex[k]:segindex[k + 1]]
While parsing, rows go to spill files as they are read (only the newest row of a table stays in
memory, because attr lines may still follow it); per-vector running summaries are numpy arrays
(72 bytes a vector). stats() then reads one row, or one vector's series, at a time.
"""
from __future__ import annotations

import json
import math
import os
import struct
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import fastparse, scalarstore
from .errors import ResultsError

FORMAT = 3
PAIR = 16  # bytes per (time, value) pair
SEG = 24  # bytes per segment row
_DOUBLE = struct.Struct("=d")
#: a vector's series is handed to stats in pieces of at most this many pairs
READ_PAIRS = 1 << 20
#: run headers (attr, itervar, config/param lines) are kept in memory: at most this many bytes
MAX_RUN_HEADER = 32 << 20
#: attr lines on one item (run headers aside), and bins of one histogram
MAX_ATTRS = 10_000
MAX_BINS = 100_000
#: when parse() finishes, segment rows are sorted into windows of SORT_ROWS rows, reading the
#: spill READ_ROWS rows at a time (bounds its memory: ~60 MB whatever their number)
SORT_ROWS = 1 << 20
READ_ROWS = 1 << 18
TABLES = ("vectors", "scalars", "params", "statistics")
_FILES = ("parsed.json", "parsed.meta.json", "series.bin", "segments.npy", "segindex.npy", *scalarstore.FILES)


class TimeOrderError(ResultsError):
    """A vector's time decreased (or was NaN); key says which vector (the reader then finds the line)."""

    def __init__(self, message: str, *, key: int, path=None):
        super().__init__(message, path=path)
        self.key = key


@dataclass
class Run:
    run_id: str
    attrs: dict = field(default_factory=dict)
    itervars: dict = field(default_factory=dict)
    config: list = field(default_factory=list)  # [(key, value)], order kept

    def merge(self, other: "Run") -> None:
        """The same run seen in the .sca and the .vec: keep the union."""
        for k, v in other.attrs.items():
            self.attrs.setdefault(k, v)
        for k, v in other.itervars.items():
            self.itervars.setdefault(k, v)
        if not self.config:
            self.config = list(other.config)

    def to_json(self) -> dict:
        return {"run_id": self.run_id, "attrs": self.attrs, "itervars": self.itervars,
                "config": [list(c) for c in self.config]}


class _Spill:
    """One table's rows as JSON lines in a spill file; the newest row stays open (in memory) until
    the next one, so attr lines can still be added to it."""

    def __init__(self, path: Path):
        self.path = path
        self.f = open(path, "w+", encoding="utf-8")
        self.pending: dict | None = None
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def add(self, row: dict) -> None:
        self.flush()
        self.pending = row
        self.n += 1

    def add_lines(self, text: str, n: int) -> None:
        """n rows already as JSON lines (no attr line can follow them)."""
        self.flush()
        self.f.write(text)
        self.n += n

    def flush(self) -> None:
        if self.pending is not None:
            self.f.write(json.dumps(self.pending) + "\n")
            self.pending = None

    def checkpoint(self):
        self.flush()
        return self.f.tell(), self.n

    def rollback(self, cp) -> None:
        self.pending = None
        self.f.seek(cp[0])
        self.f.truncate()
        self.n = cp[1]

    def rows(self):
        """Every row as a JSON line (the spill is read back once, at finish)."""
        self.flush()
        self.f.seek(0)
        yield from self.f

    def copy_rows(self, out, block: int = 8 << 20) -> None:
        """Every row into the binary file out as parsed.json has them: a comma after each line
        but the last (in blocks, not line by line: a .sca may hold millions of rows)."""
        self.flush()
        self.f.flush()
        with open(self.path, "rb") as f:
            data = f.read(block)
            while data:
                more = f.read(block)
                if more:
                    out.write(data.replace(b"\n", b",\n"))
                else:
                    out.write(data[:-1].replace(b"\n", b",\n") + b"\n")
                data = more

    def close(self, remove: bool) -> None:
        self.f.close()
        if remove:
            self.path.unlink(missing_ok=True)


class Rows:
    """A growable table of fixed-width records (a numpy structured dtype) in blocks of BLOCK rows.
    Appending never moves earlier rows: a doubling array would leave its freed copies as holes
    that the allocator keeps (a 1 M-vector file then cost twice its arrays)."""

    BLOCK = 1 << 16

    def __init__(self, dtype, fill):
        self.dtype = np.dtype(dtype)
        self.fill = np.array(fill, dtype=self.dtype)
        self.blocks: list[np.ndarray] = []
        self.n = 0

    def append(self) -> int:
        i = self.n
        if i == len(self.blocks) * self.BLOCK:
            self.blocks.append(np.full(self.BLOCK, self.fill, dtype=self.dtype))
        self.n += 1
        return i

    def truncate(self, n: int) -> None:
        del self.blocks[(n + self.BLOCK - 1) // self.BLOCK:]
        if n % self.BLOCK:
            self.blocks[-1][n % self.BLOCK:] = self.fill
        self.n = n

    def get(self, idx: np.ndarray) -> np.ndarray:
        """The records at rows idx (a copy)."""
        if not idx.size:
            return np.zeros(0, self.dtype)
        b = idx // self.BLOCK
        if b.min() == b.max():
            return self.blocks[int(b[0])][idx % self.BLOCK]
        out = np.empty(idx.size, dtype=self.dtype)
        for bi in np.unique(b).tolist():
            m = b == bi
            out[m] = self.blocks[bi][idx[m] % self.BLOCK]
        return out

    def put(self, idx: np.ndarray, records: np.ndarray) -> None:
        b = idx // self.BLOCK
        for bi in np.unique(b).tolist():
            m = b == bi
            self.blocks[bi][idx[m] % self.BLOCK] = records[m]

    def column(self, name: str) -> np.ndarray:
        """One field of every row, as one array."""
        if not self.n:
            return np.zeros(0, self.dtype[name])
        return np.concatenate([blk[name] for blk in self.blocks])[:self.n]

    def __getitem__(self, i: int):
        return self.blocks[i // self.BLOCK][i % self.BLOCK]


_ACC = np.dtype([("count", "i8"), ("nseg", "i8"), ("sum", "f8"), ("mean", "f8"), ("m2", "f8"),
                 ("min", "f8"), ("max", "f8"), ("t0", "f8"), ("t1", "f8"), ("vlast", "f8")])


class _Accs(Rows):
    """Running count/sum/min/max/mean/M2 and first/last time of every vector, 80 bytes a vector
    (Chan's pairwise update: exact enough for stddev even when mean >> stddev)."""

    def __init__(self):
        super().__init__(_ACC, (0, 0) + (np.nan,) * 8)

    def merge(self, k, n, s, mn, mx, m2, tf, tl, vl):
        """Add segments (key, count, sum, min, max, M2, first/last time, last value), in file
        order. Returns the index of a segment starting before its vector's previous end (time
        going backwards), or -1 once everything is merged (nothing changes in the first case)."""
        nseg = np.ones(k.size, dtype=np.int64)
        if k.size > 1:
            order = np.argsort(k, kind="stable")
            k, n, s, mn, mx, m2, tf, tl, vl = (a[order] for a in (k, n, s, mn, mx, m2, tf, tl, vl))
            same = k[1:] == k[:-1]
            bad = np.flatnonzero(same & ~(tf[1:] >= tl[:-1]))
            if bad.size:
                return int(order[bad[0] + 1])
            if same.any():  # several segments of one vector: combine them first
                starts = np.flatnonzero(np.r_[True, ~same])
                runs = np.diff(np.r_[starts, k.size])
                last = starts + runs - 1
                with np.errstate(invalid="ignore", over="ignore"):
                    cnt = np.add.reduceat(n, starts)
                    tot = np.add.reduceat(s, starts)
                    dev = s / n - np.repeat(tot / cnt, runs)
                    m2 = np.add.reduceat(m2 + n * dev * dev, starts)
                    mn, mx = np.fmin.reduceat(mn, starts), np.fmax.reduceat(mx, starts)
                k, n, s, tf, tl, vl, nseg = k[starts], cnt, tot, tf[starts], tl[last], vl[last], runs
                order = order[starts]
        else:
            order = np.zeros(k.size, dtype=np.int64)
        r = self.get(k)
        old = r["count"]
        bad = np.flatnonzero((old > 0) & ~(tf >= r["t1"]))
        if bad.size:
            return int(order[bad[0]])
        with np.errstate(invalid="ignore", over="ignore"):
            mean_b = s / n
            total = old + n
            d = mean_b - r["mean"]
            fresh = old == 0
            r["mean"] = np.where(fresh, mean_b, r["mean"] + d * n / np.maximum(total, 1))
            r["m2"] = np.where(fresh, m2, r["m2"] + m2 + d * d * old * n / np.maximum(total, 1))
            r["sum"] = np.where(fresh, s, r["sum"] + s)
        r["min"] = np.fmin(r["min"], mn)
        r["max"] = np.fmax(r["max"], mx)
        r["t0"] = np.where(fresh, tf, r["t0"])
        r["t1"], r["vlast"] = tl, vl
        r["count"] = total
        r["nseg"] += nseg
        self.put(k, r)
        return -1

    def summary(self, key: int) -> dict:
        """The summary fields of one vector, as parsed.json and stats() have them."""
        r = self[key]
        n = int(r["count"])
        if not n:
            return {"count": 0, "sum": None, "mean": None, "stddev": None, "min": None, "max": None,
                    "first_time": None, "last_time": None, "last_value": None}
        m2 = float(r["m2"])
        mn, mx = float(r["min"]), float(r["max"])
        return {"count": n, "sum": float(r["sum"]), "mean": float(r["mean"]),
                "stddev": math.sqrt(m2 / (n - 1)) if n > 1 else 0.0,
                # every sample NaN: no min and max (opp_scavetool prints them empty)
                "min": None if math.isnan(mn) else mn, "max": None if math.isnan(mx) else mx,
                "first_time": float(r["t0"]), "last_time": float(r["t1"]),
                "last_value": float(r["vlast"])}


class Sink:
    """Collects everything parse() finds; one instance per parse() call."""

    def __init__(self, parsed_dir: Path):
        self.dir = Path(parsed_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        for name in _FILES:
            (self.dir / name).unlink(missing_ok=True)
        self.series_path = self.dir / "series.bin"
        self._series = open(self.series_path, "wb")
        self._segs = open(self.dir / "segments.part", "w+b")
        self.pairs = 0
        self.runs: dict[str, Run] = {}
        self.accs = _Accs()
        self.vectors = _Spill(self.dir / "vectors.part")
        self.scalars = scalarstore.ScalarSpill(self.dir, _Spill(self.dir / "scalars.part"))
        self.params = _Spill(self.dir / "params.part")
        self.statistics = _Spill(self.dir / "statistics.part")
        self.files: list[dict] = []
        self.extra: dict = {}
        self.header_bytes = 0

    # -- runs and tables ---------------------------------------------------------------
    def add_run(self, run: Run) -> Run:
        have = self.runs.get(run.run_id)
        if have is None:
            self.runs[run.run_id] = run
            return run
        have.merge(run)
        return have

    def charge(self, nbytes: int, path=None, line=None) -> None:
        """Account run-header text kept in memory; refuse past MAX_RUN_HEADER."""
        self.header_bytes += nbytes
        if self.header_bytes > MAX_RUN_HEADER:
            raise ResultsError(f"more than {MAX_RUN_HEADER >> 20} MB of run attributes, itervars and "
                               "config lines: not read (limit of the engine)", path=path, line=line)

    def add_vector(self, run_id, module, name, columns, attrs, source, vector_id) -> int:
        key = self.accs.append()
        self.vectors.add({"key": key, "run": run_id, "module": module, "name": name,
                          "columns": columns, "attrs": attrs, "file": str(source),
                          "vector_id": vector_id, "stats_from": "data"})
        return key

    def vector_row(self, key: int) -> dict:
        """The newest vector's row (attr lines follow their vector line and fill its attrs)."""
        row = self.vectors.pending
        if row is None or row["key"] != key:
            raise ValueError("only the newest vector's row is open")
        return row

    # -- series ---------------------------------------------------------------------------
    def _time_error(self, key: int, t: float, path) -> TimeOrderError:
        what = "is NaN" if math.isnan(t) else f"goes backwards (t={t!r})"
        return TimeOrderError(f"time {what} in vector key {key}", key=key, path=path)

    def add_samples(self, keys: np.ndarray, t: np.ndarray, v: np.ndarray, pairs=None, path=None) -> None:
        """Append samples in file order; keys[i] is the vector key of sample i. pairs: the same
        (t, v) as one (n, 2) array when the caller has it (saves building it again). Raises
        TimeOrderError, with nothing added, if a vector's time decreases or is NaN."""
        n = keys.size
        if n == 0:
            return
        br = np.flatnonzero(keys[1:] != keys[:-1]) + 1
        if br.size > 64 and br.size * 32 > n:
            # fine-grained interleaving: group by vector so the segment table stays small
            order = np.argsort(keys, kind="stable")
            keys, t, v, pairs = keys[order], t[order], v[order], None
        res = fastparse.segment_stats(np.ascontiguousarray(keys, dtype=np.int64), t, v)
        if isinstance(res, int):
            raise self._time_error(int(keys[res]), float(t[res]), path)
        starts, s, mn, mx, m2 = res
        ends = np.append(starts[1:], n)
        seg_keys = keys[starts]
        bad = self.accs.merge(seg_keys, ends - starts, s, mn, mx, m2, t[starts], t[ends - 1], v[ends - 1])
        if bad >= 0:
            raise self._time_error(int(seg_keys[bad]), float(t[starts[bad]]), path)
        if pairs is None:
            pairs = np.empty((n, 2), dtype=np.float64)
            pairs[:, 0] = t
            pairs[:, 1] = v
        self._series.write(memoryview(np.ascontiguousarray(pairs)).cast("B"))
        rows = np.stack((seg_keys, starts + self.pairs, ends - starts), axis=1).astype(np.int64)
        self._segs.write(rows.tobytes())
        self.pairs += n

    # -- undo: a file found corrupt, or a .vci found lying half-way through ------------------
    def checkpoint(self):
        self._series.flush()
        return (self.pairs, self._segs.tell(), self.accs.n,
                *(getattr(self, t).checkpoint() for t in TABLES))

    def rollback(self, cp) -> None:
        """Back to the checkpoint. A file only ever adds samples to its own vectors (keys from
        the checkpoint's count on), so cutting the arrays and files back restores everything."""
        pairs, segs, nvec, *tables = cp
        self._series.flush()
        self._series.truncate(pairs * PAIR)
        self._series.seek(pairs * PAIR)
        self.pairs = pairs
        self._segs.truncate(segs)
        self._segs.seek(segs)
        self.accs.truncate(nvec)
        for t, c in zip(TABLES, tables):
            getattr(self, t).rollback(c)

    # -- finish -----------------------------------------------------------------------------
    def _sort_segments(self) -> None:
        """segments.part (file order) -> segments.npy sorted by key (stable) + segindex.npy, in
        passes of SORT_ROWS output rows, so memory stays bounded whatever their number."""
        nvec = self.accs.n
        index = np.zeros(nvec + 1, dtype=np.int64)
        np.cumsum(self.accs.column("nseg"), out=index[1:])
        total = int(index[-1])
        np.save(self.dir / "segindex.npy", index)
        header = _npy_header(total)
        with open(self.dir / "segments.npy", "wb") as out:
            out.write(header)
            for lo in range(0, max(total, 1), SORT_ROWS):
                hi = min(lo + SORT_ROWS, total)
                if hi <= lo:
                    break
                buf = np.empty((hi - lo, 3), dtype=np.int64)
                seen = np.zeros(nvec, dtype=np.int64)  # rows of each key before this piece
                self._segs.seek(0)
                while True:
                    raw = self._segs.read(READ_ROWS * SEG)
                    if not raw:
                        break
                    rows = np.frombuffer(raw, dtype=np.int64).reshape(-1, 3)
                    k = rows[:, 0]
                    order = np.argsort(k, kind="stable")
                    ks = k[order]
                    first = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
                    rank = np.arange(ks.size) - np.repeat(first, np.diff(np.r_[first, ks.size]))
                    dest = np.empty(k.size, dtype=np.int64)
                    dest[order] = index[ks] + seen[ks] + rank
                    np.add.at(seen, k, 1)
                    m = (dest >= lo) & (dest < hi)
                    buf[dest[m] - lo] = rows[m]
                out.write(buf.tobytes())

    def finish(self) -> None:
        self._series.close()
        self._sort_segments()
        meta = {"format": FORMAT, "runs": [r.to_json() for r in self.runs.values()],
                "files": self.files, **self.extra, "scalar_columns": self.scalars.finish()}
        tables = {}
        tmp = self.dir / "parsed.json.tmp"
        with open(tmp, "wb") as f:
            head = json.dumps(meta)  # json.dump() would use the slow pure-Python encoder
            f.write(head[:-1].encode() + b", ")
            for i, name in enumerate(TABLES):
                f.write(f'"{name}": [\n'.encode())
                table = self.scalars.json if name == "scalars" else getattr(self, name)
                tables[name] = [f.tell(), len(table)]
                if name == "vectors":
                    self._write_vectors(f)
                else:
                    table.copy_rows(f)
                f.write(b"]}\n" if i == len(TABLES) - 1 else b"],\n")
        meta["tables"] = tables
        mtmp = self.dir / "parsed.meta.json.tmp"
        mtmp.write_text(json.dumps(meta), encoding="utf-8")
        os.replace(tmp, self.dir / "parsed.json")
        os.replace(mtmp, self.dir / "parsed.meta.json")

    def _write_vectors(self, f) -> None:
        """The vectors' rows with their summaries, one line each, a comma after all but the last."""
        last = len(self.vectors) - 1
        for j, line in enumerate(self.vectors.rows()):
            row = json.loads(line)
            row.update(self.accs.summary(row["key"]))
            f.write((json.dumps(row) + ("\n" if j == last else ",\n")).encode())

    def close(self) -> None:
        if not self._series.closed:
            self._series.close()
        self._segs.close()
        (self.dir / "segments.part").unlink(missing_ok=True)
        for name in TABLES:
            getattr(self, name).close(remove=True)


def _npy_header(rows: int) -> bytes:
    """The .npy header of an int64 (rows, 3) array (the rows follow it)."""
    import io
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        b, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.int64)), "fortran_order": False,
            "shape": (rows, 3)})
    return b.getvalue()


class Table:
    """One table of parsed.json, read a row at a time (len() without reading it)."""

    def __init__(self, path: Path, offset: int, count: int):
        self.path, self.offset, self.count = path, offset, count

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        for _, row in self.scan():
            yield row

    def scan(self):
        """(offset, row) of every row: the offset lets at() read that row again later."""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            for _ in range(self.count):
                at = f.tell()
                yield at, json.loads(f.readline().rstrip(b",\n"))

    @contextmanager
    def reader(self):
        """at(offset) -> the row there, on one open file."""
        with open(self.path, "rb") as f:
            def at(offset: int) -> dict:
                f.seek(offset)
                return json.loads(f.readline().rstrip(b",\n"))
            yield at


class Parsed:
    """Read side of parsed_dir, used by stats() and by tests."""

    def __init__(self, parsed_dir):
        self.dir = Path(parsed_dir)
        p = self.dir / "parsed.meta.json"
        if not p.is_file() or not (self.dir / "parsed.json").is_file():
            raise ResultsError("no parse output here (run parse first)", path=self.dir)
        meta = json.loads(p.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ResultsError(f"parse output of another engine version (format {meta.get('format')}): "
                               "parse again", path=self.dir)
        self.meta = meta
        self.runs = [Run(r["run_id"], r["attrs"], r["itervars"], [tuple(c) for c in r["config"]])
                     for r in meta["runs"]]
        self.files = meta["files"]
        self.problems = meta.get("problems", [])
        for name, (offset, count) in meta["tables"].items():
            setattr(self, name, Table(self.dir / "parsed.json", offset, count))
        self.scalars = scalarstore.ScalarTable(self.dir, self.scalars, meta["scalar_columns"])
        self._index = np.load(self.dir / "segindex.npy")
        with open(self.dir / "segments.npy", "rb") as f:
            np.lib.format.read_magic(f)
            np.lib.format.read_array_header_1_0(f)
            self._seg_base = f.tell()

    def _segments(self, key: int, fd) -> np.ndarray:
        lo, hi = int(self._index[key]), int(self._index[key + 1])
        raw = os.pread(fd, (hi - lo) * SEG, self._seg_base + lo * SEG)
        return np.frombuffer(raw, dtype=np.int64).reshape(-1, 3)

    def _open(self):
        return os.open(self.dir / "series.bin", os.O_RDONLY), os.open(self.dir / "segments.npy", os.O_RDONLY)

    def held(self, key: int, grid: np.ndarray):
        """(values, has) at each time of the ascending grid: the last sample of the vector with
        time <= g, found by binary search in series.bin with 8-byte preads (no mmap: mapped
        pages would count as resident), so only a few pages are read, not the series."""
        fd, sfd = self._open()
        try:
            segs = self._segments(key, sfd)
            off, cnt = segs[:, 1], segs[:, 2]

            def at(idx, col):  # series[idx, col]
                return np.fromiter((_DOUBLE.unpack(os.pread(fd, 8, (2 * i + col) * 8))[0]
                                    for i in idx.tolist()), np.float64, idx.size)
            j = np.searchsorted(at(off, 0), grid, side="right") - 1  # segment holding it
            has = j >= 0
            j = j[has]
            lo, hi = off[j] + 1, off[j] + cnt[j]  # the answer is in [lo - 1, hi)
            g = grid[has]
            while (act := np.flatnonzero(lo < hi)).size:
                mid = (lo[act] + hi[act]) // 2
                up = at(mid, 0) <= g[act]
                lo[act[up]] = mid[up] + 1
                hi[act[~up]] = mid[~up]
            vals = np.full(grid.size, np.nan)
            vals[has] = at(lo - 1, 1)
        finally:
            os.close(fd)
            os.close(sfd)
        return vals, has

    def pieces(self, key: int, max_pairs: int = READ_PAIRS):
        """Yield (times, values) arrays of one vector in order, each at most max_pairs long."""
        fd, sfd = self._open()
        try:
            segs = self._segments(key, sfd)
            buf_t, buf_v, held = [], [], 0
            for _, off, cnt in segs.tolist():
                while cnt:
                    take = min(cnt, max_pairs - held)
                    raw = os.pread(fd, take * PAIR, off * PAIR)
                    a = np.frombuffer(raw, dtype=np.float64).reshape(-1, 2)
                    buf_t.append(a[:, 0])
                    buf_v.append(a[:, 1])
                    held += take
                    off += take
                    cnt -= take
                    if held >= max_pairs:
                        yield np.concatenate(buf_t), np.concatenate(buf_v)
                        buf_t, buf_v, held = [], [], 0
            if held:
                yield np.concatenate(buf_t), np.concatenate(buf_v)
        finally:
            os.close(fd)
            os.close(sfd)

    def series(self, key: int):
        """The whole (times, values) of one vector (tests and small vectors only)."""
        ts, vs = [], []
        for t, v in self.pieces(key):
            ts.append(t)
            vs.append(v)
        if not ts:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(ts), np.concatenate(vs)
