"""One pass over a table of the parse store keeps what stats needs of it: per result name the
figures of the tables, its title and unit, and where its drawn items are in parsed.json.

Memory grows with the number of names (at most MAX_NAMES per kind) and 8 bytes per drawn item,
never with the items themselves: 3.7 M scalars or 1 M vector declarations stay within bounds.
The charts read their items again, one at a time, from the offsets kept here.
"""
from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from typing import Callable

from .errors import ResultsError
from .naming import NameInfo, describe
from .selection import Selection
from .store import Table
from .tables import Fold, Kind, NameRow, where

#: distinct result names of one kind a run may have (each costs a few hundred bytes)
MAX_NAMES = 100_000
#: items not drawn (vectors declared without data) kept by name; the rest are only counted
UNDRAWN_KEPT = 500


@dataclass
class NameGroup:
    """The items of one result name."""
    name: str
    fold: Fold = field(default_factory=Fold)
    title: str = ""
    unit: str = ""
    offsets: array = field(default_factory=lambda: array("q"))  # drawn items' rows in parsed.json
    t0: float = math.inf  # vectors: first and last sample time over the drawn ones
    t1: float = -math.inf
    attrs: dict | None = None  # of the first drawn item
    enums: set = field(default_factory=set)  # `enum` attributes of the drawn items (two at most)

    def add(self, item: dict, where_: str, figures: tuple, drawn: bool, offset: int) -> None:
        self.fold.add(where_, *figures)
        attrs = item.get("attrs") or {}
        self.title = self.title or attrs.get("title", "")
        self.unit = self.unit or attrs.get("unit", "")
        if not drawn:
            return
        self.offsets.append(offset)
        if self.attrs is None:
            self.attrs = attrs
        if "first_time" in item:
            self.t0 = min(self.t0, float(item["first_time"]))
            self.t1 = max(self.t1, float(item["last_time"]))
        if len(self.enums) < 2:
            self.enums.add(attrs.get("enum"))

    def info(self, sel: Selection) -> NameInfo:
        return describe(self.name, self.title, self.unit, sel)

    def enum(self) -> str | None:
        """The `enum` attribute all drawn items share, if they do."""
        return next(iter(self.enums)) if len(self.enums) == 1 else None


@dataclass
class Gathered:
    kind: str
    count: int = 0  # items selected
    drawn: int = 0
    groups: dict[str, NameGroup] = field(default_factory=dict)
    undrawn: list[dict] = field(default_factory=list)  # the first UNDRAWN_KEPT
    undrawn_count: int = 0

    def names(self) -> list[NameGroup]:
        return [self.groups[n] for n in sorted(self.groups)]

    def rows(self, sel: Selection, with_samples: bool) -> list[NameRow]:
        return [g.fold.row(g.info(sel), with_samples) for g in self.names()]


def gather(table: Table, kind: Kind, keep: Callable[[dict], bool], labels: dict,
           each: Callable[[dict], None] | None = None, keep_undrawn: bool = False) -> Gathered:
    """keep(item): selected or not; each(item) is called for every selected item in file order
    (its CSV line, for instance)."""
    g = Gatherer(kind, keep, labels, each, keep_undrawn)
    for offset, item in table.scan():
        g.item(offset, item)
    return g.out


class Gatherer:
    """gather()'s state, fed one item at a time (or plain scalars in bulk: scalartable.py)."""

    def __init__(self, kind: Kind, keep: Callable[[dict], bool], labels: dict,
                 each: Callable[[dict], None] | None = None, keep_undrawn: bool = False):
        self.kind, self.keep, self.labels, self.each, self.keep_undrawn = kind, keep, labels, each, keep_undrawn
        self.out = Gathered(kind.name)

    def group(self, name: str) -> NameGroup:
        group = self.out.groups.get(name)
        if group is None:
            if len(self.out.groups) >= MAX_NAMES:
                raise ResultsError(f"more than {MAX_NAMES:,} distinct {self.kind.name} names "
                                   "(limit of the engine): select fewer with the statistics option")
            group = self.out.groups[name] = NameGroup(name)
        return group

    def item(self, offset: int, item: dict) -> None:
        if not self.keep(item):
            return
        out = self.out
        out.count += 1
        if self.each is not None:
            self.each(item)
        group = self.group(item["name"])
        drawn = self.kind.drawn(item)
        group.add(item, where(item, self.labels), self.kind.figures(item), drawn, offset)
        if drawn:
            out.drawn += 1
        elif self.keep_undrawn:
            out.undrawn_count += 1
            if len(out.undrawn) < UNDRAWN_KEPT:
                out.undrawn.append(item)
