"""The one exception type of the engine: a message a user can act on (file and line where known)."""
from __future__ import annotations


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
