"""The parse -> stats hand-over in parsed_dir.

parse() streams every result file once and leaves here:
  parsed.json   runs, files, vector metadata + running summaries, scalars, params, statistics
  series.bin    float64 (time, value) pairs, written chunk by chunk in file order
  segments.npy  int64 rows (vector key, first pair index, pair count) locating each vector's runs
stats() then reads one vector at a time, segment by segment, so memory stays bounded whatever the
size of the .vec.
"""
from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import fastparse
from .errors import ResultsError

FORMAT = 1
PAIR = 16  # bytes per (time, value) pair
_DOUBLE = struct.Struct("=d")
#: a vector's series is handed to stats in pieces of at most this many pairs
READ_PAIRS = 1 << 20


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


class _Acc:
    """Running count/sum/min/max/mean/M2 of one vector (Chan's pairwise update: exact enough
    for stddev even when mean >> stddev, unlike sum of squares)."""

    __slots__ = ("count", "sum", "min", "max", "mean", "m2", "first_time", "last_time",
                 "first_value", "last_value")

    def __init__(self):
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.mean = 0.0
        self.m2 = 0.0
        self.first_time = None
        self.last_time = None
        self.first_value = None
        self.last_value = None

    def add(self, n, s, mn, mx, m2, t0, t1, v0, v1):
        if n == 0:
            return
        mean_b = s / n
        if self.count == 0:
            self.mean, self.m2 = mean_b, m2
            self.first_time, self.first_value = t0, v0
        else:
            tot = self.count + n
            d = mean_b - self.mean
            self.mean += d * n / tot
            self.m2 += m2 + d * d * self.count * n / tot
        self.count += n
        self.sum += s
        if mn < self.min:
            self.min = mn
        if mx > self.max:
            self.max = mx
        self.last_time, self.last_value = t1, v1


class Sink:
    """Collects everything parse() finds; one instance per parse() call."""

    def __init__(self, parsed_dir: Path):
        self.dir = Path(parsed_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.series_path = self.dir / "series.bin"
        self._series = open(self.series_path, "wb")
        self.pairs = 0
        self.runs: dict[str, Run] = {}
        self.vectors: list[dict] = []
        self.accs: list[_Acc] = []
        self.segments: list[np.ndarray] = []
        self.scalars: list[dict] = []
        self.params: list[dict] = []
        self.statistics: list[dict] = []
        self.files: list[dict] = []
        self.extra: dict = {}

    # -- runs and tables ---------------------------------------------------------------
    def add_run(self, run: Run) -> Run:
        have = self.runs.get(run.run_id)
        if have is None:
            self.runs[run.run_id] = run
            return run
        have.merge(run)
        return have

    def add_vector(self, run_id, module, name, columns, attrs, source, vector_id) -> int:
        key = len(self.vectors)
        self.vectors.append({"key": key, "run": run_id, "module": module, "name": name,
                             "columns": columns, "attrs": attrs, "file": str(source),
                             "vector_id": vector_id, "stats_from": "data"})
        self.accs.append(_Acc())
        return key

    # -- series ---------------------------------------------------------------------------
    def add_samples(self, keys: np.ndarray, t: np.ndarray, v: np.ndarray, pairs=None) -> None:
        """Append samples in file order; keys[i] is the vector key of sample i. pairs: the same
        (t, v) as one (n, 2) array when the caller has it (saves building it again)."""
        n = keys.size
        if n == 0:
            return
        br = np.flatnonzero(keys[1:] != keys[:-1]) + 1
        if br.size > 64 and br.size * 8 > n:
            # fine-grained interleaving: group by vector so the index stays small
            order = np.argsort(keys, kind="stable")
            keys, t, v, pairs = keys[order], t[order], v[order], None
        res = fastparse.segment_stats(np.ascontiguousarray(keys, dtype=np.int64), t, v)
        if isinstance(res, int):
            vec = self.vectors[int(keys[res])]
            raise ResultsError(f"time goes backwards in vector {vec['module']} {vec['name']} at t={float(t[res])!r}",
                               path=vec["file"])
        starts, s, mn, mx, m2 = res
        ends = np.append(starts[1:], n)
        cnt = ends - starts
        seg_keys = keys[starts]
        if pairs is None:
            pairs = np.empty((n, 2), dtype=np.float64)
            pairs[:, 0] = t
            pairs[:, 1] = v
        self._series.write(memoryview(pairs).cast("B"))
        self.segments.append(np.stack((seg_keys, starts + self.pairs, cnt), axis=1).astype(np.int64))
        self.pairs += n
        accs = self.accs
        for k, c, sj, mnj, mxj, m2j, tf, tl, vf, vl in zip(
                *(a.tolist() for a in (seg_keys, cnt, s, mn, mx, m2, t[starts], t[ends - 1],
                                       v[starts], v[ends - 1]))):
            acc = accs[k]
            if acc.last_time is not None and tf < acc.last_time:
                vec = self.vectors[k]
                raise ResultsError(f"time goes backwards in vector {vec['module']} {vec['name']} at t={tf!r}",
                                   path=vec["file"])
            acc.add(c, sj, mnj, mxj, m2j, tf, tl, vf, vl)

    # -- undo, for a .vci found lying half-way through --------------------------------------
    def checkpoint(self):
        self._series.flush()
        return (self.pairs, len(self.vectors), len(self.segments))

    def rollback(self, cp) -> None:
        pairs, nvec, nseg = cp
        self._series.flush()
        self._series.truncate(pairs * PAIR)
        self._series.seek(pairs * PAIR)
        self.pairs = pairs
        del self.vectors[nvec:]
        del self.accs[nvec:]
        del self.segments[nseg:]

    # -- finish -----------------------------------------------------------------------------
    def finish(self) -> None:
        self._series.close()
        segs = (np.concatenate(self.segments) if self.segments
                else np.zeros((0, 3), dtype=np.int64))
        if segs.size:
            segs = segs[np.argsort(segs[:, 0], kind="stable")]
        np.save(self.dir / "segments.npy", segs)
        vectors = []
        for vec, acc in zip(self.vectors, self.accs):
            n = acc.count
            vec = dict(vec)
            vec.update({
                "count": n,
                "sum": acc.sum if n else None,
                "mean": acc.mean if n else None,
                "stddev": (math.sqrt(acc.m2 / (n - 1)) if n > 1 else (0.0 if n == 1 else None)),
                "min": acc.min if n else None,
                "max": acc.max if n else None,
                "first_time": acc.first_time if n else None,
                "last_time": acc.last_time if n else None,
                "last_value": acc.last_value if n else None,
            })
            vectors.append(vec)
        doc = {"format": FORMAT, "runs": [r.to_json() for r in self.runs.values()],
               "files": self.files, "vectors": vectors, "scalars": self.scalars,
               "params": self.params, "statistics": self.statistics, **self.extra}
        tmp = self.dir / "parsed.json.tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps(doc))  # json.dump() would use the slow pure-Python encoder
        os.replace(tmp, self.dir / "parsed.json")

    def close(self) -> None:
        if not self._series.closed:
            self._series.close()


class Parsed:
    """Read side of parsed_dir, used by stats() and by tests."""

    def __init__(self, parsed_dir):
        self.dir = Path(parsed_dir)
        p = self.dir / "parsed.json"
        if not p.is_file():
            raise ResultsError("no parse output here (run parse first)", path=self.dir)
        with open(p) as f:
            doc = json.load(f)
        self.runs = [Run(r["run_id"], r["attrs"], r["itervars"], [tuple(c) for c in r["config"]])
                     for r in doc["runs"]]
        self.files = doc["files"]
        self.vectors = doc["vectors"]
        self.scalars = doc["scalars"]
        self.params = doc["params"]
        self.statistics = doc["statistics"]
        segs = np.load(self.dir / "segments.npy")
        self._segs = segs
        keys = segs[:, 0] if segs.size else np.zeros(0, dtype=np.int64)
        nvec = len(self.vectors)
        self._lo = np.searchsorted(keys, np.arange(nvec), side="left")
        self._hi = np.searchsorted(keys, np.arange(nvec), side="right")

    def held(self, key: int, grid: np.ndarray):
        """(values, has) at each time of the ascending grid: the last sample of the vector with
        time <= g, found by binary search in series.bin with 8-byte preads (no mmap: mapped
        pages would count as resident), so only a few pages are read, not the series."""
        segs = self._segs[self._lo[key]:self._hi[key]]
        off, cnt = segs[:, 1], segs[:, 2]
        fd = os.open(self.dir / "series.bin", os.O_RDONLY)
        try:
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
        return vals, has

    def pieces(self, key: int, max_pairs: int = READ_PAIRS):
        """Yield (times, values) arrays of one vector in order, each at most max_pairs long."""
        segs = self._segs[self._lo[key]:self._hi[key]]
        if not segs.size:
            return
        fd = os.open(self.dir / "series.bin", os.O_RDONLY)
        try:
            buf_t, buf_v, held = [], [], 0
            for _, off, cnt in segs:
                off, cnt = int(off), int(cnt)
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

    def series(self, key: int):
        """The whole (times, values) of one vector (tests and small vectors only)."""
        ts, vs = [], []
        for t, v in self.pieces(key):
            ts.append(t)
            vs.append(v)
        if not ts:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(ts), np.concatenate(vs)
