"""Typed results that still travel as JSON (Airflow XCom, the CLI's output).

Every result the engine returns is a dataclass deriving from Record: as_dict() gives the plain,
JSON-able dict an XCom needs, from_dict() rebuilds the dataclass from it, and item access
(result["vectors"]) keeps callers written against the former dict results working.
"""
from __future__ import annotations

import dataclasses
import typing
from functools import cache


class Record:
    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __getitem__(self, key: str):
        if key not in _field_types(type(self)):
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default=None):
        return getattr(self, key, default) if key in _field_types(type(self)) else default

    @classmethod
    def from_dict(cls, data: dict):
        """The inverse of as_dict(); nested records (and lists of them) are rebuilt too."""
        kwargs = {}
        for name, hint in _field_types(cls).items():
            if name not in data:
                continue
            value = data[name]
            item = _record_item(hint)
            if item is not None and value is not None:
                value = ([item.from_dict(v) for v in value] if isinstance(value, list)
                         else item.from_dict(value))
            kwargs[name] = value
        return cls(**kwargs)


@cache
def _field_types(cls) -> dict:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _record_item(hint):
    """The Record class inside a hint like X, list[X] or X | None (None when there is none)."""
    candidates = [hint, *typing.get_args(hint)]
    for c in candidates:
        if isinstance(c, type) and issubclass(c, Record):
            return c
        for inner in typing.get_args(c):
            if isinstance(inner, type) and issubclass(inner, Record):
                return inner
    return None
