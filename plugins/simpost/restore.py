"""storage_restore's work (no Airflow): an archived archive copied back to a backend people
download from, for a number of days, once however many ask at the same time.

Three steps, so that a wait of hours holds no worker:
  begin  - claims the archive (Catalog.claim_restore: its target copy says `restoring`, held by
           this request) and, when the archived copy sits in a cold S3 class, asks S3 to thaw it
           (RestoreObject); a request arriving while another one's claim lives joins that one.
  ready  - asked on each poke of a rescheduled sensor: S3's `x-amz-restore` (or, for a joining
           request, whether the running restore ended); each poke is the claim's sign of life.
  finish - copies the readable archived copy to the target as any restore (SHA-256 checked on the
           way, verified on the target), recorded `present` with its expiry ("restored until").
A restore that fails releases its claim (the target copy `deleted` with why), so the next request
claims again; a claim whose holder died without a word (SIGKILL) is taken over once its last sign
of life is older than stale_after(), or at once by a retry of the same request. storage_retention
deletes the restored copy when its expiry passes; the archived copy stays.
"""
from __future__ import annotations

import dataclasses
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import NoReturn

from simpost.archiving import transfer
from simpost.catalog import Archive, Catalog, Copy
from simpost.limits import restore_poke_seconds, task_timeout

WAIT_SECONDS = 3600.0  # restore(): how long a joining request waits for the running restore
POLL_SECONDS = 2.0
STALE_SLACK = timedelta(minutes=15)  # on top of the longest silence of a live restore


class RestoreRefused(ValueError):
    """The request cannot be served; one line says why."""


class RestoreFailed(RuntimeError):
    """The restore ran and failed; one line says why (the claim is released)."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The restored copy, and whether this request joined a restore another one ran."""

    archive: Archive
    copy: Copy
    joined: bool


@dataclasses.dataclass(frozen=True)
class Plan:
    """What begin decided, handed from task to task (as_dict/from_dict): `step` is done (present
    on the target already), join (another request's restore runs), thaw (S3 thaws the archived
    copy) or copy (the archived copy is readable)."""

    sha256: str
    target: str
    owner: str
    step: str
    source: str | None = None
    note: str = ""
    ready_by: str | None = None  # ISO time when a thawing copy should be readable

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        return cls(**data)


def stale_after() -> timedelta:
    """A live restore shows a sign of life at least once per sensor poke and before its copy, which
    lasts at most the task timeout: a claim silent for longer has lost its holder."""
    return max(task_timeout(), timedelta(seconds=restore_poke_seconds())) + STALE_SLACK


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


def restoring_note(copy: Copy, now: datetime | None = None) -> str:
    """What a restoring copy's page says: "restoring, ready in about 4 hours" where S3 said so."""
    if copy.ready_by is None:
        return "restoring"
    left = (copy.ready_by - (now or datetime.now(timezone.utc))).total_seconds()
    if left <= 0:
        return "restoring, ready any moment"
    if left >= 5400:
        return f"restoring, ready in about {round(left / 3600)} hours"
    return f"restoring, ready in about {max(1, round(left / 60))} minutes"


def _cold(backend):
    """The service of a backend that thaws copies (s3), else None."""
    service = getattr(backend, "service", backend)
    return service if hasattr(service, "thaw") else None


def begin(catalog: Catalog, archive: Archive, target: str, backends: dict, owner: str, log=print,
          stale: timedelta | None = None) -> Plan:
    """The first step (see the module docstring). `backends` maps ids to opened backends (the
    target and the source); `owner` names this request (a retry of it keeps the name)."""
    here = next((c for c in archive.copies if c.backend == target and c.state == "present"), None)
    if here is not None:
        log(f"restore: {archive.sha256[:12]} is present on {target} already")
        return Plan(archive.sha256, target, owner, "done")
    source = source_of(archive, target)
    if source.backend not in backends:
        raise RestoreRefused(f"the copy to restore from is on {source.backend}, which is not a storage backend here")
    now = datetime.now(timezone.utc)
    claim = catalog.claim_restore(archive.sha256, target, owner, now - (stale or stale_after()))
    if not claim.claimed:
        note = restoring_note(claim.copy, now)
        log(f"restore: {archive.sha256[:12]} is being restored to {claim.copy.backend} by {claim.copy.claimed_by}"
            f" already ({note}); joining it")
        return Plan(archive.sha256, claim.copy.backend, owner, "join", note=note)
    if claim.took_over is not None:
        log(f"restore: took over the restore of {archive.sha256[:12]} by {claim.took_over.claimed_by}, silent since"
            f" {claim.took_over.updated_at.isoformat()}")
    cold = _cold(backends[source.backend])
    try:
        thaw = cold.thaw(source.remote_id) if cold else None
    except Exception as err:  # the claim must not outlive the request
        _fail(catalog, archive.sha256, target, owner, f"thawing the copy on {source.backend}: {err}")
    if thaw is None or thaw.readable:
        return Plan(archive.sha256, target, owner, "copy", source.backend)
    ready_by = now + timedelta(hours=thaw.ready_by_hours) if thaw.ready_by_hours is not None else None
    catalog.restore_alive(archive.sha256, target, owner, ready_by=ready_by)
    log(f"restore: {archive.sha256[:12]} on {source.backend} is archived in {thaw.storage_class};"
        f" {'joined the restore S3 runs' if thaw.joined else 'asked S3 to restore it'}: {thaw.note()}")
    return Plan(archive.sha256, target, owner, "thaw", source.backend, thaw.note(),
                ready_by.isoformat() if ready_by else None)


def ready(catalog: Catalog, plan: Plan, backends: dict, log=print, stale: timedelta | None = None) -> bool:
    """Whether finish can run now (one sensor poke; see the module docstring)."""
    if plan.step == "join":
        copy = catalog.copy(plan.sha256, plan.target)
        silent = datetime.now(timezone.utc) - copy.updated_at > (stale or stale_after())
        return copy.state != "restoring" or silent  # finish says what became of it
    if plan.step != "thaw":
        return True
    _alive(catalog, plan)
    source = catalog.copy(plan.sha256, plan.source)
    try:
        status = _cold(backends[plan.source]).restore_status(source.remote_id)
    except Exception as err:  # noqa: BLE001 - a poke that could not ask is asked again
        log(f"restore: asking {plan.source} how the restore goes failed, asked again next poke: {err}")
        return False
    if status is None:
        _fail(catalog, plan.sha256, plan.target, plan.owner, f"the archived copy on {plan.source} is gone")
    note = restoring_note(catalog.copy(plan.sha256, plan.target))
    log(f"restore: {plan.sha256[:12]} on {plan.source}: " + ("readable" if status.readable else f"S3: {note}"))
    return status.readable


def finish(catalog: Catalog, plan: Plan, backends: dict, keep_days: int, work: Path, log=print) -> Outcome:
    """The last step: the copy to the target (or the joined restore's outcome)."""
    archive = catalog.archive(plan.sha256)
    copy = catalog.copy(plan.sha256, plan.target)
    if plan.step in ("done", "join"):
        if copy.state == "restoring":
            raise RestoreFailed(f"the restore of {plan.sha256[:12]} this request joined ({copy.claimed_by}) went"
                                " silent; ask again: the next request takes it over")
        if copy.state != "present":
            raise RestoreFailed(f"the restore of {plan.sha256[:12]} this request joined ended {copy.state}:"
                                f" {copy.last_error}")
        return Outcome(archive, copy, joined=True)
    if copy.state == "present" and copy.claimed_by == plan.owner:  # a retried finish: its copy is there
        return Outcome(archive, copy, joined=False)
    _alive(catalog, plan)
    source = catalog.copy(plan.sha256, plan.source)
    log(f"restore: copying {plan.sha256[:12]} from {plan.source} to {plan.target} for {keep_days} days")
    try:
        result = transfer(catalog, archive, source, backends[plan.source], plan.target, backends[plan.target],
                          keep_days, work, log, started="restoring")
    except BaseException:
        catalog.release_restore(plan.sha256, plan.target, plan.owner, "the restore was stopped")
        raise
    if result.state != "present":
        _fail(catalog, plan.sha256, plan.target, plan.owner, result.reason)
    return Outcome(archive, catalog.copy(plan.sha256, plan.target), joined=False)


def abandon(catalog: Catalog, plan: Plan, reason: str) -> None:
    """A restore stopped from outside (its sensor timed out, its task failed): the claim goes."""
    if plan.step in ("thaw", "copy"):
        catalog.release_restore(plan.sha256, plan.target, plan.owner, reason)


def _alive(catalog: Catalog, plan: Plan) -> None:
    if catalog.restore_alive(plan.sha256, plan.target, plan.owner) is None:
        raise RestoreFailed(f"the restore of {plan.sha256[:12]} to {plan.target} is no longer this request's"
                            " (it ended, or another request took it over)")


def _fail(catalog: Catalog, sha256: str, target: str, owner: str, reason: str | None) -> NoReturn:
    """Release the claim, then fail with the one-line reason."""
    catalog.release_restore(sha256, target, owner, reason or "no reason given")
    raise RestoreFailed(f"restore of {sha256[:12]} to {target} failed: {reason}")


def restore(catalog: Catalog, archive: Archive, target: str, backends: dict, keep_days: int, work: Path,
            log=print, wait_seconds: float = WAIT_SECONDS, owner: str | None = None,
            stale: timedelta | None = None) -> Outcome:
    """The three steps in one call, polling every POLL_SECONDS for at most `wait_seconds`: for
    callers that may wait (tests, scripts); storage_restore runs them as tasks instead."""
    owner = owner or f"pid-{os.getpid()}-{time.monotonic_ns()}"
    plan = begin(catalog, archive, target, backends, owner, log, stale)
    deadline = time.monotonic() + wait_seconds
    while not ready(catalog, plan, backends, log, stale):
        if time.monotonic() > deadline:
            raise RestoreFailed(f"the restore of {archive.sha256[:12]} to {plan.target} has been running for over"
                                f" {wait_seconds:.0f} s; try again later")
        time.sleep(POLL_SECONDS)  # polling the catalog or S3, bounded by the deadline
    return finish(catalog, plan, backends, keep_days, work, log)
