"""Bulk conversion of .vec data lines ("id [event] time value", TAB separated) to arrays.

Two interchangeable back ends with the same contract:
- numpy: np.fromstring(sep=' ') (C strtod, about 60 MB/s here);
- native: a ~100-line C routine (data/vecparse.c) compiled on first use with the system C compiler
  and loaded through ctypes (about 5x faster; see benchmarks/bench_engine.py). It falls back
  to strtod for anything outside the exact fast path, so both give bit-identical doubles.
If no compiler is available, or OMNETPP_RESULTS_NATIVE=0, the numpy back end is used.

Both return None instead of raising when a line does not look like a plain data line; the
caller then re-reads that piece line by line to produce a precise error (file, line).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sys
import sysconfig
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np

MAXF = 4  # id, event, time, value


def _parse_numpy(buf) -> tuple[np.ndarray, np.ndarray] | None:
    b = np.frombuffer(buf, dtype=np.uint8)
    if b.size == 0:
        return np.zeros(0, np.int8), np.zeros((MAXF, 0))
    nl = np.flatnonzero(b == 10)
    n = nl.size
    if n == 0 or nl[-1] != b.size - 1:
        return None
    seps = np.flatnonzero(b == 9)
    nf = np.diff(np.searchsorted(seps, nl), prepend=0) + 1
    if nf.max() > MAXF or nf.min() < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            flat = np.fromstring(bytes(buf), dtype=np.float64, sep=" ")
        except (DeprecationWarning, ValueError):
            return None
    if flat.size != int(nf.sum()):
        return None
    cols = np.full((MAXF, n), np.nan)
    if nf.min() == nf.max():
        cols[:nf[0]] = flat.reshape(n, nf[0]).T
    else:
        starts = np.cumsum(nf) - nf
        for j in range(MAXF):
            m = nf > j
            cols[j, m] = flat[starts[m] + j]
    return nf.astype(np.int8), cols


_SRC = Path(__file__).with_name("data") / "vecparse.c"  # package data, so wheels ship it
_lib = None
_pairs_fn = None  # vec_parse_pairs, loaded with _lib
_seg_fn = None  # vec_segments, loaded with _lib
_rows_fn = None  # vec_parse_rows, loaded with _lib
_runs_fn = None  # vec_check_runs, loaded with _lib
_lib_lock = threading.Lock()
_lib_tried = False


def _cache_dir() -> Path:
    base = os.environ.get("OMNETPP_RESULTS_CACHE") or os.environ.get("XDG_CACHE_HOME") \
        or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "omnetpp_results"


def _load_native():
    """Compile (once per source version and platform) and load the C helper; None if impossible."""
    global _lib, _pairs_fn, _seg_fn, _rows_fn, _runs_fn, _lib_tried
    with _lib_lock:
        if _lib_tried:
            return _lib
        _lib_tried = True
        if os.environ.get("OMNETPP_RESULTS_NATIVE", "1") == "0" or not _SRC.is_file():
            return None
        src = _SRC.read_bytes()
        tag = hashlib.sha256(src + sys.platform.encode() + sysconfig.get_platform().encode()).hexdigest()[:16]
        out = _cache_dir() / f"vecparse-{tag}.so"
        try:
            if not out.is_file():
                out.parent.mkdir(parents=True, exist_ok=True)
                cc = os.environ.get("CC", "cc")
                with tempfile.TemporaryDirectory(dir=out.parent) as td:
                    tmp = Path(td) / out.name
                    subprocess.run([cc, "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-o", str(tmp), str(_SRC)],
                                   check=True, capture_output=True, timeout=120)
                    os.replace(tmp, out)
            lib = ctypes.CDLL(str(out))
            fn = lib.vec_parse_lines
            fn.restype = ctypes.c_long
            fn.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p,
                           ctypes.c_long]
            pf = lib.vec_parse_pairs
            pf.restype = ctypes.c_long
            pf.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p, ctypes.c_long] \
                + [ctypes.c_void_p] * 5 + [ctypes.c_long]
            sf = lib.vec_segments
            sf.restype = ctypes.c_long
            sf.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_long] * 2 + [ctypes.c_void_p] * 2
            rf = lib.vec_parse_rows
            rf.restype = ctypes.c_long
            rf.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p, ctypes.c_long,
                           ctypes.c_void_p, ctypes.c_long]
            cf = lib.vec_check_runs
            cf.restype = ctypes.c_long
            cf.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p,
                           ctypes.c_long]
            _lib, _pairs_fn, _seg_fn, _rows_fn, _runs_fn = fn, pf, sf, rf, cf
        except (OSError, subprocess.SubprocessError, AttributeError):
            _lib = None
        return _lib


def _native_part(fn, arr: np.ndarray):
    size = arr.size
    maxlines = size // 6 + 1  # shortest data line "0\t0\t0\n" is 6 bytes
    nf = np.empty(maxlines, dtype=np.int8)
    cols = np.empty((MAXF, maxlines), dtype=np.float64)
    n = fn(arr.ctypes.data, size, nf.ctypes.data, cols.ctypes.data, maxlines)
    if n < 0:
        return None
    return nf[:n], cols[:, :n]


_pool = None


def _threads() -> int:
    try:
        return max(1, min(int(os.environ.get("OMNETPP_RESULTS_THREADS", "0")) or len(os.sched_getaffinity(0)), 4))
    except (AttributeError, ValueError):
        return 1


def _split(arr: np.ndarray) -> list[np.ndarray]:
    """arr cut at line ends into one piece per thread (ctypes releases the GIL)."""
    size = arr.size
    k = _threads()
    if k == 1 or size < (4 << 20):
        return [arr]
    cuts = [0]
    for i in range(1, k):
        mid = size * i // k
        win = arr[mid:mid + (1 << 16)] == 10
        c = (int(np.argmax(win)) + mid + 1) if win.any() else size
        cuts.append(max(c, cuts[-1]))
    cuts.append(size)
    return [arr[a:b] for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def _map(func, parts):
    global _pool
    if len(parts) == 1:
        return [func(parts[0])]
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor
        _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="vecparse")
    return list(_pool.map(func, parts))


def _parse_native(fn, buf) -> tuple[np.ndarray, np.ndarray] | None:
    arr = np.frombuffer(buf, dtype=np.uint8)
    if arr.size == 0:
        return np.zeros(0, np.int8), np.zeros((MAXF, 0))
    if arr[-1] != 10:
        return None
    res = _map(lambda a: _native_part(fn, a), _split(arr))
    if any(r is None for r in res):
        return None
    if len(res) == 1:
        return res[0]
    return np.concatenate([r[0] for r in res]), np.concatenate([r[1] for r in res], axis=1)


def parse_pairs(buf, lut: np.ndarray, nf: np.ndarray, tcol: np.ndarray, vcol: np.ndarray):
    """Native only: (declaration index per line, (time, value) pairs[n, 2]) for complete data lines,
    with the id lookup done while parsing; lut maps id -> declaration index (int32, -1: none),
    nf/tcol/vcol (int8) give per declaration the field count and the time and value fields.
    None if a line is not a clean data line of a declared vector."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    if arr.size == 0:
        return np.zeros(0, np.int32), np.zeros((0, 2))
    if arr[-1] != 10:
        return None

    def part(a):
        maxlines = a.size // 6 + 1
        pos = np.empty(maxlines, dtype=np.int32)
        pairs = np.empty((maxlines, 2), dtype=np.float64)
        n = _pairs_fn(a.ctypes.data, a.size, lut.ctypes.data, lut.size, nf.ctypes.data,
                      tcol.ctypes.data, vcol.ctypes.data, pos.ctypes.data, pairs.ctypes.data, maxlines)
        return None if n < 0 else (pos[:n], pairs[:n])

    res = _map(part, _split(arr))
    if any(r is None for r in res):
        return None
    if len(res) == 1:
        return res[0]
    return np.concatenate([r[0] for r in res]), np.concatenate([r[1] for r in res])


def segment_stats(keys: np.ndarray, t: np.ndarray, v: np.ndarray):
    """Runs of equal keys (int64) in the samples (t, v): (starts, sum, min, max, m2) per run, m2
    being the sum of squared deviations from the run's mean; or the index of the first sample
    whose time is below its predecessor's in the same run. Both back ends reduce in numpy's
    order (np.add.reduceat), so they give the same bits."""
    n = keys.size
    if _load_native() is not None:
        if t.strides != v.strides or t.strides[0] % 8:
            t, v = np.ascontiguousarray(t), np.ascontiguousarray(v)
        starts = np.empty(n, dtype=np.int64)
        red = np.empty((n, 4))
        k = _seg_fn(keys.ctypes.data, t.ctypes.data, v.ctypes.data, t.strides[0] // 8, n,
                    starts.ctypes.data, red.ctypes.data)
        if k < 0:
            return -k - 1
        return (starts[:k], *red[:k].T)
    br = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    d = np.diff(t) < 0
    d[br - 1] = False
    if d.any():
        return int(np.flatnonzero(d)[0]) + 1
    starts = np.concatenate(([0], br))
    cnt = np.diff(starts, append=n)
    v = np.ascontiguousarray(v)
    with np.errstate(invalid="ignore", over="ignore"):  # nan/inf samples are legal
        s = np.add.reduceat(v, starts)
        mn = np.fmin.reduceat(v, starts)
        mx = np.fmax.reduceat(v, starts)
        dev = v - np.repeat(s / cnt, cnt)
        m2 = np.add.reduceat(dev * dev, starts)
    return starts, s, mn, mx, m2


def parse_rows(blob: bytes, nrows: int):
    """Native only (None otherwise, or if a token is not one number): (values, per-row counts)
    of nrows "\n"-terminated rows of numbers separated by spaces, tabs or CRs (.vci block lines)."""
    if _load_native() is None or not blob.endswith(b"\n"):
        return None
    maxn = len(blob) // 2 + 1  # a number and its separator take at least 2 bytes
    out = np.empty(maxn, dtype=np.float64)
    per_row = np.empty(nrows, dtype=np.int32)
    n = _rows_fn(blob, len(blob), out.ctypes.data, maxn, per_row.ctypes.data, nrows)
    if n < 0:
        return None
    return out[:n], per_row.astype(np.int64)


def runs_match(pos: np.ndarray, bpos: np.ndarray, counts: np.ndarray) -> bool:
    """Is pos (per line) bpos[j] repeated counts[j] times, j in order? (Without building the
    repeated array when native.)"""
    if _load_native() is None:
        return np.array_equal(pos, np.repeat(bpos, counts))
    pos = np.ascontiguousarray(pos, dtype=np.int32)
    bpos = np.ascontiguousarray(bpos, dtype=np.int32)
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    return bool(_runs_fn(pos.ctypes.data, pos.size, bpos.ctypes.data, counts.ctypes.data, bpos.size))


def backend() -> str:
    return "native" if _load_native() is not None else "numpy"


def parse_data_lines(buf):
    """(nfields per line, columns[4, n]: id, event, time, value) for a run of complete data lines, or None if any line
    is not a clean data line."""
    fn = _load_native()
    if fn is not None:
        return _parse_native(fn, buf)
    return _parse_numpy(buf)
