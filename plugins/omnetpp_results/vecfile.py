"""Text .vec reader (format versions 2 and 3) with optional use of the .vci index.

One streaming pass: the file is read in large chunks cut at line ends; declaration lines go
through the Python tokenizer, runs of data lines through fastparse in bulk. With a .vci that
passes the checks (size, block boundaries, ids and counts of every block read, min/max of every
vector read) only the blocks of selected vectors are read at all; the summaries of the others
come from the index. If the index turns out wrong half-way, everything this file added is
rolled back and the file is scanned instead.
"""
from __future__ import annotations

import math
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import fastparse
from .errors import ResultsError
from .store import Run, Sink
from .textfmt import parse_number, tokenize

CHUNK = 16 << 20
MAX_LINE = 64 << 20
_COLUMNS = re.compile(r"^[ETV]+$")


class IndexMismatch(Exception):
    """The .vci does not describe this .vec (internal: triggers the scan fallback)."""


@dataclass
class _Decl:
    vid: int
    module: str
    name: str
    columns: str
    key: int  # sink key, or -1 when not selected
    attrs: dict = field(default_factory=dict)


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


class VecReader:
    def __init__(self, path: Path, sink: Sink, select, progress=None):
        self.path = Path(path)
        self.sink = sink
        self.select = select  # (Run, module, name) -> bool
        self.progress_cb = progress
        self.reset()

    def reset(self) -> None:
        self.version = None
        self.run: Run | None = None
        self.runs: list[Run] = []
        self.target = None  # what an `attr` line belongs to
        self.decls: dict[int, _Decl] = {}
        self._lut_dirty = True
        self.data_lines = 0

    # ---------------------------------------------------------------- declarations
    def err(self, msg, lineno=None):
        return ResultsError(msg, path=self.path, line=lineno)

    def text_line(self, line: str, lineno: int | None) -> None:
        toks = tokenize(line, self.path, lineno)
        if not toks or toks[0].startswith("#"):
            return
        kw = toks[0]
        if kw[0].isdigit():
            self.slow_data([line], lineno)
            return
        if kw == "version":
            if len(toks) != 2 or toks[1] not in ("2", "3"):
                raise self.err(f"unsupported result file version {' '.join(toks[1:])!r} (2 and 3 are known)", lineno)
            self.version = int(toks[1])
        elif kw == "run":
            if len(toks) != 2:
                raise self.err("malformed run line", lineno)
            self.run = self.sink.add_run(Run(toks[1]))
            self.runs.append(self.run)
            self.target = self.run
        elif kw == "attr":
            if len(toks) != 3:
                raise self.err("malformed attr line (expected: attr NAME VALUE)", lineno)
            if self.target is None:
                raise self.err("attr line before any run or vector line", lineno)
            if isinstance(self.target, Run):
                self.target.attrs[toks[1]] = toks[2]
            else:
                self.target.attrs[toks[1]] = toks[2]
        elif kw == "itervar":
            if len(toks) != 3 or self.run is None:
                raise self.err("malformed itervar line", lineno)
            self.run.itervars[toks[1]] = toks[2]
        elif kw in ("config", "param"):
            if len(toks) != 3 or self.run is None:
                raise self.err(f"malformed {kw} line", lineno)
            self.run.config.append((toks[1], toks[2]))
        elif kw == "vector":
            self.declare(toks, lineno)
        else:
            raise self.err(f"unexpected line starting with {kw[:40]!r} in a .vec file", lineno)

    def declare(self, toks, lineno) -> None:
        if len(toks) not in (4, 5):
            raise self.err("malformed vector line (expected: vector ID MODULE NAME [ETV|TV])", lineno)
        if self.run is None:
            raise self.err("vector line before the run line", lineno)
        try:
            vid = int(toks[1])
        except ValueError:
            raise self.err(f"vector id {toks[1]!r} is not an integer", lineno) from None
        columns = toks[4] if len(toks) == 5 else "TV"
        if not _COLUMNS.match(columns) or "T" not in columns or "V" not in columns \
                or len(set(columns)) != len(columns):
            raise self.err(f"unknown vector columns {columns!r} (expected ETV or TV)", lineno)
        if vid in self.decls:
            raise self.err(f"vector id {vid} declared twice", lineno)
        module, name = toks[2], toks[3]
        key = -1
        if self.select(self.run, module, name):
            key = self.sink.add_vector(self.run.run_id, module, name, columns, {}, self.path, vid)
        d = _Decl(vid, module, name, columns, key)
        if key >= 0:
            d.attrs = self.sink.vectors[key]["attrs"]
        self.decls[vid] = d
        self.target = d
        self._lut_dirty = True

    # ---------------------------------------------------------------- data lines
    def _build_lut(self) -> None:
        ids = np.array(sorted(self.decls), dtype=np.int64)
        self._ids = ids
        d = [self.decls[int(i)] for i in ids]
        self._keys = np.array([x.key for x in d], dtype=np.int64)
        self._nf = np.array([len(x.columns) + 1 for x in d], dtype=np.int8)
        self._tcol = np.array([x.columns.index("T") + 1 for x in d], dtype=np.int8)
        self._vcol = np.array([x.columns.index("V") + 1 for x in d], dtype=np.int8)
        self._dense = None
        if ids.size and ids[0] >= 0 and ids[-1] < (1 << 20):
            self._dense = np.full(int(ids[-1]) + 1, -1, dtype=np.int32)
            self._dense[ids] = np.arange(ids.size)
        self._lut_dirty = False

    def lookup(self, fvals: np.ndarray):
        """Index into the declaration tables per line, or None if some id is not declared."""
        if self._ids.size == 0:
            return None
        ids = fvals.astype(np.int64)
        if not np.array_equal(ids, fvals):
            return None
        if self._dense is not None:
            if ids.size and (ids.min() < 0 or ids.max() >= self._dense.size):
                return None
            pos = self._dense[ids]
            return None if (pos < 0).any() else pos
        pos = np.searchsorted(self._ids, ids)
        pos[pos >= self._ids.size] = 0
        if not np.array_equal(self._ids[pos], ids):
            return None
        return pos

    def bulk(self, mv):
        """(declaration index, (time, value) pairs[n, 2]) per data line, or None if some line is not
        a clean data line of a declared vector. Native: one C pass; else numpy parse + lookup."""
        if self._lut_dirty:
            self._build_lut()
        if self._dense is not None and fastparse.backend() == "native":
            return fastparse.parse_pairs(mv, self._dense, self._nf, self._tcol, self._vcol)
        res = fastparse.parse_data_lines(mv)
        if res is None:
            return None
        nf, fields = res
        pos = self.lookup(fields[0])
        if pos is None or not np.array_equal(nf, self._nf[pos]):
            return None
        n = pos.size
        pairs = np.empty((n, 2))
        tcol, vcol = self._tcol[pos], self._vcol[pos]
        if n and tcol.min() == tcol.max() and vcol.min() == vcol.max():
            pairs[:, 0], pairs[:, 1] = fields[int(tcol[0])], fields[int(vcol[0])]
        else:
            rows = np.arange(n)
            pairs[:, 0], pairs[:, 1] = fields[tcol, rows], fields[vcol, rows]
        return pos, pairs

    def try_data_block(self, mv) -> int | None:
        """The common case of a chunk made of data lines only: one bulk call, no line scan."""
        res = self.bulk(mv)
        if res is None:
            return None
        self._store(*res)
        return res[0].size

    def data_block(self, mv, lineno: int | None):
        """Bulk-convert complete data lines and hand the selected samples to the sink.

        Returns the per-line vector ids (for .vci cross-checks).
        """
        res = self.bulk(mv)
        if res is None:
            if lineno is None:
                raise IndexMismatch("data lines that do not parse where the index puts a block")
            lines = bytes(mv).decode("utf-8", errors="replace").split("\n")[:-1]
            return self.slow_data(lines, lineno)
        self._store(*res)
        return self._ids[res[0]]

    def _store(self, pos, pairs) -> None:
        self.data_lines += pos.size
        keys = self._keys[pos]
        keep = keys >= 0
        if not keep.all():
            keys, pairs = keys[keep], pairs[keep]
        self.sink.add_samples(keys, pairs[:, 0], pairs[:, 1], pairs)

    def slow_data(self, lines, lineno):
        """Line-by-line reading of data lines: exact errors, and the odd legal forms (spaces)."""
        if self._lut_dirty:
            self._build_lut()
        keys, ts, vs, ids = [], [], [], []
        for i, line in enumerate(lines):
            ln = None if lineno is None else lineno + i
            toks = tokenize(line, self.path, ln)
            if not toks:
                continue
            try:
                vid = int(toks[0])
            except ValueError:
                raise self.err(f"bad data line {line[:60]!r}", ln) from None
            d = self.decls.get(vid)
            if d is None:
                raise self.err(f"data line for undeclared vector id {vid}", ln)
            if len(toks) != len(d.columns) + 1:
                raise self.err(f"data line has {len(toks) - 1} values, vector {vid} declares "
                               f"{len(d.columns)} ({d.columns}); truncated or corrupt?", ln)
            vals = [parse_number(x, self.path, ln) for x in toks[1:]]
            ids.append(vid)
            if d.key >= 0:
                keys.append(d.key)
                ts.append(vals[d.columns.index("T")])
                vs.append(vals[d.columns.index("V")])
        self.data_lines += len(ids)
        if keys:
            self.sink.add_samples(np.array(keys, dtype=np.int64), np.array(ts), np.array(vs))
        return np.array(ids, dtype=np.int64)

    # ---------------------------------------------------------------- mixed text
    def mixed(self, mv, lineno: int | None, allow_data=True) -> int:
        """Process complete lines of any kind; returns the number of lines."""
        b = np.frombuffer(mv, dtype=np.uint8)
        if b.size == 0:
            return 0
        if allow_data and 48 <= b[0] <= 57:
            n = self.try_data_block(mv)
            if n is not None:
                return n
        nl = np.flatnonzero(b == 10)
        n = nl.size
        starts = np.empty(n, dtype=np.int64)
        starts[0] = 0
        starts[1:] = nl[:-1] + 1
        fb = b[starts]
        isdata = (fb >= 48) & (fb <= 57)
        if isdata.all():
            if not allow_data:
                raise IndexMismatch("data lines outside the blocks of the index")
            self.data_block(mv, lineno)
            return n
        cuts = np.flatnonzero(isdata[1:] != isdata[:-1]) + 1
        bounds = [0, *cuts.tolist(), n]
        for a, z in zip(bounds[:-1], bounds[1:]):
            ln = None if lineno is None else lineno + a
            if isdata[a]:
                if not allow_data:
                    raise IndexMismatch("data lines outside the blocks of the index")
                self.data_block(mv[starts[a]:nl[z - 1] + 1], ln)
            else:
                raw = bytes(mv[starts[a]:nl[z - 1]])
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    bad = raw[:e.start].count(b"\n")
                    raise self.err("garbage bytes (not UTF-8 text)",
                                   None if ln is None else ln + bad) from None
                pending = ""
                for i, line in enumerate(text.split("\n")):
                    if line.endswith("\\") and not line.endswith("\\\\"):
                        pending += line[:-1]
                        continue
                    self.text_line(pending + line, None if ln is None else ln + i)
                    pending = ""
                if pending:
                    self.text_line(pending, None if ln is None else ln + z - a - 1)
        return n

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
                    info["version"] = self.version
                    info["runs"] = [r.run_id for r in self.runs]
                    info["vectors"] = len(self.decls)
                    return info
                except IndexMismatch as e:
                    reason = str(e)
                    self.sink.rollback(cp)
                    self.reset()
            info["index"] = f"ignored: {reason}"
            if self.progress_cb:
                self.progress_cb(f"{vci.name}: not used ({reason}); scanning {self.path.name}")
        self._scan(size)
        info["bytes_read"] = size
        info["version"] = self.version
        info["runs"] = [r.run_id for r in self.runs]
        info["vectors"] = len(self.decls)
        return info

    def _check_head(self, first: bytes) -> None:
        if not first.startswith(b"version ") and not first.startswith(b"run ") \
                and not first.startswith(b"#") and first.strip():
            raise self.err("not an OMNeT++ vector file (first line is not 'version N')", 1)

    def _check_end(self, f, size) -> None:
        if size == 0:
            raise self.err("empty file")
        f.seek(max(size - 2, 0))
        tail = f.read(2)
        if not tail.endswith(b"\n"):
            raise self.err("file ends in the middle of a line: truncated?")
        if self.version == 3 and tail != b"\n\n" and size > 1:
            raise self.err("file does not end with the end-of-run blank line OMNeT++ writes: "
                           "truncated, or the simulation did not finish")

    def _scan(self, size: int) -> None:
        prog = Progress(self.progress_cb, self.path, size)
        lineno = 1
        done = 0
        with open(self.path, "rb") as f:
            carry = b""
            first = True
            while True:
                data = f.read(CHUNK)
                if not data:
                    break
                buf = carry + data if carry else data
                if first:
                    self._check_head(buf[:64].split(b"\n")[0])
                    first = False
                cut = buf.rfind(b"\n") + 1
                if cut == 0:
                    if len(buf) > MAX_LINE:
                        raise self.err("line longer than 64 MB: not a result file?", lineno)
                    carry = buf
                    continue
                mv = memoryview(buf)[:cut]
                lineno += self.mixed(mv, lineno)
                carry = buf[cut:]
                done += cut
                prog.update(done)
            if carry:
                raise self.err("file ends in the middle of a line: truncated?", lineno)
            if first:
                raise self.err("empty file")
            if self.version is None:
                raise self.err("no 'version' line: not an OMNeT++ vector file", 1)
            self._check_end(f, size)

    # ---------------------------------------------------------------- indexed
    def _read_indexed(self, idx: "VciIndex", size: int) -> None:
        prog = Progress(self.progress_cb, self.path, size)
        self._bytes_read = 0
        blocks = idx.blocks  # sorted by offset
        off, length, bid, cnt = blocks["offset"], blocks["length"], blocks["id"], blocks["count"]
        ends = off + length
        nblk = off.size
        fd = os.open(self.path, os.O_RDONLY)
        try:
            first_block = int(off[0]) if nblk else size
            head = os.pread(fd, first_block, 0)
            self._bytes_read += len(head)
            if not head.endswith(b"\n") and first_block:
                raise IndexMismatch("first block does not start at a line start")
            self._check_head(head[:64].split(b"\n")[0])
            self.mixed(memoryview(head), 1, allow_data=False)
            if self.version is None:
                raise IndexMismatch("no version line before the first block")
            # blocks must follow each other; text between them is declarations only
            for r in idx.runs:
                if self.run is None or r != self.run.run_id:
                    raise IndexMismatch("run id differs from the .vec")
            sel = {vid: d.key >= 0 for vid, d in self.decls.items()}
            # Python lists: the loop below visits every block, numpy scalars would cost more
            bidl, offl, endl = bid.tolist(), off.tolist(), ends.tolist()
            selected = [sel.get(b, False) for b in bidl]
            i = 0
            pos = first_block
            while i < nblk:
                o = offl[i]
                if o < pos:
                    raise IndexMismatch("blocks overlap")
                if o > pos:  # a gap: declarations written between blocks
                    gap = os.pread(fd, o - pos, pos)
                    self._bytes_read += len(gap)
                    if not gap.endswith(b"\n"):
                        raise IndexMismatch("a block does not start at a line start")
                    self.mixed(memoryview(gap), None, allow_data=False)
                    pos = o
                b = bidl[i]
                if b not in self.decls:
                    raise IndexMismatch(f"block of vector {b} which the .vec does not declare (yet)")
                if not selected[i]:
                    # not read; still make sure the block is where the index says
                    probe = os.pread(fd, 24, o)
                    tail = os.pread(fd, 1, endl[i] - 1)
                    if not probe.startswith(f"{b}\t".encode()) or tail != b"\n":
                        raise IndexMismatch("a block boundary does not match the .vec")
                    pos = endl[i]
                    i += 1
                    continue
                # a run of adjacent selected blocks, up to CHUNK bytes
                j = i + 1
                while j < nblk and selected[j] and offl[j] == endl[j - 1] and endl[j] - o <= CHUNK:
                    j += 1
                stop = endl[j - 1]
                self._read_blocks(fd, o, stop, bid[i:j], cnt[i:j])
                pos = stop
                i = j
                prog.update(pos)
            if pos < size:
                rest = os.pread(fd, size - pos, pos)
                self._bytes_read += len(rest)
                if not rest.endswith(b"\n"):
                    raise IndexMismatch("the .vec ends in the middle of a line")
                self.mixed(memoryview(rest), None, allow_data=False)
            if size == 0 or not os.pread(fd, 2, max(size - 2, 0)).endswith(b"\n"):
                raise IndexMismatch("the .vec ends in the middle of a line")
            if self.version == 3 and size > 1 and os.pread(fd, 2, size - 2) != b"\n\n":
                raise IndexMismatch("the .vec lacks its end-of-run blank line")
        finally:
            os.close(fd)
        # declarations must be the index's; summaries of what was read must agree with it
        for vid, (module, name, columns) in idx.vectors.items():
            d = self.decls.get(vid)
            if d is None or (d.module, d.name, d.columns) != (module, name, columns):
                raise IndexMismatch(f"vector {vid} is declared differently in the .vec")
        if len(idx.vectors) != len(self.decls):
            raise IndexMismatch("the .vec declares vectors the index does not list")
        per = idx.per_vector()
        for vid, d in self.decls.items():
            if d.key < 0:
                continue
            acc = self.sink.accs[d.key]
            s = per.get(vid)
            if s is None:
                if acc.count:
                    raise IndexMismatch(f"vector {vid} has data the index does not list")
                continue
            n, mn, mx, sm, sq, t0, t1 = s
            if acc.count != n:
                raise IndexMismatch(f"vector {vid}: index counts {n}, the .vec has {acc.count}")
            for a, b in ((acc.min, mn), (acc.max, mx), (acc.first_time, t0), (acc.last_time, t1)):
                if not (math.isnan(b) or a == b or _close(a, b)):
                    raise IndexMismatch(f"vector {vid}: index summary differs from the data")
            if not (math.isnan(sm) or math.isnan(acc.sum) or _close(acc.sum, sm, 1e-9)):
                raise IndexMismatch(f"vector {vid}: index sum differs from the data")

    def _read_blocks(self, fd, start, stop, ids, counts) -> None:
        """Read adjacent blocks [start, stop) and check ids and line counts block by block."""
        got_parts = []
        pos = start
        carry = b""
        while pos < stop:
            n = min(CHUNK, stop - pos)
            data = os.pread(fd, n, pos)
            if len(data) != n:
                raise IndexMismatch("the .vec is shorter than the index says")
            pos += n
            self._bytes_read += n
            buf = carry + data if carry else data
            cut = buf.rfind(b"\n") + 1 if pos < stop else len(buf)
            if cut == 0:
                carry = buf
                continue
            if buf[cut - 1] != 10:
                raise IndexMismatch("a block does not end at a line end")
            res = self.bulk(memoryview(buf)[:cut])
            if res is None:
                raise IndexMismatch("data lines that do not parse where the index puts a block")
            self._store(*res)
            got_parts.append(res[0])  # declaration index per line
            carry = buf[cut:]
        # the declarations of the blocks' ids (all declared: the caller checked), compared with
        # the parsed lines' as runs of the index's line counts, without a per-line id array
        if self._lut_dirty:
            self._build_lut()
        bpos = np.searchsorted(self._ids, ids)
        if bpos.size and (bpos.max() >= self._ids.size or not np.array_equal(self._ids[bpos], ids)):
            raise IndexMismatch("block of a vector the .vec does not declare")
        got = got_parts[0] if len(got_parts) == 1 else (
            np.concatenate(got_parts) if got_parts else np.zeros(0, np.int32))
        if not fastparse.runs_match(got, bpos, counts):
            raise IndexMismatch("block ids or line counts differ from the index")


def _close(a, b, rel=1e-12):
    return a == b or abs(a - b) <= rel * max(abs(a), abs(b))


class VciIndex:
    """A parsed .vci: run ids, vector declarations and the block table."""

    def __init__(self):
        self.runs: list[str] = []
        self.vectors: dict[int, tuple[str, str, str]] = {}
        self.blocks = None

    @classmethod
    def load(cls, path: Path, vec_size: int) -> "VciIndex":
        try:
            raw = Path(path).read_bytes()
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise IndexMismatch(f"unreadable ({e.__class__.__name__})") from None
        lines = text.split("\n")
        if not lines or not lines[0].startswith("file "):
            raise IndexMismatch("no 'file' fingerprint line")
        fp = lines[0].split()
        try:
            if int(fp[1]) != vec_size:
                raise IndexMismatch(f"fingerprint size {fp[1]} != .vec size {vec_size}")
        except (IndexError, ValueError):
            raise IndexMismatch("bad fingerprint line") from None
        if not text.endswith("\n"):
            raise IndexMismatch("index truncated")
        self = cls()
        rows = []
        columns = {}
        for ln, line in enumerate(lines[1:], start=2):
            if not line:
                continue
            if line[0].isdigit():
                rows.append(line)
                continue
            try:
                toks = tokenize(line)
            except ResultsError:
                raise IndexMismatch(f"line {ln} malformed") from None
            kw = toks[0]
            if kw == "run":
                self.runs.append(toks[1])
            elif kw == "vector":
                if len(toks) not in (4, 5):
                    raise IndexMismatch(f"line {ln} malformed")
                cols = toks[4] if len(toks) == 5 else "TV"
                self.vectors[int(toks[1])] = (toks[2], toks[3], cols)
                columns[int(toks[1])] = cols
            elif kw in ("version", "attr", "itervar", "config", "param"):
                pass
            else:
                raise IndexMismatch(f"line {ln}: unexpected {kw[:20]!r}")
        if len(self.runs) != 1:
            raise IndexMismatch("index of several runs")
        ids, offset, length, count, stats = _block_rows(rows, columns)
        n = ids.size
        if n and (offset.min() < 0 or length.min() <= 0 or count.min() <= 0
                  or (offset + length).max() > vec_size):
            raise IndexMismatch("block outside the .vec")
        order = np.argsort(offset, kind="stable")
        self.blocks = {"id": ids[order], "offset": offset[order], "length": length[order],
                       "count": count[order], "stats": stats[order]}
        return self

    def per_vector(self) -> dict:
        """vid -> (count, min, max, sum, sqrsum, firstT, lastT) over all blocks (only for checks:
        min/max are nan where the first block's is, as a running min()/max() gives)."""
        b = self.blocks
        order = np.argsort(b["id"], kind="stable")  # blocks are in offset order already
        ids, cnt, st = b["id"][order], b["count"][order], b["stats"][order]
        if not ids.size:
            return {}
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        last = np.r_[starts[1:], ids.size] - 1
        first = st[starts]
        with np.errstate(invalid="ignore"):
            mn = np.where(np.isnan(first[:, 2]), np.nan, np.fmin.reduceat(st[:, 2], starts))
            mx = np.where(np.isnan(first[:, 3]), np.nan, np.fmax.reduceat(st[:, 3], starts))
            sm = np.add.reduceat(st[:, 4], starts)
            sq = np.add.reduceat(st[:, 5], starts)
        n = np.add.reduceat(cnt, starts)
        return {int(ids[k]): (int(n[j]), float(mn[j]), float(mx[j]), float(sm[j]), float(sq[j]),
                              float(first[j, 0]), float(st[last[j], 1]))
                for j, k in enumerate(starts)}


def _block_rows(rows: list[str], columns: dict):
    """The block lines of a .vci in one vectorized pass: ids, offset, length, count and
    stats[n, 6] (firstT lastT min max sum sqrsum); IndexMismatch if any is malformed."""
    n = len(rows)
    if not n:
        return (np.zeros(0, np.int64),) * 4 + (np.zeros((0, 6)),)
    blob = ("\n".join(rows) + "\n").encode()
    if fastparse.backend() == "native":  # one C pass, numbers as strtod gives them
        res = fastparse.parse_rows(blob, n)
        if res is None:
            raise IndexMismatch("malformed block line")
        flat, per_row = res
    else:
        raw = np.frombuffer(blob, dtype=np.uint8)
        gap = (raw == 32) | (raw == 9) | (raw == 13) | (raw == 10)
        tok = ~gap & np.r_[True, gap[:-1]]
        row_starts = np.r_[0, np.flatnonzero(raw == 10)[:-1] + 1, raw.size]
        per_row = np.diff(np.searchsorted(np.flatnonzero(tok), row_starts))  # no per-byte int64 array
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                flat = np.fromstring(blob, dtype=np.float64, sep=" ")
            except (DeprecationWarning, ValueError):
                raise IndexMismatch("malformed block line") from None
    if per_row.size != n or flat.size != per_row.sum():
        raise IndexMismatch("malformed block line")
    at = np.cumsum(per_row) - per_row
    vids, inv = np.unique(flat[at], return_inverse=True)
    try:
        has_e = np.array(["E" in columns[int(v)] for v in vids], dtype=bool)[inv]
    except (KeyError, ValueError, OverflowError):
        raise IndexMismatch("malformed block line") from None
    if not np.array_equal(per_row, np.where(has_e, 12, 10)):
        raise IndexMismatch("malformed block line")
    k = at + np.where(has_e, 5, 3)
    ints = flat[np.stack((at, at + 1, at + 2, k + 2))]
    if not ((np.abs(ints) < 2.0 ** 53).all() and (ints == np.floor(ints)).all()):
        raise IndexMismatch("malformed block line")
    ids, offset, length, count = ints.astype(np.int64)
    stats = flat[np.stack((k, k + 1, k + 3, k + 4, k + 5, k + 6), axis=1)]
    return ids, offset, length, count, stats
