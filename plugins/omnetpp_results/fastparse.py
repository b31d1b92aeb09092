"""Bulk conversion of .vec data lines ("id [event] time value", TAB separated) to arrays.

Two interchangeable back ends with the same contract:
- numpy: np.fromstring(sep=' ') (C strtod, about 60 MB/s here);
- native: a ~100-line C routine (_vecparse.c) compiled on first use with the system C compiler
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
        return np.zeros(0, np.int8), np.zeros((0, MAXF))
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
    fields = np.full((n, MAXF), np.nan)
    if nf.min() == nf.max():
        fields[:, :nf[0]] = flat.reshape(n, nf[0])
    else:
        starts = np.cumsum(nf) - nf
        for j in range(MAXF):
            m = nf > j
            fields[m, j] = flat[starts[m] + j]
    return nf.astype(np.int8), fields


_SRC = Path(__file__).with_name("_vecparse.c")
_lib = None
_lib_lock = threading.Lock()
_lib_tried = False


def _cache_dir() -> Path:
    base = os.environ.get("OMNETPP_RESULTS_CACHE") or os.environ.get("XDG_CACHE_HOME") \
        or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "omnetpp_results"


def _load_native():
    """Compile (once per source version and platform) and load the C helper; None if impossible."""
    global _lib, _lib_tried
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
                    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(_SRC)],
                                   check=True, capture_output=True, timeout=120)
                    os.replace(tmp, out)
            lib = ctypes.CDLL(str(out))
            fn = lib.vec_parse_lines
            fn.restype = ctypes.c_long
            fn.argtypes = [ctypes.c_char_p, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p,
                           ctypes.c_long]
            _lib = fn
        except (OSError, subprocess.SubprocessError, AttributeError):
            _lib = None
        return _lib


def _parse_native(fn, buf) -> tuple[np.ndarray, np.ndarray] | None:
    mv = memoryview(buf)
    size = mv.nbytes
    if size == 0:
        return np.zeros(0, np.int8), np.zeros((0, MAXF))
    if mv[size - 1] != 10:
        return None
    maxlines = size // 6 + 1  # shortest data line "0\t0\t0\n" is 6 bytes
    nf = np.empty(maxlines, dtype=np.int8)
    fields = np.empty((maxlines, MAXF), dtype=np.float64)
    cbuf = (ctypes.c_char * size).from_buffer_copy(mv) if not isinstance(buf, bytes) else buf
    n = fn(cbuf, size, nf.ctypes.data, fields.ctypes.data, maxlines)
    if n < 0:
        return None
    return nf[:n], fields[:n]


def backend() -> str:
    return "native" if _load_native() is not None else "numpy"


def parse_data_lines(buf):
    """(nfields per line, fields[n, 4]) for a run of complete data lines, or None if any line
    is not a clean data line."""
    fn = _load_native()
    if fn is not None:
        return _parse_native(fn, buf)
    return _parse_numpy(buf)
