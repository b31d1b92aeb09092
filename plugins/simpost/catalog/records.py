"""What the catalog answers: plain frozen dataclasses, detached from any database session."""
from __future__ import annotations

import dataclasses
from datetime import datetime

# A copy's life: pending (upload started) -> present | failed; present -> lost (verify found it gone
# or changed) | deleted (retention) | archived (moved to the archive tier); restoring (being copied back).
STATES = ("pending", "present", "failed", "lost", "deleted", "archived", "restoring")
# Copies verify completes again from a present one.
REPAIRABLE = ("failed", "lost")
# Copies that count towards an archive's wanted number: there, on their way, or where retention put them.
SETTLED = ("present", "pending", "deleted", "archived", "restoring")


@dataclasses.dataclass(frozen=True)
class Copy:
    """One archive on one backend (a backend holds an archive at most once: remote names are
    stable per archive). `checksum` is the service's own ("kind:value", e.g.
    "dropbox_content_hash:..."), as stat() saw it when the copy was known good: verify compares
    the service's answer with it where the service keeps no SHA-256. `expires`: until when the copy
    is kept (None: until deleted), what retention goes by; `link_expires`: when `link` stops working
    while the copy stays (an S3 presigned link lasts at most 7 days), None when it lasts as long."""

    archive_sha256: str
    backend: str
    state: str
    remote_id: str | None
    remote_name: str | None
    link: str | None
    checksum: str | None
    uploaded: datetime | None
    expires: datetime | None
    last_verified: datetime | None
    attempts: int
    last_error: str | None
    updated_at: datetime
    # While restoring: the request holding the claim, and when a cold copy should be readable.
    claimed_by: str | None = None
    ready_by: datetime | None = None
    link_expires: datetime | None = None

    @property
    def link_until(self) -> datetime | None:
        """When the copy's link stops working: what a restore's mail and callback tell."""
        return self.link_expires or self.expires


@dataclasses.dataclass(frozen=True)
class Claim:
    """A restore request's claim on an archive: `claimed` (copy: the one it restores; took_over:
    the stale claim it replaced, if any) or not (copy: the running restore's, to join)."""

    claimed: bool
    copy: Copy
    took_over: Copy | None = None


@dataclasses.dataclass(frozen=True)
class Archive:
    """One results.zip, identified by its SHA-256, with every copy the catalog knows of."""

    sha256: str
    size: int
    simulation_id: str
    title: str | None
    run_id: str | None
    created: datetime
    copies_wanted: int
    copies: list[Copy] = dataclasses.field(default_factory=list)

    @property
    def present(self) -> list[Copy]:
        return [c for c in self.copies if c.state == "present"]


@dataclasses.dataclass(frozen=True)
class ImportResult:
    """What an import changed; all zero when the same lines are imported a second time."""

    archives_added: int
    archives_updated: int
    copies_added: int
    copies_updated: int
    copies_unchanged: int

    @property
    def changed(self) -> bool:
        return bool(self.archives_added or self.archives_updated or self.copies_added or self.copies_updated)
