"""Text .vec reader (format versions 2 and 3, and 4.0's files without a version line) with
optional use of the .vci index.

One streaming pass: the file is read in large chunks cut at line ends; declaration lines go
through the Python tokenizer, runs of data lines through fastparse in bulk. With a .vci that
passes the checks (size, block boundaries, ids and counts of every block read, declarations,
min/max/sum/times of every vector read) only the blocks of selected vectors are read at all. If
the index turns out wrong half-way, everything this file added is rolled back and the file is
scanned instead; the reason is recorded. A last line cut off mid-way (a simulation killed while
writing) is dropped and reported as a Problem; anything else malformed is a ResultsError naming
the line. Memory stays bounded: declarations are kept as compact arrays, rows go to the sink.
"""
from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path

import numpy as np

from . import fastparse
from .errors import Problem, ResultsError
from .runheader import RunHeaderReader
from .store import Sink, TimeOrderError
from .textfmt import BOM, MAX_LINE, Chunks, parse_id, parse_number, snippet, tokenize

CHUNK = 16 << 20
#: vector ids below this are looked up in a dense table (OMNeT++ numbers vectors 0, 1, 2, ...)
DENSE_IDS = 1 << 22
#: declarations with larger ids per run (no OMNeT++ writes any)
MAX_SPARSE = 10_000
#: declarations per run, and what an index may list before it is not used (memory bounds: parse
#: peaks at 211 MB on 1 M declarations, 338 MB on 2 M, in benchmarks/bench_memory.py)
MAX_DECLS = 1_000_000
MAX_INDEX_VECTORS = 200_000
MAX_INDEX_BLOCKS = 1_000_000
#: lines read at a time when data lines must be read one by one, and text lines
SLOW_LINES = 1 << 16
TEXT_LINES = 1 << 14
_COLUMNS = re.compile(r"^[ETV]+$")
_DBL_MAX = 1.7976931348623e308  # OMNeT++ 4's min/max of a block with no number, as printed


class IndexMismatch(Exception):
    """The .vci does not describe this .vec (internal: triggers the scan fallback)."""


def _check_columns(columns: str, err) -> None:
    if not _COLUMNS.match(columns) or "T" not in columns or "V" not in columns \
            or len(set(columns)) != len(columns):
        raise err(f"unknown vector columns {snippet(columns)} (expected ETV or TV)")


class _Decls:
    """The vector declarations of the current run as compact arrays (19 bytes each): per declaration
    its sink key (-1: not selected), field count with the id, which of the other fields hold time
    and value, and a signature of (module, name, columns) for the index check. Ids map to
    declarations through a dense table (small ids) or a dict (others)."""

    def __init__(self):
        self.n = 0
        self.keys = np.empty(256, dtype=np.int64)
        self.sig = np.empty(256, dtype=np.int64)
        self.nf = np.empty(256, dtype=np.int8)
        self.tcol = np.empty(256, dtype=np.int8)
        self.vcol = np.empty(256, dtype=np.int8)
        self.lut = np.full(256, -1, dtype=np.int32)
        self.sparse: dict[int, int] = {}
        self._sparse_arrays = None
        self.selected: dict[int, bool] = {}  # vector id -> has a sink key (filled as blocks ask)

    def find(self, vid: int) -> int:
        if vid < self.lut.size:
            return int(self.lut[vid])
        return self.sparse.get(vid, -1)

    def add(self, vid: int, key: int, columns: str, sig: int) -> None:
        i = self.n
        if i == self.keys.size:
            for name in ("keys", "sig", "nf", "tcol", "vcol"):
                a = getattr(self, name)
                b = np.empty(a.size * 2, dtype=a.dtype)
                b[:a.size] = a
                setattr(self, name, b)
        if vid < DENSE_IDS:
            if vid >= self.lut.size:
                lut = np.full(max(vid + 1, self.lut.size * 2), -1, dtype=np.int32)
                lut[:self.lut.size] = self.lut
                self.lut = lut
            self.lut[vid] = i
        else:
            self.sparse[vid] = i
            self._sparse_arrays = None
        self.keys[i], self.sig[i] = key, sig
        self.nf[i] = len(columns) + 1
        others = columns  # the fields after the id
        self.tcol[i], self.vcol[i] = others.index("T"), others.index("V")
        self.n += 1

    def lookup(self, ids: np.ndarray):
        """Declaration index per id, or None if some id is not declared."""
        if ids.size == 0:
            return np.zeros(0, dtype=np.int32)
        if ids.min() < 0:
            return None
        small = ids < self.lut.size
        if small.all():
            pos = self.lut[ids]
        else:
            if not self.sparse:
                return None
            if self._sparse_arrays is None:
                sp = np.array(sorted(self.sparse.items()), dtype=np.int64).reshape(-1, 2)
                self._sparse_arrays = sp[:, 0], sp[:, 1].astype(np.int32)
            sp_ids, sp_pos = self._sparse_arrays
            pos = np.full(ids.size, -1, dtype=np.int32)
            pos[small] = self.lut[ids[small]]
            big = ids[~small]
            j = np.searchsorted(sp_ids, big)
            j[j >= sp_ids.size] = 0
            pos[~small] = np.where(sp_ids[j] == big, sp_pos[j], -1)
        return None if (pos < 0).any() else pos


class Progress:
    """Throttled progress lines for long files."""

    def __init__(self, cb, path: Path, total: int):
        self.cb, self.name, self.total = cb, path.name, max(total, 1)
        self.t0 = self.last = time.monotonic()
        self.enabled = cb is not None and total >= (8 << 20)

    def update(self, done: int, what: str = "read") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 2.0:
            return
        self.last = now
        mb = done / 1e6
        rate = mb / max(now - self.t0, 1e-9)
        self.cb(f"{self.name}: {what} {done / self.total:4.0%} ({mb:.0f} of {self.total / 1e6:.0f} MB, {rate:.0f} MB/s)")


class VecReader(RunHeaderReader):
    def __init__(self, path: Path, sink: Sink, select, progress=None):
        self.select = select  # (Run, module, name) -> bool
        self.progress_cb = progress
        self.reset(path, sink)

    def reset(self, path=None, sink=None) -> None:
        RunHeaderReader.__init__(self, Path(path or self.path), sink or self.sink)
        self.decls = _Decls()
        self.declared = 0
        self.data_lines = 0
        self.problems: list[Problem] = []
        self._bytes_read = 0
        self._buf = None

    # ---------------------------------------------------------------- declarations
    def text_line(self, line: str, lineno: int | None) -> None:
        toks = tokenize(line, self.path, lineno)
        if not toks or toks[0].startswith("#"):
            return
        kw = toks[0]
        if kw[:1].isdigit():
            self.slow_data([line], lineno)
            return
        if self.header_line(kw, toks, lineno):
            if kw == "run":
                self.decls = _Decls()  # vector ids belong to their run (appended runs start again)
        elif kw == "attr":
            if self.target is None:
                raise self.err("attr line before any run or vector line", lineno)
            self.attr_line(toks, lineno)
        elif kw == "param":
            if len(toks) != 3 or self.run is None:
                raise self.err("malformed param line", lineno)
            self.config_line(toks, lineno)
        elif kw == "vector":
            self.declare(toks, lineno)
        else:
            raise self.err(f"unexpected line starting with {snippet(kw)} in a .vec file", lineno)

    def declare(self, toks, lineno) -> None:
        if len(toks) not in (4, 5):
            raise self.err("malformed vector line (expected: vector ID MODULE NAME [ETV|TV])", lineno)
        if self.run is None:
            raise self.err("vector line before the run line", lineno)
        vid = parse_id(toks[1], self.path, lineno)
        columns = toks[4] if len(toks) == 5 else "TV"
        _check_columns(columns, lambda m: self.err(m, lineno))
        if self.decls.find(vid) >= 0:
            raise self.err(f"vector id {vid} declared twice", lineno)
        if self.decls.n >= MAX_DECLS:
            raise self.err(f"more than {MAX_DECLS} vectors in one run (limit of the engine)", lineno)
        if vid >= DENSE_IDS and len(self.decls.sparse) >= MAX_SPARSE:
            raise self.err(f"more than {MAX_SPARSE} vector ids above {DENSE_IDS} (limit of the engine)", lineno)
        module, name = toks[2], toks[3]
        key = -1
        if self.select(self.run, module, name):
            key = self.sink.add_vector(self.run.run_id, module, name, columns, {}, self.path, vid)
        self.decls.add(vid, key, columns, hash((module, name, columns)))
        self.declared += 1
        # attr lines that follow go to the vector (those of vectors not selected are not kept)
        self.target = self.sink.vector_row(key) if key >= 0 else {"attrs": {}}

    # ---------------------------------------------------------------- data lines
    def bulk(self, mv):
        """(declaration index, (time, value) pairs[n, 2]) per data line, or None if some line is not
        a clean data line of a declared vector. Native: one C pass; else parse + lookup."""
        d = self.decls
        if not d.sparse and fastparse.backend() == "native":
            return fastparse.parse_pairs(mv, d.lut, d.nf, d.tcol, d.vcol)
        res = fastparse.parse_lines(mv)
        if res is None:
            return None
        ids, nf, cols = res
        pos = d.lookup(ids)
        if pos is None or not np.array_equal(nf, d.nf[pos]):
            return None
        n = pos.size
        pairs = np.empty((n, 2))
        tcol, vcol = d.tcol[pos], d.vcol[pos]
        if n and tcol.min() == tcol.max() and vcol.min() == vcol.max():
            pairs[:, 0], pairs[:, 1] = cols[int(tcol[0])], cols[int(vcol[0])]
        else:
            rows = np.arange(n)
            pairs[:, 0], pairs[:, 1] = cols[tcol, rows], cols[vcol, rows]
        if not np.isfinite(pairs[:, 0]).all():
            return None
        return pos, pairs

    def _store(self, pos, pairs) -> None:
        keys = self.decls.keys[pos]
        keep = keys >= 0
        if not keep.all():
            keys, pairs = keys[keep], pairs[keep]
        self.sink.add_samples(keys, pairs[:, 0], pairs[:, 1], pairs, path=self.path)
        self.data_lines += pos.size

    def data_block(self, mv, lineno: int | None, try_only=False):
        """Bulk-convert complete data lines and hand the selected samples to the sink; returns the
        number of lines. Lines the bulk path does not take are read one by one (exact values of
        every spelling, or an exact error); try_only: return None instead."""
        res = self.bulk(mv)
        if res is not None:
            try:
                self._store(*res)
                return res[0].size
            except TimeOrderError:
                if lineno is None:
                    raise IndexMismatch("time goes backwards in a block") from None
        if try_only:
            return None
        if lineno is None:
            raise IndexMismatch("data lines that do not parse where the index puts a block")
        return self.slow_lines(mv, lineno)

    def slow_lines(self, mv, lineno: int) -> int:
        """Data lines read one by one, SLOW_LINES at a time (bounded memory)."""
        b = np.frombuffer(mv, dtype=np.uint8)
        nl = np.flatnonzero(b == 10)
        start = 0
        for a in range(0, nl.size, SLOW_LINES):
            stop = int(nl[min(a + SLOW_LINES, nl.size) - 1]) + 1
            lines = bytes(mv[start:stop]).decode("utf-8", errors="replace").split("\n")[:-1]
            self.slow_data(lines, lineno + a)
            start = stop
        return nl.size

    def slow_data(self, lines, lineno):
        """Line-by-line reading of data lines: exact errors, and the odd legal forms (spaces,
        spellings only the Python grammar takes on the numpy back end)."""
        d = self.decls
        accs = self.sink.accs
        keys, ts, vs, last = [], [], [], {}
        n = 0
        for i, line in enumerate(lines):
            ln = None if lineno is None else lineno + i
            if line.endswith("\r"):
                line = line[:-1]
            toks = tokenize(line, self.path, ln)
            if not toks:
                continue
            vid = parse_id(toks[0], self.path, ln)
            j = d.find(vid)
            if j < 0:
                raise self.err(f"data line for undeclared vector id {vid}", ln)
            if len(toks) != d.nf[j]:
                raise self.err(f"data line has {len(toks) - 1} values, vector {vid} declares "
                               f"{d.nf[j] - 1}; truncated or corrupt?", ln)
            vals = [parse_number(x, self.path, ln) for x in toks[1:]]
            t, v = vals[d.tcol[j]], vals[d.vcol[j]]
            if not math.isfinite(t):
                raise self.err(f"time {snippet(toks[1 + d.tcol[j]])} of vector {vid} is not a finite "
                               "number", ln)
            key = int(d.keys[j])
            if key >= 0:
                prev = last.get(key)
                if prev is None and accs[key]["count"]:
                    prev = float(accs[key]["t1"])
                if prev is not None and t < prev:
                    raise self.err(f"time goes backwards in vector {vid}: {t!r} after {prev!r}", ln)
                last[key] = t
                keys.append(key)
                ts.append(t)
                vs.append(v)
            n += 1
        if keys:
            self.sink.add_samples(np.array(keys, dtype=np.int64), np.array(ts), np.array(vs),
                                  path=self.path)
        self.data_lines += n
        return n

    # ---------------------------------------------------------------- mixed text
    def mixed(self, mv, lineno: int | None, allow_data=True) -> int:
        """Process complete lines of any kind; returns the number of lines."""
        b = np.frombuffer(mv, dtype=np.uint8)
        if b.size == 0:
            return 0
        if allow_data and 48 <= b[0] <= 57:
            n = self.data_block(mv, lineno, try_only=True)
            if n is not None:
                return n
        nl = np.flatnonzero(b == 10)
        n = nl.size
        starts = np.empty(n, dtype=np.int64)
        starts[0] = 0
        starts[1:] = nl[:-1] + 1
        fb = b[starts]
        isdata = (fb >= 48) & (fb <= 57)
        cuts = np.flatnonzero(isdata[1:] != isdata[:-1]) + 1
        bounds = [0, *cuts.tolist(), n]
        for a, z in zip(bounds[:-1], bounds[1:]):
            ln = None if lineno is None else lineno + a
            if isdata[a]:
                if not allow_data:
                    raise IndexMismatch("data lines outside the blocks of the index")
                self.data_block(mv[starts[a]:nl[z - 1] + 1], ln)
            else:
                self.text_lines(mv, starts[a:z], nl[a:z], ln)
        return n

    def text_lines(self, mv, starts, ends, lineno: int | None) -> None:
        """Text lines mv[starts[i]:ends[i]], decoded and read TEXT_LINES at a time (a chunk of
        declarations as one list of strings would cost several times the chunk)."""
        pending, at = "", lineno
        for a in range(0, starts.size, TEXT_LINES):
            z = min(a + TEXT_LINES, starts.size)
            base = None if lineno is None else lineno + a
            raw = bytes(mv[starts[a]:ends[z - 1]])
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                bad = raw[:e.start].count(b"\n")
                raise self.err("garbage bytes (not UTF-8 text)", None if base is None else base + bad) from None
            for i, line in enumerate(text.split("\n")):
                ln = None if base is None else base + i
                if len(line) > MAX_LINE:
                    raise self.err(f"line longer than {MAX_LINE >> 20} MB: not a result file?", ln)
                if line.endswith("\r"):
                    line = line[:-1]
                if line.endswith("\\") and not line.endswith("\\\\"):
                    if not pending:
                        at = ln
                    pending += line[:-1]
                    continue
                if pending:
                    self.text_line(pending + line, at)
                    pending = ""
                else:
                    self.text_line(line, ln)
        if pending:
            self.text_line(pending, at)

    # ---------------------------------------------------------------- whole file
    def read(self, vci: Path | None = None) -> dict:
        size = self.path.stat().st_size
        info = {"path": str(self.path), "format": "text", "bytes": size, "index": "none"}
        if vci is not None:
            reason = None
            try:
                idx = VciIndex.load(vci, size)
            except IndexMismatch as e:
                idx, reason = None, str(e)
            if idx is not None:
                cp = self.sink.checkpoint()
                try:
                    self._read_indexed(idx, size)
                    info["index"] = "used"
                    info["bytes_read"] = self._bytes_read
                    return self._done(info)
                except IndexMismatch as e:
                    reason = str(e)
                except ResultsError as e:  # the scan below reports it with its line
                    reason = f"the .vec does not read as the index says ({e.message})"
                self.sink.rollback(cp)
                self.reset()
            info["index"] = f"ignored: {reason}"
            if self.progress_cb:
                self.progress_cb(f"{vci.name}: not used ({reason}); scanning {self.path.name}")
        self._scan(size)
        info["bytes_read"] = size
        return self._done(info)

    def _done(self, info: dict) -> dict:
        for run in self.runs:
            self.sink.add_run(run)
        info["version"] = self.version
        info["version_line"] = self.version_line
        info["runs"] = [r.run_id for r in self.runs]
        info["vectors"] = self.declared
        info["data_lines"] = self.data_lines
        info["problems"] = self.problems
        return info

    def _check_head(self, first: bytes) -> None:
        first = first.rstrip(b"\r")
        if not first.startswith(b"version ") and not first.startswith(b"run ") \
                and not first.startswith(b"#") and first.strip():
            raise self.err("not an OMNeT++ vector file (first line is not 'version N')", 1)

    def _check_tail(self, tail: bytes) -> None:
        """Version 3 files end with a blank line; without it the run did not end (no data lost)."""
        if self.version == 3 and not (tail.endswith(b"\n\n") or tail.endswith(b"\n\r\n")):
            self.problems.append(Problem(str(self.path), None, "no end-of-run blank line at the end: the "
                                         "simulation did not finish, or the file was cut at a line end", 0, False))

    def _scan(self, size: int) -> None:
        prog = Progress(self.progress_cb, self.path, size)
        lineno = 1
        done = 0
        tail = b""
        with open(self.path, "rb") as f:
            chunks = Chunks(f, CHUNK, too_long=lambda: self.err(
                f"line longer than {MAX_LINE >> 20} MB: not a result file?", lineno))
            for buf, cut in chunks:
                if lineno == 1:
                    self._check_head(buf[:64].split(b"\n")[0])
                lineno += self.mixed(memoryview(buf)[:cut], lineno)
                tail = buf[max(cut - 3, 0):cut]
                done += cut
                prog.update(done)
        carry = chunks.rest
        if not self.runs:
            raise self.err("no run line: not an OMNeT++ vector file" + (", or cut off before it" if carry else ""), 1)
        if carry:
            self.problems.append(Problem(str(self.path), lineno, "the file ends in the middle of a line (cut "
                                         "off while written?): that last line was ignored", len(carry), False))
        else:
            self._check_tail(tail)

    # ---------------------------------------------------------------- indexed
    def _region(self, fd, start: int, stop: int) -> None:
        """Lines in [start, stop) outside the index's blocks: declarations, never data."""
        pos, carry = start, b""
        while pos < stop:
            data = os.pread(fd, min(CHUNK, stop - pos), pos)
            if not data:
                raise IndexMismatch("the .vec is shorter than the index says")
            pos += len(data)
            self._bytes_read += len(data)
            buf = carry + data if carry else data
            cut = buf.rfind(b"\n") + 1
            carry = buf[cut:]
            if len(carry) > MAX_LINE:
                raise IndexMismatch("a block does not start at a line start")
            if cut:
                self.mixed(memoryview(buf)[:cut], None, allow_data=False)
        if carry:
            raise IndexMismatch("a block does not start at a line start")

    def _read_indexed(self, idx: "VciIndex", size: int) -> None:
        """Blocks are located by offset and line count, as OMNeT++'s own reader does; the block
        length is only a hint to skip unselected blocks unread (OMNeT++ 6 counts the end-of-run
        blank line into it, and OMNeT++ 4 on Windows wrote wrong ones for CRLF files)."""
        prog = Progress(self.progress_cb, self.path, size)
        blk = _Blocks(idx.blocks)
        nblk = len(blk.off)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            start = len(BOM) if os.pread(fd, len(BOM), 0) == BOM else 0
            first_block = blk.off[0] if nblk else size
            self._check_head(os.pread(fd, 64, start).split(b"\n")[0])
            self._region(fd, start, first_block)
            if [r.run_id for r in self.runs] != idx.runs:
                raise IndexMismatch("run id differs from the .vec")
            i, pos = 0, first_block
            while i < nblk:
                o = blk.off[i]
                if o < pos:
                    raise IndexMismatch("blocks overlap")
                if o > pos:  # a gap: declarations written between blocks
                    self._region(fd, pos, o)
                    pos = o
                if not self._selected(blk.ids[i]):
                    pos = self._skip_block(fd, blk, i, size)
                    i += 1
                else:
                    i, pos = self._read_blocks(fd, blk, i)
                prog.update(pos)
            if pos < size:
                self._region(fd, pos, size)
            tail = os.pread(fd, 3, max(size - 3, 0))
        finally:
            os.close(fd)
        if not tail.endswith(b"\n"):
            raise IndexMismatch("the .vec ends in the middle of a line")
        self._check_tail(tail)
        if len(self.runs) != 1:
            raise IndexMismatch("the .vec holds several runs")
        idx.check(self.decls, self.sink.accs)

    def _selected(self, vid: int) -> bool:
        sel = self.decls.selected.get(vid)
        if sel is None:
            d = self.decls.find(vid)
            if d < 0:
                raise IndexMismatch(f"block of vector {vid} which the .vec does not declare (yet)")
            sel = self.decls.selected[vid] = bool(self.decls.keys[d] >= 0)
        return sel

    def _skip_block(self, fd, blk: "_Blocks", i: int, size: int) -> int:
        """The end of an unselected block: offset + length when the .vec confirms it (a line end
        there, then the next block, a text line or the end of file), else found by counting its
        lines. Returns the end."""
        o, end = blk.off[i], blk.off[i] + blk.length[i]
        head = f"{blk.ids[i]}\t".encode()
        if os.pread(fd, len(head), o) != head:
            raise IndexMismatch("a block boundary does not match the .vec")
        nxt = blk.off[i + 1] if i + 1 < len(blk.off) else size
        if o < end <= size and os.pread(fd, 1, end - 1) == b"\n" \
                and (end in (nxt, size) or not os.pread(fd, 1, end).isdigit()):
            return end
        pos, left = o, blk.count[i]
        while left:
            data, nl = self._pread_lines(fd, CHUNK, pos)
            if nl.size >= left:
                return pos + int(nl[left - 1]) + 1
            left -= nl.size
            pos += int(nl[-1]) + 1 if nl.size else len(data)
        return pos

    def _pread_lines(self, fd, n: int, pos: int):
        """Up to n bytes at pos, and the positions of their line ends."""
        data = os.pread(fd, n, pos)
        if not data:
            raise IndexMismatch("the .vec is shorter than the index says")
        self._bytes_read += len(data)
        return data, np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)

    def _read_blocks(self, fd, blk: "_Blocks", i: int):
        """Read block i and the selected blocks that directly follow it, each exactly its count of
        lines, in pieces of at most CHUNK bytes; check every line's vector id block by block.
        Returns (next block, position after the blocks read)."""
        nblk = len(blk.off)
        pos = blk.off[i]
        # how much to read first: the blocks' lengths say, when they are right
        k, bpos = self._adjacent_selected(blk, i)
        hint = blk.off[k - 1] + blk.length[k - 1] - pos
        if 0 < hint <= CHUNK and self._read_by_length(fd, blk, i, k, pos, hint, bpos):
            return k, pos + hint
        want = min(hint if hint > 0 else 1 << 16, CHUNK)
        j, seen = i, 0  # current block, its lines read so far
        while True:
            data, nl = self._pread_lines(fd, want, pos)
            short = len(data) < want or want == CHUNK
            want = min(max(2 * want, 1 << 16), CHUNK)  # when the hint was short: read more
            if not nl.size:
                if short:
                    raise IndexMismatch("a block line does not end where the .vec does")
                continue
            taken, bpos, counts, done = 0, [], [], False
            while True:  # give the chunk's lines to blocks j, j + 1, ... by their counts
                take = min(blk.count[j] - seen, nl.size - taken)
                if take:
                    bpos.append(self.decls.find(blk.ids[j]))
                    counts.append(take)
                taken += take
                seen += take
                if seen < blk.count[j]:
                    break  # block j goes on in the next piece
                end = pos + int(nl[taken - 1]) + 1
                j, seen = j + 1, 0
                if j >= nblk or blk.off[j] != end or not self._selected(blk.ids[j]):
                    done = True
                    break
            piece = memoryview(data)[:int(nl[taken - 1]) + 1]
            res = self.bulk(piece)
            if res is None:
                raise IndexMismatch("data lines that do not parse where the index puts a block")
            try:
                self._store(*res)
            except TimeOrderError:
                raise IndexMismatch("time goes backwards in a block") from None
            state = np.zeros(2, dtype=np.int64)
            if not fastparse.runs_continue(res[0], np.array(bpos, dtype=np.int32),
                                           np.array(counts, dtype=np.int64), state) or state[0] != len(bpos):
                raise IndexMismatch("block ids or line counts differ from the index")
            pos += len(piece)
            if done:
                return j, pos

    def _adjacent_selected(self, blk: "_Blocks", i: int):
        """(k, bpos): blocks i..k-1 follow each other by their lengths, within CHUNK bytes, and are
        of selected vectors (block i is); bpos their declaration indexes. Vectorized: a 1 GB file
        has ~10^5 blocks."""
        run_end = int(blk.breaks[np.searchsorted(blk.breaks, i, side="right")])
        # within a run of adjacent blocks the ends ascend
        stop = i + max(int(np.searchsorted(blk.end[i:run_end], blk.off[i] + CHUNK, side="right")), 1)
        pos = self.decls.lookup(blk.ids_np[i:stop])
        if pos is None:  # a vector declared further on: take the blocks up to it
            pos = self.decls.lookup(blk.ids_np[i:i + 1])
        sel = self.decls.keys[pos] >= 0
        k = i + (int(np.argmin(sel)) if not sel.all() else sel.size)
        return max(k, i + 1), pos[:max(k - i, 1)].astype(np.int32)

    def _read_by_length(self, fd, blk: "_Blocks", i: int, k: int, pos: int, size: int, bpos) -> bool:
        """The usual case, in one bulk pass: blocks i..k-1 are where their offsets and lengths
        say (the last may include the end-of-run blank line). False (nothing read into the sink)
        if the lines do not come out as the index's ids and counts."""
        if self._buf is None:  # one buffer for every read: fresh 16 MB ones cost page faults
            self._buf = bytearray(CHUNK)
        got = os.preadv(fd, [memoryview(self._buf)[:size]], pos)
        self._bytes_read += got
        data = memoryview(self._buf)[:got]
        if got != size or data[-1] != 10:
            return False
        cut = _without_blank_tail(data)  # OMNeT++ 6 counts the end-of-run blank line in
        res = self.bulk(data[:cut])
        if res is None:
            return False
        state = np.zeros(2, dtype=np.int64)
        if not fastparse.runs_continue(res[0], bpos, blk.count_np[i:k], state) \
                or state[0] != k - i:
            return False
        try:
            self._store(*res)
        except TimeOrderError:
            raise IndexMismatch("time goes backwards in a block") from None
        return True


class _Blocks:
    """The index's block table, sorted by offset: as Python lists for the loop that visits every
    block (numpy scalars would cost more there) and as arrays for runs of blocks."""

    def __init__(self, b: dict):
        self.ids_np, self.count_np = b["id"], b["count"]
        self.end = b["offset"] + b["length"]
        # where a block does not start at the previous one's end (+ the end of the table)
        self.breaks = np.r_[np.flatnonzero(b["offset"][1:] != self.end[:-1]) + 1, b["id"].size]
        self.ids, self.off = b["id"].tolist(), b["offset"].tolist()
        self.length, self.count = b["length"].tolist(), b["count"].tolist()


def _without_blank_tail(data) -> int:
    """Length of data (bytes-like, ending with a line end) without its trailing blank lines (LF or
    CRLF)."""
    cut = len(data)
    while cut >= 2 and data[cut - 2] == 10:
        cut -= 1
    while cut >= 3 and data[cut - 3:cut] == b"\n\r\n":
        cut -= 2
        while cut >= 2 and data[cut - 2] == 10:
            cut -= 1
    return cut


def _close(a, b, rel=1e-12):
    """Elementwise: equal, or within rel of the larger magnitude."""
    with np.errstate(invalid="ignore", over="ignore"):
        return (a == b) | (np.abs(a - b) <= rel * np.maximum(np.abs(a), np.abs(b)))


class VciIndex:
    """A parsed .vci, read line by line: run ids, per vector (id, signature of module/name/columns,
    summary over its blocks) and the block table (id, offset, length, count), sorted by offset."""

    def __init__(self, path: Path, vec_size: int):
        self.path, self.vec_size = Path(path), vec_size
        self.runs: list[str] = []
        self.where: dict[int, int] = {}  # vector id -> row in the per-vector arrays
        self.vids: list[int] = []
        self.sigs: list[int] = []
        self.has_e: list[bool] = []
        self._blocks = np.empty((0, 4), dtype=np.int64)
        self._parts: list[np.ndarray] = []
        self.nblocks = 0
        self.agg = None  # per vector: count, sum, min, max, first/last offset, firstT, lastT, flags

    @classmethod
    def load(cls, path: Path, vec_size: int) -> "VciIndex":
        self = cls(path, vec_size)
        try:
            with open(path, "rb") as f:
                chunks = Chunks(f, 1 << 20, too_long=lambda: IndexMismatch(
                    f"a line longer than {MAX_LINE >> 20} MB: not an index"))
                lineno = 0
                for buf, cut in chunks:
                    lines = buf[:cut].split(b"\n")
                    lines.pop()
                    self._lines(lines, lineno)
                    lineno += len(lines)
        except OSError as e:
            raise IndexMismatch(f"unreadable ({e.__class__.__name__})") from None
        if chunks.rest or not lineno:
            raise IndexMismatch("index truncated (its last line is incomplete)" if lineno else "empty index")
        if len(self.runs) != 1:
            raise IndexMismatch("index without a run line")
        self._finish()
        return self

    def _lines(self, lines: list, lineno: int) -> None:
        """A piece of the index: the text lines one by one, the block lines (nearly all) in bulk."""
        if not lineno:
            self._fingerprint(lines[0])
            lineno, lines = 1, lines[1:]
        text = [(i, line) for i, line in enumerate(lines) if not line[:1].isdigit()]
        for i, raw in text:
            ln = lineno + i + 1
            if b"\0" in raw:
                raise IndexMismatch(f"line {ln}: NUL bytes (a corrupt index)")
            try:
                toks = tokenize(raw.decode("utf-8").removesuffix("\r"))
            except (UnicodeDecodeError, ResultsError):
                raise IndexMismatch(f"line {ln}: not text in the index's grammar") from None
            if not toks:
                continue
            kw = toks[0]
            if kw == "run" and len(toks) == 2:
                if self.runs:
                    raise IndexMismatch("index of several runs")
                self.runs.append(toks[1])
            elif kw == "vector" and len(toks) in (4, 5):
                self._declare(toks, ln)
            elif kw not in ("version", "attr", "itervar", "config", "param"):
                raise IndexMismatch(f"line {ln}: unexpected {snippet(kw, 20)}")
        rows = lines if not text else [line for line in lines if line[:1].isdigit()]
        if rows:
            self._add_blocks(rows)

    def _fingerprint(self, first: bytes) -> None:
        fp = first.split()
        if len(fp) < 3 or fp[0] != b"file":
            raise IndexMismatch("no 'file' fingerprint line")
        if not fp[1].isdigit():
            raise IndexMismatch("bad fingerprint line")
        if int(fp[1]) != self.vec_size:
            raise IndexMismatch(f"fingerprint size {fp[1].decode()} != .vec size {self.vec_size}")

    def _declare(self, toks, ln) -> None:
        try:
            vid = parse_id(toks[1])
        except ResultsError:
            raise IndexMismatch(f"line {ln} malformed") from None
        cols = toks[4] if len(toks) == 5 else "TV"
        _check_columns(cols, lambda m: IndexMismatch(f"line {ln}: {m}"))
        if vid in self.where:
            raise IndexMismatch(f"line {ln}: vector {vid} declared twice")
        if len(self.vids) >= MAX_INDEX_VECTORS:
            raise IndexMismatch(f"lists more than {MAX_INDEX_VECTORS} vectors (not used, to bound memory)")
        self.where[vid] = len(self.vids)
        self.vids.append(vid)
        self.sigs.append(hash((toks[2], toks[3], cols)))
        self.has_e.append("E" in cols)

    def _add_blocks(self, rows: list[bytes]) -> None:
        res, bad = fastparse.parse_blocks(rows)
        if res is None:
            raise IndexMismatch(f"malformed block line {snippet(rows[bad], 60)}")
        ints, ntok, st = res
        where = self.where
        try:
            vi = np.array([where[v] for v in ints[:, 0].tolist()], dtype=np.int64)
        except KeyError:
            raise IndexMismatch("block of a vector the index does not declare (before it)") from None
        has_e = np.array(self.has_e, dtype=bool)[vi]
        if not np.array_equal(ntok == 12, has_e):
            raise IndexMismatch("block line with event columns the vector does not declare (or none)")
        off, length, count = ints[:, 1], ints[:, 2], ints[:, 3]
        if off.min() < 0 or off.max() >= self.vec_size or count.min() <= 0 or length.min() < 0:
            raise IndexMismatch("block outside the .vec")
        self.nblocks += len(rows)
        if self.nblocks > MAX_INDEX_BLOCKS:
            raise IndexMismatch(f"more than {MAX_INDEX_BLOCKS} blocks (not used, to bound memory)")
        self._parts.append(ints.copy())
        self._aggregate(vi, off, count, st)

    def _aggregate(self, vi, off, count, st) -> None:
        """Running per-vector summary over the blocks: count, sum, min, max, first and last block
        (by offset) with their times; flags where a block's min/max/sum is NaN (nothing to check)."""
        self._grow()
        a = self.agg
        np.add.at(a["count"], vi, count)
        with np.errstate(invalid="ignore"):
            np.add.at(a["sum"], vi, st[:, 4])
        np.fmin.at(a["min"], vi, st[:, 2])
        np.fmax.at(a["max"], vi, st[:, 3])
        np.logical_or.at(a["nanmin"], vi, np.isnan(st[:, 2]))
        np.logical_or.at(a["nanmax"], vi, np.isnan(st[:, 3]))
        order = np.lexsort((off, vi))  # per vector, by offset
        v_s, off_s = vi[order], off[order]
        first = np.flatnonzero(np.r_[True, v_s[1:] != v_s[:-1]])
        last = np.r_[first[1:], v_s.size] - 1
        for pick, key, tcol, better in ((first, "off0", 0, np.less), (last, "off1", 1, np.greater)):
            v, o = v_s[pick], off_s[pick]
            take = better(o, a[key][v])
            a[key][v[take]] = o[take]
            a["t0" if tcol == 0 else "t1"][v[take]] = st[order[pick[take]], tcol]

    def _grow(self) -> None:
        """Per-vector summary arrays covering every vector declared so far."""
        nv = len(self.vids)
        old = self.agg
        if old is not None and old["count"].size >= nv:
            return
        size = max(nv, 2 * (0 if old is None else old["count"].size), 64)
        agg = {"count": np.zeros(size, np.int64), "sum": np.zeros(size), "min": np.full(size, np.nan),
               "max": np.full(size, np.nan), "off0": np.full(size, np.iinfo(np.int64).max),
               "off1": np.full(size, -1, np.int64), "t0": np.full(size, np.nan),
               "t1": np.full(size, np.nan), "nanmin": np.zeros(size, bool), "nanmax": np.zeros(size, bool)}
        if old is not None:
            for k, a in old.items():
                agg[k][:a.size] = a
        self.agg = agg

    def _finish(self) -> None:
        self._grow()
        ints = np.concatenate(self._parts) if self._parts else np.zeros((0, 4), np.int64)
        self._parts = []
        order = np.argsort(ints[:, 1], kind="stable")
        ints = ints[order]
        self.blocks = {"id": ints[:, 0], "offset": ints[:, 1], "length": ints[:, 2], "count": ints[:, 3]}

    def check(self, decls: _Decls, accs) -> None:
        """After reading: the .vec declares every vector of the index, and every vector read
        agrees with the index's summary of it (IndexMismatch otherwise). The .vec may declare
        more: OMNeT++ 6 indexes only the vectors that recorded data, and data of a vector the index
        leaves out would have been found outside its blocks (_region)."""
        nv = len(self.vids)
        if decls.n < nv:
            raise IndexMismatch(f"the index lists {nv} vectors, the .vec declares {decls.n}")
        vids = np.array(self.vids, dtype=np.int64)
        pos = decls.lookup(vids)
        if pos is None or not np.array_equal(decls.sig[pos], np.array(self.sigs, dtype=np.int64)):
            raise IndexMismatch("a vector is declared differently in the .vec")
        keys = decls.keys[pos]
        sel = np.flatnonzero(keys >= 0)
        k = keys[sel]
        a = {name: arr[sel] for name, arr in self.agg.items()}
        r = accs.get(k)
        bad = np.flatnonzero(r["count"] != a["count"])
        if bad.size:
            j = bad[0]
            raise IndexMismatch(f"vector {vids[sel[j]]}: index counts {a['count'][j]}, the .vec has "
                                f"{r['count'][j]}")
        has = a["count"] > 0
        mn, mx = r["min"], r["max"]
        for got, want, unreliable in ((mn, a["min"], a["nanmin"]), (mx, a["max"], a["nanmax"])):
            ok = ~has | unreliable | np.isnan(want) | _close(got, want) \
                | (np.isnan(got) & (np.abs(want) >= _DBL_MAX))  # every sample NaN (OMNeT++ 4)
            if not ok.all():
                raise IndexMismatch(f"vector {vids[sel[np.flatnonzero(~ok)[0]]]}: index min/max "
                                    "differ from the data")
        ok = ~has | (_close(r["t0"], a["t0"]) & _close(r["t1"], a["t1"]))
        if not ok.all():
            raise IndexMismatch(f"vector {vids[sel[np.flatnonzero(~ok)[0]]]}: index times differ from the data")
        s = r["sum"]
        with np.errstate(invalid="ignore", over="ignore"):
            scale = np.fmax(np.abs(mn), np.abs(mx))
            slack = 1e-12 * a["count"] * np.where(np.isfinite(scale), scale, 0)
            ok = ~has | np.isnan(a["sum"]) | np.isnan(s) | _close(s, a["sum"], 1e-9) \
                | (np.abs(s - a["sum"]) <= slack)
        if not ok.all():
            raise IndexMismatch(f"vector {vids[sel[np.flatnonzero(~ok)[0]]]}: index sum differs from the data")

