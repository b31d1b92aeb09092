"""Bulk conversion of .vec data lines ("id [event] time value", TAB separated) to arrays.

Two interchangeable back ends with the same contract and the same grammar (textfmt.py):
- numpy: np.fromstring(sep=' ') (C strtod, about 60 MB/s here) after a byte-set check that
  leaves it only the grammar's plain decimals and nan/inf; ids are read as integers from the bytes;
- native: a small C routine (data/vecparse.c) compiled on first use with the system C compiler
  and loaded through ctypes (about 5x faster; see benchmarks/bench_engine.py). It gives the
  same doubles as strtod.
If no compiler is available, or OMNETPP_RESULTS_NATIVE=0, the numpy back end is used.
The .sca's scalar items have a native reader only (ScalarReader): without it they are read line
by line.

Both return None instead of raising when a line does not look like a plain data line (or holds
a spelling only the line-by-line reader takes, such as 1.#INF on the numpy path); the caller then
re-reads that piece line by line to produce the value or a precise error (file, line).
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .textfmt import MAX_ID, parse_id, parse_number, tokenize

NF = 3  # fields after the id: [event] time value
#: bytes the numpy back end may see: digits, signs, point, exponent, the letters of nan/inf,
#: blanks and line ends (anything else, e.g. 0x10 or 1.#INF, goes line by line)
_NUMPY_BYTES = np.zeros(256, dtype=bool)
_NUMPY_BYTES[np.frombuffer(b"0123456789+-.eE\t\n\r nNaAiIfF", dtype=np.uint8)] = True


def _ids_from_bytes(b: np.ndarray, starts: np.ndarray, ends: np.ndarray):
    """Integer ids from the digit bytes [starts, ends) of each line (no float64 on the way);
    None if one is not 1..19 digits or exceeds MAX_ID."""
    length = ends - starts
    if length.size and (length.min() < 1 or length.max() > 19):
        return None
    ids = np.zeros(starts.size, dtype=np.uint64)
    for k in range(int(length.max()) if length.size else 0):
        m = length > k
        d = b[starts[m] + k].astype(np.int64) - 48
        if d.size and (d.min() < 0 or d.max() > 9):
            return None
        ids[m] = ids[m] * np.uint64(10) + d.astype(np.uint64)  # 19 digits fit in uint64
    if ids.size and ids.max() > MAX_ID:
        return None
    return ids.astype(np.int64)


def _parse_numpy(buf):
    b = np.frombuffer(buf, dtype=np.uint8)
    if b.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros((NF, 0))
    if not _NUMPY_BYTES[b].all():
        return None
    nl = np.flatnonzero(b == 10)
    n = nl.size
    if n == 0 or nl[-1] != b.size - 1:
        return None
    cr = np.flatnonzero(b == 13)
    if cr.size and (cr[-1] + 1 >= b.size or (b[cr + 1] != 10).any()):
        return None
    seps = np.flatnonzero(b == 9)
    nf = np.diff(np.searchsorted(seps, nl), prepend=0) + 1  # TABs per line + 1
    if nf.max() > NF + 1 or nf.min() < 3:
        return None
    starts = np.r_[0, nl[:-1] + 1]
    ids = _ids_from_bytes(b, starts, seps[np.searchsorted(seps, starts)])
    if ids is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            flat = np.fromstring(bytes(buf), dtype=np.float64, sep=" ")
        except (DeprecationWarning, ValueError):
            return None
    if flat.size != int(nf.sum()):
        return None
    cols = np.full((NF, n), np.nan)
    if nf.min() == nf.max():
        cols[:nf[0] - 1] = flat.reshape(n, nf[0])[:, 1:].T
    else:
        at = np.cumsum(nf) - nf
        for j in range(NF):
            m = nf > j + 1
            cols[j, m] = flat[at[m] + j + 1]
    return ids, nf.astype(np.int8), cols


_SRC = Path(__file__).with_name("data") / "vecparse.c"  # package data, so wheels ship it
_lib = None  # the loaded library; its functions below
_lines_fn = _pairs_fn = _seg_fn = _blocks_fn = _runs_fn = _sca_fn = None
_lib_lock = threading.Lock()
_lib_tried = False
_P, _L = ctypes.c_void_p, ctypes.c_long


def _cache_dir() -> Path:
    base = os.environ.get("OMNETPP_RESULTS_CACHE") or os.environ.get("XDG_CACHE_HOME") \
        or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "omnetpp_results"


def _bind(lib, name, *argtypes):
    fn = getattr(lib, name)
    fn.restype = _L
    fn.argtypes = list(argtypes)
    return fn


def _load_native():
    """Compile (once per source version and platform) and load the C helper; None if impossible."""
    global _lib, _lines_fn, _pairs_fn, _seg_fn, _blocks_fn, _runs_fn, _sca_fn, _lib_tried
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
            _lines_fn = _bind(lib, "vec_parse_lines", _P, _L, _P, _P, _P, _L)
            _pairs_fn = _bind(lib, "vec_parse_pairs", _P, _L, _P, _L, _P, _P, _P, _P, _P, _L)
            _seg_fn = _bind(lib, "vec_segments", _P, _P, _P, _L, _L, _P, _P)
            _blocks_fn = _bind(lib, "vec_parse_blocks", _P, _L, _P, _P, _P, _L)
            _runs_fn = _bind(lib, "vec_check_runs", _P, _L, _P, _P, _L, _P)
            _sca_fn = _bind(lib, "sca_scalars", _P, _L, _P, _P, _P, _P, _P, _L, _P, _P, _P)
            _lib = lib
        except (OSError, subprocess.SubprocessError, AttributeError):
            _lib = None
        return _lib


_pool = None


def threads() -> int:
    """Threads the engine's bulk work may use (parsing, deflating): this process's cores, at most 4
    (OMNETPP_RESULTS_THREADS to set)."""
    try:
        return max(1, min(int(os.environ.get("OMNETPP_RESULTS_THREADS", "0")) or len(os.sched_getaffinity(0)), 4))
    except (AttributeError, ValueError):
        return 1


def _split(arr: np.ndarray) -> list[np.ndarray]:
    """arr cut at line ends into one piece per thread (ctypes releases the GIL)."""
    size = arr.size
    k = threads()
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


def _in_parts(buf, part, empty, axes):
    """part() on each thread's piece of the complete lines in buf, its arrays concatenated along
    axes; None if a piece fails."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    if arr.size == 0:
        return empty
    if arr[-1] != 10:
        return None
    res = _map(part, _split(arr))
    if any(r is None for r in res):
        return None
    if len(res) == 1:
        return res[0]
    return tuple(np.concatenate([r[i] for r in res], axis=ax) for i, ax in enumerate(axes))


def _native_lines(a: np.ndarray):
    maxlines = a.size // 6 + 1  # shortest data line "0\t0\t0\n" is 6 bytes
    ids = np.empty(maxlines, dtype=np.int64)
    nf = np.empty(maxlines, dtype=np.int8)
    cols = np.empty((NF, maxlines), dtype=np.float64)
    n = _lines_fn(a.ctypes.data, a.size, ids.ctypes.data, nf.ctypes.data, cols.ctypes.data, maxlines)
    if n < 0:
        return None
    return ids[:n], nf[:n], cols[:, :n]


def parse_lines(buf):
    """(ids int64[n], field counts with the id int8[n], the other fields float64[3, n] (NaN where a
    line has fewer)) for a run of complete data lines, or None if a line is not a clean data line."""
    if _load_native() is None:
        return _parse_numpy(buf)
    return _in_parts(buf, _native_lines, (np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros((NF, 0))),
                     (0, 0, 1))


def parse_pairs(buf, lut: np.ndarray, nf: np.ndarray, tcol: np.ndarray, vcol: np.ndarray):
    """Native only: (declaration index per line, (time, value) pairs[n, 2]) for complete data lines,
    with the id lookup done while parsing; lut maps id -> declaration index (int32, -1: none),
    nf/tcol/vcol (int8) give per declaration the field count with the id and which of the other
    fields hold time and value. None if a line is not a clean data line of a declared vector or
    its time is not finite."""

    def part(a):
        maxlines = a.size // 6 + 1
        pos = np.empty(maxlines, dtype=np.int32)
        pairs = np.empty((maxlines, 2), dtype=np.float64)
        n = _pairs_fn(a.ctypes.data, a.size, lut.ctypes.data, lut.size, nf.ctypes.data,
                      tcol.ctypes.data, vcol.ctypes.data, pos.ctypes.data, pairs.ctypes.data, maxlines)
        return None if n < 0 else (pos[:n], pairs[:n])

    return _in_parts(buf, part, (np.zeros(0, np.int32), np.zeros((0, 2))), (0, 0))


def segment_stats(keys: np.ndarray, t: np.ndarray, v: np.ndarray):
    """Runs of equal keys (int64) in the samples (t, v): (starts, sum, min, max, m2) per run, m2
    being the sum of squared deviations from the run's mean; or the index of the first sample
    whose time is NaN or below its predecessor's in the same run. Both back ends reduce in
    numpy's order (np.add.reduceat), so they give the same bits."""
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
    bad = np.r_[np.isnan(t[:1]), ~(t[1:] >= t[:-1])]
    bad[br] = np.isnan(t[br])
    if bad.any():
        return int(np.flatnonzero(bad)[0])
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


def _blocks_python(rows: list[bytes]):
    """The numpy back end's .vci block lines: one row at a time through the textfmt grammar."""
    n = len(rows)
    ints = np.zeros((n, 4), dtype=np.int64)
    ntok = np.zeros(n, dtype=np.int8)
    st = np.zeros((n, 6))
    for r, raw in enumerate(rows):
        toks = tokenize(raw.decode("ascii", errors="replace").removesuffix("\r"))
        k = len(toks)
        if k not in (10, 12):
            return None, r
        ev = 2 if k == 12 else 0
        try:
            ints[r] = [parse_id(toks[0]), parse_id(toks[1]), parse_id(toks[2]), parse_id(toks[5 + ev])]
            for j in range(3, 3 + ev):
                parse_id(toks[j])
            st[r] = [parse_number(toks[j]) for j in (3 + ev, 4 + ev, 6 + ev, 7 + ev, 8 + ev, 9 + ev)]
        except Exception:  # noqa: BLE001 - any malformed token makes the row malformed
            return None, r
        ntok[r] = k
    return (ints, ntok, st), None


def parse_blocks(rows: list[bytes]):
    """.vci block lines (without line ends) -> ((ints[n, 4]: id offset length count, ntok[n]: 10 or
    12 tokens, st[n, 6]: firstT lastT min max sum sqrsum), None), or (None, index of a malformed
    row). Integers are read as integers."""
    if _load_native() is None:
        return _blocks_python(rows)
    blob = b"\n".join(rows) + b"\n"
    n = len(rows)
    ints = np.empty((n, 4), dtype=np.int64)
    ntok = np.empty(n, dtype=np.int8)
    st = np.empty((n, 6))
    r = _blocks_fn(blob, len(blob), ints.ctypes.data, ntok.ctypes.data, st.ctypes.data, n)
    if r < 0:
        return None, -r - 1
    if r != n:
        return None, r
    return (ints, ntok, st), None


def runs_continue(pos: np.ndarray, bpos: np.ndarray, counts: np.ndarray, state: np.ndarray) -> bool:
    """Do the per-line declaration indexes pos continue the runs "bpos[j] repeated counts[j]
    times"? state (int64[2]: block j, lines of it seen) carries over between calls, so a block
    may be read in several pieces; updated in place when True."""
    if _load_native() is not None:
        pos = np.ascontiguousarray(pos, dtype=np.int32)
        bpos = np.ascontiguousarray(bpos, dtype=np.int32)
        counts = np.ascontiguousarray(counts, dtype=np.int64)
        return bool(_runs_fn(pos.ctypes.data, pos.size, bpos.ctypes.data, counts.ctypes.data,
                             bpos.size, state.ctypes.data))
    j, seen, i = int(state[0]), int(state[1]), 0
    while i < pos.size:
        if j >= bpos.size:
            return False
        take = min(int(counts[j]) - seen, pos.size - i)
        if not (pos[i:i + take] == bpos[j]).all():
            return False
        i, seen = i + take, seen + take
        if seen == counts[j]:
            j, seen = j + 1, 0
    state[0], state[1] = j, seen
    return True


def backend() -> str:
    return "native" if _load_native() is not None else "numpy"


class _InternT(ctypes.Structure):
    _fields_ = [("hash", _P), ("code", _P), ("mask", _L), ("arena", _P), ("arena_cap", _L),
                ("offs", _P), ("max", _L), ("state", _P)]


class Interner:
    """Distinct strings (scalar names, attr blocks) of the native scalar reader, each with a code
    (0, 1, ... in order of appearance). At most MAX strings and ARENA bytes: past that the reader
    leaves new ones to the line-by-line path, which has no such table."""

    MAX = 1 << 17
    ARENA = 64 << 20

    def __init__(self):
        self.hash = np.zeros(2 * self.MAX, dtype=np.uint64)
        self.code = np.full(2 * self.MAX, -1, dtype=np.int32)
        self.offs = np.zeros(self.MAX + 1, dtype=np.int64)
        self.state = np.zeros(2, dtype=np.int64)
        self.arena = np.empty(1 << 16, dtype=np.uint8)
        self.t = _InternT(self.hash.ctypes.data, self.code.ctypes.data, 2 * self.MAX - 1,
                          self.arena.ctypes.data, self.arena.size, self.offs.ctypes.data, self.MAX,
                          self.state.ctypes.data)

    def __len__(self) -> int:
        return int(self.state[0])

    def room(self, nbytes: int) -> None:
        """Room for nbytes more in the arena (within ARENA): no string of a piece that long is
        then refused for want of it."""
        need = min(int(self.state[1]) + nbytes, self.ARENA)
        if need > self.arena.size:
            arena = np.empty(min(max(need, 2 * self.arena.size), self.ARENA), dtype=np.uint8)
            arena[:self.arena.size] = self.arena
            self.arena = arena
            self.t.arena, self.t.arena_cap = arena.ctypes.data, arena.size

    def strings(self, start: int = 0) -> list[bytes]:
        """The strings from code start on."""
        blob = self.arena[:int(self.state[1])].tobytes()
        o = self.offs[start:len(self) + 1].tolist()
        return [blob[a:b] for a, b in zip(o[:-1], o[1:])]


@dataclass
class ScalarItems:
    """What ScalarReader.read() took: `taken` bytes of the buffer, `lines` lines, as n items (views
    of the reader's buffers, valid until its next read)."""
    taken: int
    lines: int
    text: memoryview  # their CSV lines (module,name,value)
    length: np.ndarray  # int32[n], bytes of each line
    value: np.ndarray  # float64[n]
    name: np.ndarray  # int32[n], codes of the names Interner
    attrs: np.ndarray  # int32[n], codes of the attr blocks Interner, -1: none

    def __len__(self) -> int:
        return self.value.size


class ScalarReader:
    """Native only: the complete scalar items (a scalar line and its attr lines, written as
    OMNeT++ writes them, see data/vecparse.c) of a buffer, with the names and attr blocks
    interned; its output buffers are kept from one read to the next."""

    def __init__(self):
        self.names, self.attrs = Interner(), Interner()
        self.text = np.empty(0, dtype=np.uint8)
        self.length = np.empty(0, dtype=np.int32)
        self.value = np.empty(0)
        self.name = np.empty(0, dtype=np.int32)
        self.attr = np.empty(0, dtype=np.int32)
        self.out = np.zeros(3, dtype=np.int64)

    @staticmethod
    def available() -> bool:
        return _load_native() is not None

    def read(self, buf: bytes, pos: int, end: int) -> ScalarItems:
        size = end - pos
        rows = size // 13 + 1  # the shortest item, "scalar a b 1\n", is 13 bytes
        if self.text.size < size:
            self.text = np.empty(size, dtype=np.uint8)
            self.length = np.empty(rows, dtype=np.int32)
            self.value = np.empty(rows)
            self.name = np.empty(rows, dtype=np.int32)
            self.attr = np.empty(rows, dtype=np.int32)
        self.names.room(size)
        self.attrs.room(size)
        arr = np.frombuffer(buf, dtype=np.uint8)
        n = _sca_fn(arr.ctypes.data + pos, size, self.text.ctypes.data, self.length.ctypes.data, self.value.ctypes.data,
                    self.name.ctypes.data, self.attr.ctypes.data, rows, ctypes.byref(self.names.t),
                    ctypes.byref(self.attrs.t), self.out.ctypes.data)
        taken, nbytes, lines = self.out.tolist()
        return ScalarItems(taken, lines, memoryview(self.text)[:nbytes], self.length[:n], self.value[:n],
                           self.name[:n], self.attr[:n])
