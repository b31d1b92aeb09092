"""The engine's exception type and its record of what a reader could not trust (a Problem)."""
from __future__ import annotations

from dataclasses import asdict, dataclass


class ResultsError(Exception):
    """A clear, user-facing error about result files (missing, truncated, corrupt, bad option)."""

    def __init__(self, message: str, *, path=None, line: int | None = None):
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path + (f":{line}" if line is not None else "") + ": "
        super().__init__(where + message)


@dataclass(frozen=True)
class Problem:
    """Something a reader skipped or distrusted in one file. fatal: the whole file was skipped as
    corrupt; otherwise everything else in it was read (bytes_ignored says how much was not)."""
    path: str
    line: int | None
    message: str
    bytes_ignored: int
    fatal: bool

    @classmethod
    def from_error(cls, e: ResultsError, path, size: int) -> "Problem":
        return cls(e.path or str(path), e.line, e.message, size, True)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        where = self.path + (f":{self.line}" if self.line is not None else "")
        what = "file skipped" if self.fatal else f"{self.bytes_ignored} bytes ignored"
        return f"{where}: {self.message} ({what})"
