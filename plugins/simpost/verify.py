"""storage_verify's work (no Airflow): every copy the catalog calls present is checked against its
service, lost and failed copies are copied again from a present one, and files on a backend that
the catalog does not know (uploaded before it existed) are adopted, and a present copy whose signed
link has ended or ends within LINK_MARGIN (S3: at most 7 days, a copy may be kept 30) gets a fresh
one in the catalog, so the Results view and `simpost where` never show a dead link.

Resumable by construction: all state is in the catalog, written copy by copy. A pass verifies the
copies not verified since it (or its run, for a retried task) started, the longest unverified
first, at most `batch` of them, and repairs at most `batch` archives; a pass cut short (batch,
killed worker) is continued by the retry or the next run.
`backends` maps a backend id to an opened backend (storage_backends.open_backend: it carries its
settings); copies on backends not in it are left alone.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

from simpost.catalog import REPAIRABLE, Archive, Catalog, Copy
from simpost.copies import checksum_of, reason_of, upload_copy
from storage_backends.base import BackendError, RemoteFile, RemoteStat, file_sha256
from storage_backends.naming import remote_name
from storage_backends.s3_backend import link_signer

# `<slug>_<simulation_id>_<first 12 of sha256>.zip` (storage_backends.naming)
NAME_PARTS = re.compile(r"^[a-z0-9-]+_(?P<simulation_id>[A-Za-z0-9][A-Za-z0-9._-]{0,127})_(?P<prefix>[0-9a-f]{12})\.zip$")
STALE_PENDING = timedelta(hours=24)  # an upload pending this long died with its worker
THREADS = 8  # services asked at once
CHUNK = 100  # copies per catalog transaction
LINK_MARGIN = timedelta(days=1)  # a signed link ending sooner than this is signed anew (runs are daily)


@dataclasses.dataclass
class VerifyReport:
    """What one pass found and did; every list names `<sha12> on <backend>` or an archive."""

    dry_run: bool
    verified: int = 0
    lost: list[str] = dataclasses.field(default_factory=list)
    expired: list[str] = dataclasses.field(default_factory=list)  # gone after their keep days: deleted
    repaired: list[str] = dataclasses.field(default_factory=list)
    relinked: list[str] = dataclasses.field(default_factory=list)  # signed links renewed
    adopted: list[str] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    unrecoverable: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        would = "would be " if self.dry_run else ""
        return (f"{self.verified} copies verified, {len(self.lost)} {would}lost, {len(self.expired)} expired, "
                f"{len(self.repaired)} {would}"
                f"copied again, {len(self.adopted)} {would}adopted, {len(self.relinked)} links {would}signed anew, "
                f"{len(self.errors)} errors, "
                f"{len(self.unrecoverable)} archives without a present copy")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _tag(sha256: str, backend: str) -> str:
    return f"{sha256[:12]} on {backend}"


def judge(archive: Archive, copy: Copy, seen: RemoteStat) -> str | None:
    """Why the service's answer means the copy is lost, or None when it is still the archive."""
    if not seen.exists:
        return "gone from the service"
    if seen.size != archive.size:
        return f"changed: {seen.size} bytes on the service, the archive has {archive.size}"
    if seen.checksum_kind == "sha256" and seen.checksum != archive.sha256:
        return f"changed: sha256 {seen.checksum[:12]} on the service, the archive's is {archive.sha256[:12]}"
    if copy.checksum and checksum_of(seen) and checksum_of(seen) != copy.checksum:
        return f"changed: the service's {seen.checksum_kind} is no longer the one recorded"
    return None


def _ask(backends: dict, listed: dict, copy: Copy) -> RemoteStat | BackendError:
    """The copy as its backend's listing shows it, else (a service whose listing lacks the
    checksum, or a copy missing from the listing: gone, or under a name the listing leaves out)
    as one stat call says."""
    found = listed.get(copy.backend, {}).get(copy.remote_id)
    if found is not None:
        return found
    try:
        return backends[copy.backend].stat(copy.remote_id)
    except BackendError as err:  # the service did not answer: neither verified nor lost
        return err


def verify_copies(catalog: Catalog, backends: dict, listed: dict, started: datetime, batch: int,
                  report: VerifyReport, log=print) -> None:
    """Check the present copies, from `listed` ({backend: {remote_id: RemoteStat}}, the listings
    of the backends whose listing verifies) or by asking the service, THREADS at a time (a
    service's latency, not its work, is what a pass waits for); gone or changed ones become lost
    at once, the others are written as verified a chunk per transaction. A worker killed in the
    middle loses at most the chunk it was asking about, which the next pass asks again."""
    todo = catalog.copies_to_verify(started, backend=sorted(backends), limit=batch)
    archives = catalog.archives_by_sha256(c.archive_sha256 for c in todo)
    with ThreadPoolExecutor(THREADS) as pool:
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            intact = []
            for copy, seen in zip(chunk, pool.map(lambda c: _ask(backends, listed, c), chunk)):
                tag = _tag(copy.archive_sha256, copy.backend)
                if isinstance(seen, BackendError):
                    report.errors.append(f"{tag}: {reason_of(seen)}")
                    continue
                problem = judge(archives[copy.archive_sha256], copy, seen)
                if problem is None:
                    intact.append((copy.archive_sha256, copy.backend, checksum_of(seen)))
                    continue
                expired = not seen.exists and copy.expires is not None and copy.expires <= started
                (report.expired if expired else report.lost).append(tag)
                log(f"verify: {tag} {'expired: the service removed it' if expired else f'is lost: {problem}'}")
                if not report.dry_run:
                    catalog.transition(copy.archive_sha256, copy.backend, ("present",), "deleted" if expired else "lost",
                                       last_error="expired: removed by the service after its keep days"
                                       if expired else problem)
            report.verified += len(intact)
            if not report.dry_run:
                catalog.verified_many(intact, datetime.now(timezone.utc))
            log(f"verify: {start + len(chunk)} of {len(todo)} copies checked")


def renew_links(catalog: Catalog, backends: dict, now: datetime, batch: int, report: VerifyReport,
                log=print) -> None:
    """Sign anew the links of present copies that end before now + LINK_MARGIN, on backends whose
    links end on their own; the new link and its end are recorded (only while the copy is present)."""
    signers = {b: s for b, s in ((b, link_signer(backend)) for b, backend in backends.items()) if s is not None}
    if not signers:
        return
    for copy in catalog.links_ending(now + LINK_MARGIN, backend=sorted(signers), limit=batch):
        tag = _tag(copy.archive_sha256, copy.backend)
        report.relinked.append(tag)
        log(f"verify: {tag}: its link ends {copy.link_expires.isoformat()}; "
            f"{'would sign' if report.dry_run else 'signed'} a fresh one")
        if not report.dry_run:
            link, until = signers[copy.backend].fresh_link(copy.remote_id, copy.expires, now)
            catalog.transition(copy.archive_sha256, copy.backend, ("present",), "present", link=link,
                               link_expires=until)


def fail_stale_pending(catalog: Catalog, now: datetime, dry_run: bool, log=print) -> None:
    """An upload that has been pending for a day died with its worker: failed, so it is repaired."""
    for copy in catalog.copies(states=["pending"]):
        if copy.updated_at < now - STALE_PENDING:
            log(f"verify: {_tag(copy.archive_sha256, copy.backend)} has been pending since {copy.updated_at}")
            if not dry_run:
                catalog.transition(copy.archive_sha256, copy.backend, ("pending",), "failed",
                                   last_error="the upload never finished (its worker was lost?)")


def targets(archive: Archive, backends: dict, only: str | None) -> list[str]:
    """The backends that should get a copy: those whose copy failed or was lost, then, while the
    archive is short of its wanted number, backends that have none of it."""
    by_backend = {c.backend: c for c in archive.copies}
    wanted = [c.backend for c in archive.copies
              if c.state in REPAIRABLE and c.backend in backends and backends[c.backend].settings.active]
    missing = archive.copies_wanted - sum(1 for c in archive.copies if c.state not in REPAIRABLE) - len(wanted)
    spare = [b for b in sorted(backends) if b not in by_backend and backends[b].settings.active]
    wanted += spare[:max(missing, 0)]
    return [b for b in wanted if only is None or b == only]


def keep_days_left(keep_days: int, created: datetime, now: datetime) -> int | None:
    """A re-copy expires when the first copy would have: None when that time has passed."""
    if keep_days == 0:
        return 0
    left = keep_days - (now - created).total_seconds() / 86400
    return math.ceil(left) if left > 0 else None


def fetch(archive: Archive, backends: dict, work: Path, report: VerifyReport, catalog: Catalog,
          log=print) -> tuple[Path, Copy] | None:
    """The archive downloaded from a present copy whose bytes are the archive (SHA-256 checked); a
    present copy that hands out other bytes is lost."""
    path = work / f"verify-{archive.sha256[:16]}.zip"
    for source in [c for c in archive.present if c.backend in backends]:
        try:
            backends[source.backend].download(source.remote_id, str(path))
        except BackendError as err:
            report.errors.append(f"{_tag(archive.sha256, source.backend)}: download: {reason_of(err)}")
            continue
        digest = file_sha256(str(path))
        if digest == archive.sha256:
            return path, source
        path.unlink()
        report.lost.append(_tag(archive.sha256, source.backend))
        log(f"verify: {_tag(archive.sha256, source.backend)} downloads as sha256 {digest[:12]}: lost")
        if not report.dry_run:
            catalog.transition(archive.sha256, source.backend, ("present",), "lost",
                               last_error=f"changed: downloaded bytes have sha256 {digest[:12]}")
    return None


def repair(catalog: Catalog, backends: dict, work: Path, batch: int, report: VerifyReport,
           only: str | None = None, log=print) -> None:
    """Copy again what is missing, from a present copy, one archive at a time."""
    now = datetime.now(timezone.utc)
    for archive in catalog.archives_to_repair(limit=batch):
        to = targets(archive, backends, only)
        if not to:
            continue
        if not archive.present:
            report.unrecoverable.append(f"{archive.sha256[:12]} ({archive.simulation_id})")
            log(f"verify: archive {archive.sha256[:12]} of {archive.simulation_id} has no present copy left")
            continue
        if report.dry_run:
            report.repaired += [_tag(archive.sha256, b) for b in to]
            log(f"verify: would copy {archive.sha256[:12]} from {archive.present[0].backend} to {', '.join(to)}")
            continue
        fetched = fetch(archive, backends, work, report, catalog, log)
        if fetched is None:
            if not catalog.archive(archive.sha256).present:
                report.unrecoverable.append(f"{archive.sha256[:12]} ({archive.simulation_id})")
            continue
        path, source = fetched
        try:
            for backend_id in to:
                _copy_to(catalog, backends[backend_id], backend_id, archive, source, path, now, report, log)
        finally:
            path.unlink(missing_ok=True)


def _copy_to(catalog, backend, backend_id, archive, source, path, now, report, log) -> None:
    keep = keep_days_left(backend.settings.keep_days, archive.created, now)
    if keep is None:
        log(f"verify: {_tag(archive.sha256, backend_id)} not copied again: past its keep days")
        return
    name = source.remote_name or remote_name(archive.title or "", archive.simulation_id, archive.sha256)
    copy = upload_copy(catalog, backend, backend_id, str(path), archive.sha256, name, keep, last_try=True,
                       secrets=backend.settings.secrets, log=log)
    if copy.state == "present":
        report.repaired.append(_tag(archive.sha256, backend_id))
        log(f"verify: {_tag(archive.sha256, backend_id)} copied again from {source.backend}")
    else:
        report.errors.append(f"{_tag(archive.sha256, backend_id)}: {copy.reason}")


def adopt(catalog: Catalog, backend_id: str, backend, listing: list[RemoteFile], work: Path, budget: int,
          report: VerifyReport, log=print) -> None:
    """Files this project uploaded before the catalog existed (from the backend's `listing`): a
    name whose simulation id and SHA-256 prefix match one catalogued archive becomes its copy; a
    file of an unknown archive is downloaded (at most `budget` of them) to learn its SHA-256,
    then recorded with its archive."""
    known = {c.remote_id for c in catalog.copies(backend=backend_id)}
    for remote in listing:
        parts = NAME_PARTS.match(remote.name)
        if remote.remote_id in known or parts is None:
            continue
        matches = [a for a in catalog.archives_by_prefix(parts["prefix"])
                   if a.simulation_id == parts["simulation_id"] and a.size == remote.size]
        if len(matches) > 1:
            continue  # two archives share the prefix: the name cannot say which
        if not matches:
            if budget <= 0:
                continue
            budget -= 1
        archive = matches[0] if matches else _learn(catalog, backend, remote, parts, work, report)
        if archive is None:
            continue
        if any(c.backend == backend_id and c.state == "present" for c in archive.copies):
            continue  # the catalog knows a present copy there already, under another remote id
        report.adopted.append(_tag(archive.sha256, backend_id))
        log(f"verify: adopting {remote.name} on {backend_id} as a copy of {archive.sha256[:12]}")
        if not report.dry_run:
            catalog.record_copy(archive.sha256, backend_id, "present", remote_id=remote.remote_id,
                                remote_name=remote.name, uploaded=remote.modified_at)


def _learn(catalog: Catalog, backend, remote, parts, work: Path, report: VerifyReport) -> Archive | None:
    """Download an unknown archive once to know its SHA-256; recorded unless it contradicts its name."""
    path = work / f"adopt-{parts['prefix']}.zip"
    try:
        backend.download(remote.remote_id, str(path))
        digest, size = file_sha256(str(path)), os.path.getsize(path)
    except BackendError as err:
        report.errors.append(f"{remote.name}: download: {reason_of(err)}")
        return None
    finally:
        path.unlink(missing_ok=True)
    if not digest.startswith(parts["prefix"]):
        report.errors.append(f"{remote.name}: its sha256 {digest[:12]} is not the one its name carries")
        return None
    if report.dry_run:
        return Archive(digest, size, parts["simulation_id"], None, None, remote.modified_at, 1)
    return catalog.record_archive(digest, size, parts["simulation_id"], created=remote.modified_at)


def verify_pass(catalog: Catalog, backends: dict, work: Path, *, batch: int, dry_run: bool = False,
                only: str | None = None, since: datetime | None = None, log=print) -> VerifyReport:
    """One storage_verify run: adopt, verify, renew links, repair (see the module docstring). `since` is when
    the run started (default now): a retry of a run whose worker was killed passes the run's
    start, so it verifies only what the killed try had not written yet."""
    started = since or datetime.now(timezone.utc)
    report = VerifyReport(dry_run=dry_run)
    work.mkdir(parents=True, exist_ok=True)
    checked = {b: backends[b] for b in backends if only is None or b == only}
    fail_stale_pending(catalog, started, dry_run, log)
    listed = {}  # one listing per backend serves adoption and, where it carries checksums, verify
    for backend_id, backend in sorted(checked.items()):
        try:
            listing = backend.list_uploads()
            adopt(catalog, backend_id, backend, listing, work, batch, report, log)
        except BackendError as err:
            report.errors.append(f"{backend_id}: listing: {reason_of(err)}")
            continue
        if backend.LISTING_VERIFIES:
            listed[backend_id] = {f.remote_id: f.stat() for f in listing}
    verify_copies(catalog, checked, listed, started, batch, report, log)
    renew_links(catalog, checked, datetime.now(timezone.utc), batch, report, log)
    repair(catalog, backends, work, batch, report, only, log)
    log(f"verify: {report.summary()}")
    return report
