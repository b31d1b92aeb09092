"""The scalar table of the parse store, in columns: a study's or a large network's .sca holds
millions of scalars, and a JSON row each (written, read back, decoded) cost more than the rest
of the export together.

  scalars.cols  one ROW record per scalar, in file order: its value, name code, attr block code,
                run code and the bytes of its line in scalars.txt; name code -1 marks a scalar
                kept as a JSON row instead (the next row of parsed.json's "scalars" table)
  scalars.txt   the CSV line "module,name,value" (a field with a comma quoted) of every scalar
                that has a name code, in the same order
  parsed.json   "scalars": the other scalars' rows (read line by line: quoted names with escapes,
                Windows spellings, SQLite files, a scalar whose attr lines a piece boundary cut)
  meta "scalar_columns": the rows' count and the names, attr blocks and runs the codes stand for

The native reader (fastparse.scalar_items) fills the columns from the .sca text in bulk; stats
reads them back a window of WINDOW rows at a time (scalartable.py), so memory stays bounded.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import fastparse
from .errors import ResultsError
from .textfmt import tokenize

ROW = np.dtype([("value", "<f8"), ("name", "<i4"), ("attrs", "<i4"), ("run", "<i4"), ("length", "<i4")])
WINDOW = 1 << 18
FILES = ("scalars.cols", "scalars.txt")


class ScalarSpill:
    """The write side, one per Sink: JSON rows through a spill (the newest stays open for its
    attr lines), bulk items straight into the column and text files."""

    def __init__(self, parsed_dir: Path, json_spill):
        self.dir = Path(parsed_dir)
        self.json = json_spill
        self.cols = open(self.dir / "scalars.cols.part", "w+b")
        self.text = open(self.dir / "scalars.txt.part", "w+b")
        self.reader = None  # fastparse.ScalarReader, made on the first bulk read (False: none)
        self.runs: dict[str, int] = {}
        self.n = 0

    def __len__(self) -> int:
        return self.n

    @property
    def pending(self):
        return self.json.pending

    def add(self, row: dict) -> None:
        """A scalar read line by line (attr lines may still be added to its attrs)."""
        self.json.add(row)
        self.cols.write(np.array([(np.nan, -1, -1, -1, 0)], dtype=ROW).tobytes())
        self.n += 1

    def take(self, buf: bytes, pos: int, end: int, run_id: str, keep: bool) -> fastparse.ScalarItems | None:
        """The complete scalar items the native reader takes from buf[pos:end] (kept only when
        keep); None if none (or without the native reader)."""
        if self.reader is None:
            self.reader = fastparse.ScalarReader.available() and fastparse.ScalarReader()
        if not self.reader:
            return None
        items = self.reader.read(buf, pos, end)
        if not len(items):
            return None
        if keep:
            self.json.flush()
            rec = np.empty(len(items), dtype=ROW)
            rec["value"], rec["name"], rec["attrs"], rec["length"] = items.value, items.name, items.attrs, items.length
            rec["run"] = self.runs.setdefault(run_id, len(self.runs))
            self.cols.write(rec.tobytes())
            self.text.write(items.text)
            self.n += len(items)
        return items

    def checkpoint(self):
        return self.json.checkpoint(), self.cols.tell(), self.text.tell(), self.n

    def rollback(self, cp) -> None:
        js, cols, text, self.n = cp
        self.json.rollback(js)
        for f, at in ((self.cols, cols), (self.text, text)):
            f.seek(at)
            f.truncate()

    def finish(self) -> dict:
        """The column files in place; what meta keeps of them."""
        self.json.flush()
        for f in (self.cols, self.text):
            f.close()
            os.replace(f.name, f.name.removesuffix(".part"))
        r = self.reader
        names = [b.decode("utf-8") for b in r.names.strings()] if r else []
        attrs = [_attr_block(b) for b in r.attrs.strings()] if r else []
        return {"rows": self.n, "names": names, "attrs": attrs, "runs": list(self.runs)}

    def close(self, remove: bool) -> None:
        self.json.close(remove)
        for f in (self.cols, self.text):
            f.close()
            if remove:
                Path(f.name).unlink(missing_ok=True)


def _attr_block(raw: bytes) -> dict:
    """The attrs of an interned attr block, as the line-by-line reader makes them."""
    attrs = {}
    for line in raw.decode("utf-8").split("\n")[:-1]:
        toks = tokenize(line.removesuffix("\r"))
        attrs[toks[1]] = toks[2]
    return attrs


@dataclass
class Window:
    """WINDOW rows (or fewer) of the scalar table: their records, the text of their lines (row
    k's from starts[k] to starts[k + 1], none for a JSON row) and their JSON rows, (offset, row)
    in order."""
    rows: np.ndarray
    text: bytes
    starts: np.ndarray  # int64[rows + 1]
    json_rows: list

    def line(self, k: int) -> bytes:
        """Row k's CSV line, without its line end."""
        return self.text[self.starts[k]:self.starts[k + 1] - 1]


def split_line(s: str) -> list[str]:
    """module, name and value of a CSV line of scalars.txt."""
    return s.split(",") if '"' not in s else next(csv.reader(io.StringIO(s)))


class ScalarTable:
    """The read side (Parsed.scalars): len(), the rows as dicts in file order (tests, small
    tables), or windows() for reading in bulk."""

    def __init__(self, parsed_dir: Path, json_table, meta: dict):
        self.dir = Path(parsed_dir)
        self.json = json_table
        self.count = meta["rows"]
        self.names = meta["names"]
        self.attrs = meta["attrs"]
        self.runs = meta["runs"]

    def __len__(self) -> int:
        return self.count

    def windows(self, size: int = WINDOW):
        json_rows = self.json.scan()
        with open(self.dir / "scalars.cols", "rb") as cols, open(self.dir / "scalars.txt", "rb") as text:
            while raw := cols.read(size * ROW.itemsize):
                rows = np.frombuffer(raw, dtype=ROW)
                starts = np.r_[0, np.cumsum(rows["length"], dtype=np.int64)]
                data = text.read(int(starts[-1]))
                if len(data) != starts[-1]:
                    raise ResultsError("scalars.txt ends early: parse again", path=self.dir)
                js = [next(json_rows) for _ in range(int((rows["name"] < 0).sum()))]
                yield Window(rows, data, starts, js)

    def __iter__(self):
        for w in self.windows():
            yield from self.dicts(w, 0, w.rows.size)

    def dicts(self, w: Window, lo: int, hi: int, js: int | None = None):
        """The rows lo..hi of a window as dicts (js: the index of row lo's JSON row, if known)."""
        if js is None:
            js = int((w.rows["name"][:lo] < 0).sum())
        for k, (value, name, attrs, run, _) in enumerate(w.rows[lo:hi].tolist(), lo):
            if name < 0:
                yield w.json_rows[js][1]
                js += 1
                continue
            module, _, text = split_line(w.line(k).decode("utf-8"))
            yield {"run": self.runs[run], "module": module, "name": self.names[name], "value": text,
                   "attrs": dict(self.attrs[attrs]) if attrs >= 0 else {}}
