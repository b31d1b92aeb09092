"""The one small interface every storage service implements (see DESIGN.md)."""
from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Protocol


@dataclasses.dataclass(frozen=True)
class Upload:
    """What an upload left on the service; JSON-able through `as_dict` for XCom."""

    remote_id: str
    link: str
    size: int
    sha256: str
    uploaded_at: datetime
    expires_at: datetime | None

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["uploaded_at"] = self.uploaded_at.isoformat()
        d["expires_at"] = self.expires_at.isoformat() if self.expires_at else None
        return d


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One file this project uploaded, with the service's own modification time."""

    remote_id: str
    name: str
    size: int
    modified_at: datetime


class BackendError(Exception):
    """A service refused or failed; the message never carries a secret."""


class Backend(Protocol):
    def upload(self, path: str, remote_name: str, keep_days: int) -> Upload: ...

    def list_uploads(self) -> list[RemoteFile]: ...

    def delete(self, remote_id: str) -> None: ...

    def check(self) -> tuple[bool, str]: ...
