"""The scalar table of the parse store into csv/scalars.csv, the study and the per-name figures, a
window at a time: a study's or a large network's .sca holds millions of scalars, and one dict,
one CSV row and one fold per scalar cost more than everything else of the export together.

Rows of the columns (scalarstore.py) in runs of one run are tabled in bulk: their CSV lines are
the stored lines behind the run's field, by one byte replacement; their figures are folded per
name with numpy in file order (np.bincount adds in index order, from the fold's running sum on),
so every output has the bits gather() gives row by row. JSON rows, short runs and any selection
but "all" go through gather()'s path, in file order between them.
"""
from __future__ import annotations

import csv
import io

import numpy as np

from .gather import Gathered, Gatherer, NameGroup
from .scalarstore import ScalarTable, Window, split_line
from .study.compute import Study
from .tables import SCALAR

#: runs shorter than this go row by row (numpy's cost per call would be more than they take)
SMALL = 32


def gather_scalars(table: ScalarTable, keep, labels: dict, out, add: Study | None, everything: bool) -> Gathered:
    """gather(table, SCALAR, keep, labels, each) where each(item) writes the item's CSV row to out
    (a binary file) and gives it to the study add (None: no study); everything: keep() keeps
    every item."""
    sio = io.StringIO()
    writer = csv.writer(sio, lineterminator="\n")

    def each(item: dict) -> None:
        writer.writerow([item["run"], item["module"], item["name"], item["value"]])
        if add is not None:
            add.scalar(item)
    g = Gatherer(SCALAR, keep, labels, each)
    bulk = _Bulk(g, table, out, add)
    for w in table.windows():
        for lo, hi, js in _segments(w):
            if everything and hi - lo >= SMALL and w.rows["name"][lo] >= 0:
                _flush(sio, out)
                bulk.run(w, lo, hi)
            else:
                for item in table.dicts(w, lo, hi, js):
                    g.item(0, item)
        _flush(sio, out)
    return g.out


def _flush(sio: io.StringIO, out) -> None:
    if sio.tell():
        out.write(sio.getvalue().encode("utf-8"))
        sio.seek(0)
        sio.truncate()


def _segments(w: Window):
    """(first row, end, the index of its JSON row) of each run of rows of one run, and of each
    run of JSON rows, in order."""
    name = w.rows["name"]
    key = np.where(name < 0, -1, w.rows["run"])
    br = np.flatnonzero(key[1:] != key[:-1]) + 1
    js = np.r_[0, np.cumsum(name < 0)]
    for lo, hi in zip(np.r_[0, br].tolist(), np.r_[br, key.size].tolist()):
        yield lo, hi, int(js[lo])


class _Bulk:
    """Runs of column rows of one run, every one kept."""

    def __init__(self, g: Gatherer, table: ScalarTable, out, add: Study | None):
        self.g, self.table, self.out, self.add = g, table, out, add
        self.prefixes: dict[str, bytes] = {}
        # per attr block (and a last entry for "none"): does it have a title, a unit?
        self.has = {key: np.array([bool(a.get(key)) for a in table.attrs] + [False]) for key in ("title", "unit")}

    def prefix(self, run: str) -> bytes:
        """The run's CSV field and its comma, as csv.writer quotes it."""
        p = self.prefixes.get(run)
        if p is None:
            sio = io.StringIO()
            csv.writer(sio, lineterminator="\n").writerow([run, "x"])
            p = self.prefixes[run] = sio.getvalue()[:-2].encode("utf-8")
        return p

    def run(self, w: Window, lo: int, hi: int) -> None:
        rows = w.rows[lo:hi]
        run = self.table.runs[int(rows["run"][0])]
        text = w.text[w.starts[lo]:w.starts[hi]]
        p = self.prefix(run)
        self.out.write(p)
        self.out.write(text[:-1].replace(b"\n", b"\n" + p))
        self.out.write(b"\n")
        self.g.out.count += hi - lo
        labels = self.g.labels

        def where(i: int) -> str:
            module = split_line(w.line(lo + i).decode("utf-8"))[0]
            return f"{labels[run]} {module}" if len(labels) > 1 else module
        codes, x, attrs = rows["name"], rows["value"], rows["attrs"]
        groups, inv = self.fold(codes, x, where)
        self.describe(groups, inv, attrs)
        if self.add is not None and run in self.add.of_run:
            t = self.table
            lines = text.decode("utf-8").split("\n")[:-1]
            self.add.add_scalars([run] * len(lines), [split_line(s)[0] for s in lines],
                                 [t.names[c] for c in codes.tolist()], x.tolist(),
                                 [t.attrs[a] if a >= 0 else None for a in attrs.tolist()])

    def fold(self, codes: np.ndarray, x: np.ndarray, where) -> tuple[list[NameGroup], np.ndarray]:
        """Fold.add() of every row, by name; (the names' groups, each row's index among them)."""
        u, inv = np.unique(codes, return_inverse=True)
        m = u.size
        groups = [self.g.group(self.table.names[c]) for c in u.tolist()]
        ok = ~np.isnan(x)
        inv_ok, x_ok, at = inv[ok], x[ok], np.flatnonzero(ok)
        cnt, good = np.bincount(inv, minlength=m).tolist(), np.bincount(inv_ok, minlength=m).tolist()
        seeds = np.array([gr.fold.weighted for gr in groups])
        sums = np.bincount(np.r_[np.arange(m), inv_ok], weights=np.r_[seeds, x_ok], minlength=m).tolist()
        lo, hi = _first(inv_ok, x_ok, at, m, np.minimum), _first(inv_ok, x_ok, at, m, np.maximum)
        for j, gr in enumerate(groups):
            f = gr.fold
            f.n += cnt[j]
            if not good[j]:
                continue
            f.values += good[j]
            f.samples += good[j]
            f.weighted = sums[j]
            f.weight += float(good[j])
            v = float(x[lo[j]])
            if f.lo is None or v < f.lo[0]:
                f.lo = (v, where(lo[j]))
            v = float(x[hi[j]])
            if f.hi is None or v > f.hi[0]:
                f.hi = (v, where(hi[j]))
        return groups, inv

    def describe(self, groups: list[NameGroup], inv: np.ndarray, attrs: np.ndarray) -> None:
        """A name's title and unit: those of its first row that has one."""
        for key, has in self.has.items():
            if all(getattr(gr, key) for gr in groups):
                continue
            rows = np.flatnonzero(has[attrs])
            gi = inv[rows]
            for j, first in zip(*np.unique(gi, return_index=True)):
                if not getattr(groups[j], key):
                    setattr(groups[j], key, self.table.attrs[int(attrs[rows[first]])][key])


def _first(inv: np.ndarray, x: np.ndarray, at: np.ndarray, m: int, op) -> list[int]:
    """Per group (inv: each value's group of m), the row (at) of its first smallest (op
    np.minimum) or largest (np.maximum) value."""
    ext = np.full(m, np.inf if op is np.minimum else -np.inf)
    op.at(ext, inv, x)
    hit = np.flatnonzero(x == ext[inv])
    out = np.zeros(m, dtype=np.int64)
    gi = inv[hit]
    u, first = np.unique(gi, return_index=True)
    out[u] = at[hit[first]]
    return out.tolist()
