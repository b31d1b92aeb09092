"""The archive tier (no Airflow): an archive copied from one backend to another, its bytes checked
on the way, for storage_retention (hot copy -> archive backend) and storage_restore (archived copy
-> a backend people download from). An s3 archive backend with `archive_storage_class` keeps its
archived copies in that (cold) class; storage_restore thaws them first (simpost.restore).

A copy is moved, never lost: the source is downloaded into the work dir and its SHA-256 compared
with the catalog's before anything is uploaded; the upload is then checked with the service's
stat() (size, and its SHA-256 where it keeps one) by simpost.copies.upload_copy, which records the
target copy present with the service's checksum, or failed with its reason.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from simpost.catalog import Archive, Catalog, Copy
from simpost.copies import CopyResult, reason_of, upload_copy
from storage_backends.base import BackendError, file_sha256
from storage_backends.naming import remote_name


@dataclasses.dataclass(frozen=True)
class ArchiveTier:
    """Where a backend's expiring archives go (its config's `archive_to`), opened."""

    backend_id: str
    backend: object
    keep_days: int


class ArchiveClassUploads:
    """The archive tier's backend with its uploads in the service's archive storage class (s3's
    `archive_storage_class`, e.g. GLACIER): upload_copy only knows upload(path, name, keep_days)."""

    def __init__(self, backend, storage_class: str):
        self.backend, self.storage_class = backend, storage_class

    def upload(self, path: str, remote_name: str, keep_days: int):
        return self.backend.upload(path, remote_name, keep_days, storage_class=self.storage_class)

    def __getattr__(self, name):
        return getattr(self.backend, name)


def in_archive_class(backend):
    """The backend as the archive tier writes to it: in its archive storage class where it has one."""
    storage_class = getattr(backend.settings.config, "archive_storage_class", None)
    return ArchiveClassUploads(backend, storage_class) if storage_class else backend


def archived_elsewhere(archive: Archive, backend_id: str) -> Copy | None:
    """The archive's archived copy on another backend: a copy of it here is a restored one."""
    return next((c for c in archive.copies if c.state == "archived" and c.backend != backend_id), None)


def transfer(catalog: Catalog, archive: Archive, source: Copy, source_backend, target_id: str, target_backend,
             keep_days: int, work: Path, log=print, started: str = "pending") -> CopyResult:
    """Copy `source` to `target_id` (see the module docstring); the target copy's catalog record is
    written by upload_copy. Never raises for a service's failure: the result says failed and why."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"transfer-{archive.sha256[:16]}-{target_id}.zip"
    try:
        try:
            source_backend.download(source.remote_id, str(path))
        except BackendError as err:
            return CopyResult(target_id, "failed", reason=f"download from {source.backend}: {reason_of(err)}")
        digest = file_sha256(str(path))
        if digest != archive.sha256:
            return CopyResult(target_id, "failed", reason=f"{source.backend} hands out sha256 {digest[:12]},"
                                                          f" not the archive's {archive.sha256[:12]}")
        name = source.remote_name or remote_name(archive.title or "", archive.simulation_id, archive.sha256)
        return upload_copy(catalog, target_backend, target_id, str(path), archive.sha256, name, keep_days,
                           last_try=True, secrets=target_backend.settings.secrets, log=log, started=started)
    finally:
        path.unlink(missing_ok=True)


def archive_copy(catalog: Catalog, archive: Archive, hot: Copy, hot_backend, tier: ArchiveTier, work: Path,
                 log=print) -> str | None:
    """Copy a hot copy to the archive tier and record it `archived`; None when done, else why not
    (the hot copy must then be kept)."""
    result = transfer(catalog, archive, hot, hot_backend, tier.backend_id, in_archive_class(tier.backend),
                      tier.keep_days, work, log)
    if result.state != "present":
        return f"archive copy to {tier.backend_id} failed: {result.reason}"
    if catalog.transition(archive.sha256, tier.backend_id, ("present",), "archived") is None:
        return f"archive copy on {tier.backend_id} changed state while it was made"
    log(f"retention: {archive.sha256[:12]} archived to {tier.backend_id} (verified: {result.size} bytes)")
    return None
