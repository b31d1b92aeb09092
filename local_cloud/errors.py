"""The one exception the store and the routes raise to refuse a request."""
from __future__ import annotations

import errno


class Refusal(Exception):
    """A request refused with an HTTP status and a reason (answered as {"detail": reason})."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT from the OS, or SQLite's 'database or disk is full'."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "disk is full" in str(exc) or "disk I/O error" in str(exc)
