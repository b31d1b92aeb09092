"""Several copies of a run's archive: which backends, how many must be present, and uploading one
copy with the catalog kept up to date. No Airflow here: the DAG's tasks call these.

A run names one backend or a list of them and `min_copies` (default 1). Each backend's upload is its
own task instance with its own retries; a copy that still fails on its last try is recorded `failed`
and its task ends without raising, so the other copies go on; the `copies` step then fails the run
only if fewer than `min_copies` are present. storage_verify completes failed copies later.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

from storage_backends.base import BackendError, RemoteStat, scrub


class CopiesError(ValueError):
    """The run's backends or min_copies cannot work; the message says why."""


def backend_ids(value) -> list[str]:
    """The storage_backend Param: one id or a non-empty list of unique ids."""
    ids = [value] if isinstance(value, str) else list(value or [])
    if not ids or not all(isinstance(i, str) and i for i in ids):
        raise CopiesError("storage_backend must be a backend id or a non-empty list of backend ids")
    doubles = sorted({i for i in ids if ids.count(i) > 1})
    if doubles:
        raise CopiesError(f"storage_backend names {', '.join(doubles)} more than once: one copy per backend")
    return ids


def min_copies(value, backends: list[str]) -> int:
    """How many copies must be present; more than there are backends can never succeed."""
    wanted = 1 if value is None else int(value)
    if wanted < 1:
        raise CopiesError("min_copies must be at least 1")
    if wanted > len(backends):
        raise CopiesError(f"min_copies {wanted} asks for more copies than the {len(backends)} backend(s) given"
                          f" ({', '.join(backends)}): add backends or lower min_copies")
    return wanted


def checksum_of(seen: RemoteStat) -> str | None:
    """A service's checksum as the catalog keeps it: "kind:value"."""
    return f"{seen.checksum_kind}:{seen.checksum}" if seen.checksum else None


def reason_of(err: BaseException, secrets=()) -> str:
    """One line for a copy's last error: backends' messages are secret-free by contract, other
    exceptions are scrubbed of the backend's secrets all the same."""
    text = str(err) if isinstance(err, BackendError) else f"{type(err).__name__}: {err}"
    return " ".join(scrub(text, secrets).split())[:500] or type(err).__name__


@dataclasses.dataclass(frozen=True)
class CopyResult:
    """One backend's copy as its upload task ended: what the run's copies step counts. `expires_at`:
    until when it is kept; `link_expires_at`: when its link stops working, if earlier (S3 signed)."""

    backend: str
    state: str  # present | failed
    link: str | None = None
    remote_id: str | None = None
    size: int | None = None
    sha256: str | None = None
    uploaded_at: str | None = None
    expires_at: str | None = None
    link_expires_at: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def upload_copy(catalog, backend, backend_id: str, path: str, sha256: str, name: str, keep_days: int, *,
                last_try: bool, secrets=(), log=print, started: str = "pending") -> CopyResult:
    """Upload one copy and record it: `started` (pending; a restore keeps its claim, restoring),
    then present (with what the service says of it now) or failed with its reason. A failure
    raises again unless this is the task's last try."""
    catalog.record_copy(sha256, backend_id, started, remote_name=name)
    try:
        uploaded = backend.upload(path, name, keep_days)
        seen = backend.stat(uploaded.remote_id)
        if not seen.exists or seen.size != uploaded.size or (seen.checksum_kind == "sha256" and seen.checksum != sha256):
            raise BackendError(f"{backend_id}: the upload is not on the service as sent (stat: {seen})")
    except BaseException as err:
        reason = reason_of(err, secrets)
        catalog.record_copy(sha256, backend_id, "failed", last_error=reason)
        log(f"upload to {backend_id} failed{' for good' if last_try else ''}: {reason}")
        if last_try and isinstance(err, Exception):
            return CopyResult(backend_id, "failed", reason=reason)
        raise
    catalog.record_copy(sha256, backend_id, "present", remote_id=uploaded.remote_id, remote_name=name,
                        link=uploaded.link, uploaded=uploaded.uploaded_at, expires=uploaded.expires_at,
                        link_expires=uploaded.link_expires_at, checksum=checksum_of(seen),
                        last_verified=datetime.now(timezone.utc))
    d = uploaded.as_dict()
    return CopyResult(backend_id, "present", link=uploaded.link, remote_id=uploaded.remote_id, size=uploaded.size,
                      sha256=uploaded.sha256, uploaded_at=d["uploaded_at"], expires_at=d["expires_at"],
                      link_expires_at=d["link_expires_at"])


@dataclasses.dataclass(frozen=True)
class Copies:
    """The run's copies once every upload task ended."""

    results: list[dict]
    wanted: int

    @property
    def present(self) -> list[dict]:
        return [r for r in self.results if r["state"] == "present"]

    @property
    def enough(self) -> bool:
        return len(self.present) >= self.wanted

    def shortfall(self) -> str:
        """Why the run fails: the count and every failed copy's reason."""
        failed = "; ".join(f"{r['backend']}: {r.get('reason') or r['state']}" for r in self.results
                           if r["state"] != "present")
        return (f"{len(self.present)} of {len(self.results)} copies present, {self.wanted} needed"
                f" (min_copies); failed: {failed}")

    def listing(self) -> list[dict]:
        """`copies` of the result body: backend, state, link, in the order the run named them."""
        return [{"backend": r["backend"], "state": r["state"], "link": r.get("link")} for r in self.results]

    def delivery(self) -> dict:
        """What notify delivers: the first present copy's link, size, checksum and when that link
        stops working (an S3 signed link's end, else the copy's), and every copy."""
        first = self.present[0]
        return {"link": first["link"], "size": first["size"], "sha256": first["sha256"],
                "expires_at": first.get("link_expires_at") or first["expires_at"], "copies": self.listing()}

    def note(self) -> str:
        """The copies as one line of the run's note."""
        return " · ".join(f"{c['backend']}: [{c['state']}]({c['link']})" if c["link"] else f"{c['backend']}: {c['state']}"
                          for c in self.listing())
