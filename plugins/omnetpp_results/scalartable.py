"""The scalar table of parsed.json into csv/scalars.csv, the study and the per-name figures, in
blocks: a study's or a large network's .sca holds millions of scalars, and one json.loads(), one
CSV row and one fold per scalar cost more than everything else of the export together.

A row as the .sca reader writes it for a plain scalar line (no attributes; run, module, name and
value without quote, backslash, comma or control character) is read by one regular expression
per block; its CSV line is its four fields as they are (nothing to quote) and its figures are
folded per name with numpy, in file order, so every output is what gather() makes of it row by
row. Any other row goes through gather()'s path.
"""
from __future__ import annotations

import csv
import json
import re
from typing import Callable

import numpy as np

from .errors import ResultsError
from .gather import Gathered, Gatherer
from .store import Table
from .study.compute import Study
from .tables import SCALAR, num

_FIELD = rb'([^"\\,\x00-\x1f]*)'
_ROW = re.compile(rb'\{"run": "%s", "module": "%s", "name": "%s", "value": "%s", "attrs": \{\}\},?\n'
                  % (_FIELD, _FIELD, _FIELD, _FIELD))
BLOCK = 4 << 20


def gather_scalars(table: Table, keep: Callable[[dict], bool], labels: dict, csv_out,
                   add: Study | None, everything: bool) -> Gathered:
    """gather(table, SCALAR, keep, labels, each) where each(item) writes the item's CSV row to
    csv_out and gives it to the study add (None: no study); everything: keep() keeps every item."""
    writer = csv.writer(csv_out, lineterminator="\n")

    def each(item: dict) -> None:
        writer.writerow([item["run"], item["module"], item["name"], item["value"]])
        if add is not None:
            add.scalar(item)
    g = Gatherer(SCALAR, keep, labels, each)
    with open(table.path, "rb") as f:
        f.seek(table.offset)
        offset, left, carry = table.offset, table.count, b""
        while left:
            data = f.read(BLOCK)
            buf = carry + data
            end = _line_end(buf, left)
            lines, carry = buf[:end], buf[end:]
            n = lines.count(b"\n")
            if not data and not n:
                raise ResultsError("parsed.json ends inside the scalar table: parse again", path=table.path)
            rows = _ROW.findall(lines) if everything else []
            if len(rows) == n:  # the usual case: every row plain
                _plain(g, rows, csv_out, add)
            else:
                _mixed(g, offset, lines, csv_out, add, everything)
            offset += len(lines)
            left -= n
    return g.out


def _line_end(buf: bytes, left: int) -> int:
    """Where the complete lines of buf end, at most `left` of them."""
    end = buf.rfind(b"\n") + 1
    if buf.count(b"\n", 0, end) <= left:
        return end
    pos = 0
    for _ in range(left):
        pos = buf.index(b"\n", pos) + 1
    return pos


def _mixed(g: Gatherer, offset: int, lines: bytes, csv_out, add, everything: bool) -> None:
    """Rows of which some are not plain: runs of plain ones in bulk, the others as gather()
    reads them, in file order."""
    batch = []
    for line in lines.splitlines(keepends=True):
        m = _ROW.fullmatch(line) if everything else None
        if m is not None:
            batch.append(m.groups())
        else:
            _plain(g, batch, csv_out, add)
            batch = []
            g.item(offset, json.loads(line.rstrip(b",\n")))
        offset += len(line)
    _plain(g, batch, csv_out, add)


def _plain(g: Gatherer, rows: list[tuple[bytes, bytes, bytes, bytes]], csv_out, add) -> None:
    """Plain rows, every one kept: their CSV lines, the study, the figures per name."""
    if not rows:
        return
    csv_out.write((b"\n".join(map(b",".join, rows)) + b"\n").decode("utf-8"))
    runs, modules, names, values = zip(*rows)
    try:
        x = np.array(list(map(float, values)), dtype=np.float64)
    except ValueError:  # a value that is no number: the study leaves it out, the figures count it
        x = None
    if add is not None and x is not None:
        add.add_scalars(*map(_strings, (runs, modules, names)), x.tolist())
    elif add is not None:
        for r in rows:
            add.scalar(dict(zip(("run", "module", "name", "value"), map(bytes.decode, r)), attrs={}))
    if x is None:
        x = np.array([num(v.decode("utf-8")) for v in values], dtype=np.float64)
    g.out.count += len(rows)
    keys, inverse = np.unique(np.array(names), return_inverse=True)  # bytes: compared as such
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(keys.size + 1))
    for k, name in enumerate(keys.tolist()):
        idx = order[bounds[k]:bounds[k + 1]]
        _fold(g, name.decode("utf-8"), x[idx], idx, runs, modules)


def _strings(column: tuple[bytes, ...]) -> list[str]:
    """A column of fields decoded at once (fields hold no line end)."""
    return b"\n".join(column).decode("utf-8").split("\n")


def _fold(g: Gatherer, name: str, xs: np.ndarray, idx: np.ndarray, runs, modules) -> None:
    """Fold.add() for each value of one name, in file order (the sum in that order too)."""
    fold = g.group(name).fold
    fold.n += xs.size
    ok = ~np.isnan(xs)
    good, at = xs[ok], idx[ok]
    if not good.size:
        return
    fold.values += good.size
    fold.samples += good.size
    fold.weighted = float(np.cumsum(np.concatenate(([fold.weighted], good)))[-1])
    fold.weight += float(good.size)
    lo, hi = int(np.argmin(good)), int(np.argmax(good))
    if fold.lo is None or good[lo] < fold.lo[0]:
        fold.lo = (float(good[lo]), _where(g, runs[at[lo]], modules[at[lo]]))
    if fold.hi is None or good[hi] > fold.hi[0]:
        fold.hi = (float(good[hi]), _where(g, runs[at[hi]], modules[at[hi]]))


def _where(g: Gatherer, run: bytes, module: bytes) -> str:
    labels, module = g.labels, module.decode("utf-8")
    return f"{labels[run.decode('utf-8')]} {module}" if len(labels) > 1 else module
