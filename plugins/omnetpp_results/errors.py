"""The engine's exception type and its record of what a reader could not trust (a Problem)."""
from __future__ import annotations

from dataclasses import dataclass

from .record import Record


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
class Problem(Record):
    """Something a reader skipped or distrusted in one file, which did not stop the run. skipped:
    the whole file was left out as corrupt; otherwise everything else in it was read
    (bytes_ignored says how much was not). action: what was done instead, when it is neither
    (a chart that could not be drawn: its numbers are still in csv/)."""
    path: str
    line: int | None
    message: str
    bytes_ignored: int = 0
    skipped: bool = False
    action: str = ""

    def done(self) -> str:
        """What was done about it, in a few words (the report's last column)."""
        return self.action or ("skipped as corrupt" if self.skipped else "read, damaged parts left out")

    @classmethod
    def from_error(cls, e: ResultsError, path, size: int) -> "Problem":
        return cls(e.path or str(path), e.line, e.message, size, True)

    def describe(self) -> str:
        where = self.path + (f":{self.line}" if self.line is not None else "")
        what = self.action or ("file skipped" if self.skipped else f"{self.bytes_ignored} bytes ignored")
        return f"{where}: {self.message} ({what})"
