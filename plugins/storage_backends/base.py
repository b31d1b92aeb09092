"""The one small interface every storage service implements (see DESIGN.md)."""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol


@dataclasses.dataclass(frozen=True)
class Upload:
    """What an upload left on the service; JSON-able through `as_dict` for XCom. `expires_at`: until
    when the copy is kept (its keep days; None: kept until deleted); `link_expires_at`: when a link
    that ends on its own stops working although the copy stays (an S3 presigned link lives at most
    7 days), None when the link lasts as long as the copy."""

    remote_id: str
    link: str
    size: int
    sha256: str
    uploaded_at: datetime
    expires_at: datetime | None
    link_expires_at: datetime | None = None

    @property
    def link_until(self) -> datetime | None:
        """When the link stops working: what the result, the mail and the callback tell."""
        return self.link_expires_at or self.expires_at

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for key in ("uploaded_at", "expires_at", "link_expires_at"):
            d[key] = d[key].isoformat() if d[key] else None
        return d


def keep_until(uploaded_at: datetime, keep_days: int) -> datetime | None:
    """Until when a copy is kept: keep days after its upload; keep days 0 keeps it until deleted."""
    return uploaded_at + timedelta(days=keep_days) if keep_days > 0 else None


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One file this project uploaded, with the service's own modification time and, where the
    service's listing carries it, the same checksum its `stat` gives (so verify can read a whole
    folder in one call instead of asking per copy)."""

    remote_id: str
    name: str
    size: int
    modified_at: datetime
    checksum: str | None = None
    checksum_kind: str | None = None

    def stat(self) -> RemoteStat:
        """What `stat(remote_id)` would say of this file, from the listing."""
        return RemoteStat(exists=True, size=self.size, checksum=self.checksum, checksum_kind=self.checksum_kind)


@dataclasses.dataclass(frozen=True)
class RemoteStat:
    """What a service says of one copy today, for the catalog's verify: whether it is still
    there, its size, and the service's own checksum where it keeps one (`checksum_kind` names
    it: "sha256" for local_cloud and S3, "dropbox_content_hash", "seafile_file_id")."""

    exists: bool
    size: int | None = None
    checksum: str | None = None
    checksum_kind: str | None = None


class BackendError(Exception):
    """A service refused or failed; the message never carries a secret."""


class Backend(Protocol):
    # True when list_uploads() gives every file's size and the checksum stat() gives: verify then
    # checks a backend's copies from one listing (a call per page) instead of a stat per copy.
    LISTING_VERIFIES: bool

    def upload(self, path: str, remote_name: str, keep_days: int) -> Upload: ...

    def list_uploads(self) -> list[RemoteFile]: ...

    def delete(self, remote_id: str) -> None: ...

    def check(self) -> tuple[bool, str]: ...

    def stat(self, remote_id: str) -> RemoteStat: ...

    def download(self, remote_id: str, path: str) -> None: ...


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in a service's answer before it becomes part of a message.

    Services sometimes echo what they were sent; this is the last line of defence that keeps a
    token out of an exception text even when a service does that.
    """
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def file_sha256(path: str, block: int = 1 << 20) -> str:
    """SHA-256 of a file read in blocks, so memory does not grow with the archive."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(block):
            digest.update(data)
    return digest.hexdigest()
