"""storage_restore's work (no Airflow): an archived archive copied back to a backend people
download from, for a number of days, once however many ask at the same time.

The claim is the catalog's (Catalog.claim_restore): the first request marks the target copy
`restoring` and copies; a request arriving meanwhile finds that mark and waits for the first one's
outcome instead of copying again. The restored copy is `present` with its expiry ("restored
until"); storage_retention deletes it when that passes, and the archived copy stays.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from simpost.archiving import transfer
from simpost.catalog import Archive, Catalog, Copy

WAIT_SECONDS = 3600.0  # how long a joining request waits for the running restore
POLL_SECONDS = 2.0


class RestoreRefused(ValueError):
    """The request cannot be served; one line says why."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The restored copy, and whether this request joined a restore another one ran."""

    archive: Archive
    copy: Copy
    joined: bool


def find_archive(catalog: Catalog, simulation_id: str | None, sha256: str | None) -> Archive:
    """The archive asked for: by SHA-256, else the simulation's newest one."""
    if bool(simulation_id) == bool(sha256):
        raise RestoreRefused("give either simulation_id or sha256 (one of them)")
    if sha256:
        archive = catalog.archive(sha256)
        if archive is None:
            raise RestoreRefused(f"no archive with sha256 {sha256[:12]} in the catalog")
        return archive
    found = catalog.archives(simulation_id=simulation_id, limit=1)
    if not found:
        raise RestoreRefused(f"no archive of simulation {simulation_id} in the catalog")
    return found[0]


def default_target(archive: Archive) -> str:
    """Where the archive was first uploaded: its earliest copy that is not on the archive tier."""
    hot = [c for c in archive.copies if c.state != "archived"] or archive.copies
    return min(hot, key=lambda c: (c.uploaded is None, c.uploaded or c.updated_at)).backend


def source_of(archive: Archive, target: str) -> Copy:
    """The copy to restore from: an archived one (else any present one elsewhere)."""
    for states in (("archived",), ("present",)):
        for copy in archive.copies:
            if copy.state in states and copy.backend != target:
                return copy
    raise RestoreRefused(f"archive {archive.sha256[:12]} of simulation {archive.simulation_id} has no copy left"
                         " to restore from")


def restore(catalog: Catalog, archive: Archive, target: str, backends: dict, keep_days: int, work: Path,
            log=print, wait_seconds: float = WAIT_SECONDS) -> Outcome:
    """Copy the archive back to `target` (see the module docstring). `backends` maps ids to opened
    backends (it must hold the target and the source)."""
    here = next((c for c in archive.copies if c.backend == target and c.state == "present"), None)
    if here is not None:
        log(f"restore: {archive.sha256[:12]} is present on {target} already")
        return Outcome(archive, here, joined=True)
    source = source_of(archive, target)
    if source.backend not in backends:
        raise RestoreRefused(f"the copy to restore from is on {source.backend}, which is not a storage backend here")
    claimed, copy = catalog.claim_restore(archive.sha256, target)
    if not claimed:
        log(f"restore: {archive.sha256[:12]} is being restored to {copy.backend} already; waiting for it")
        return Outcome(archive, wait_for(catalog, archive.sha256, copy.backend, wait_seconds), joined=True)
    log(f"restore: copying {archive.sha256[:12]} from {source.backend} to {target} for {keep_days} days")
    try:
        result = transfer(catalog, archive, source, backends[source.backend], target, backends[target], keep_days,
                          work, log, started="restoring")
    except BaseException:
        _give_back(catalog, archive.sha256, target, "the restore was stopped")
        raise
    if result.state != "present":
        _give_back(catalog, archive.sha256, target, result.reason)
        raise RuntimeError(f"restore of {archive.sha256[:12]} to {target} failed: {result.reason}")
    return Outcome(archive, catalog.copy(archive.sha256, target), joined=False)


def _give_back(catalog: Catalog, sha256: str, target: str, reason: str | None) -> None:
    """A restore that failed leaves the target copy `deleted` (with why), not failed: storage_verify
    must not try to repair a copy retention had removed, and the next request may claim again."""
    catalog.transition(sha256, target, ("restoring", "failed"), "deleted", last_error=f"restore failed: {reason}")


def wait_for(catalog: Catalog, sha256: str, backend: str, wait_seconds: float) -> Copy:
    """The running restore's copy once it has left `restoring` (present: its result)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        copy = catalog.copy(sha256, backend)
        if copy.state != "restoring":
            if copy.state != "present":
                raise RuntimeError(f"the restore of {sha256[:12]} this request joined ended {copy.state}:"
                                   f" {copy.last_error}")
            return copy
        if time.monotonic() > deadline:
            raise RuntimeError(f"the restore of {sha256[:12]} to {backend} has been running for over"
                               f" {wait_seconds:.0f} s; try again later")
        time.sleep(POLL_SECONDS)  # polling the catalog, bounded by the deadline
