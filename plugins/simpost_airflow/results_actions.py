"""What the Results view does besides showing the catalog (no FastAPI, no HTML here).

- **Restore** an archived archive for the signed-in user: storage_restore is triggered through
  Airflow's own REST API with that user's JWT, so Airflow checks their leave to start it and names
  them as the run's trigger, exactly as its trigger form would. Runs started here are named
  `restore__<sha256[:16]>__<time>`, so the view knows of a restore before its task has marked the
  catalog `restoring` (a run waits for the scheduler for seconds), and a second click meanwhile
  starts nothing. Two clicks at the same instant may start two runs; the catalog's claim_restore
  then makes the second join the first, which copies once.
- **Fresh links** for present copies on a service whose links expire (S3's presigned URLs live 7
  days at most): signed anew by the backend the copy's connection opens, for as long as the copy is
  kept (never past the signature's limit).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from simpost.airflow_api import AirflowApi
from simpost.catalog import Archive, Catalog, Copy

log = logging.getLogger(__name__)

RESTORE_DAG = "storage_restore"
RUN_PREFIX = "restore__"
RUNNING = ("queued", "running")


class ActionRefused(ValueError):
    """The action cannot be done; `status` is the HTTP answer, the message one line saying why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def run_prefix(sha256: str) -> str:
    return f"{RUN_PREFIX}{sha256[:16]}__"


@dataclass(frozen=True)
class RestoreView:
    """Where an archive's restore stands: `state` is "" (nothing to offer: no archived copy, or a
    copy present anyway), archived, restoring, restored (`copy` is the restored copy) or failed
    (`run_id` names the failed run)."""

    state: str
    copy: Copy | None = None
    run_id: str | None = None


def restore_view(archive: Archive, runs: list[dict]) -> RestoreView:
    """From the catalog and the archive's restore runs (newest first). A present copy uploaded
    after the archived copy was made is a restored one: a copy elsewhere that was never archived
    is older than the archive tier's copy."""
    archived = [c for c in archive.copies if c.state == "archived"]
    if not archived:
        return RestoreView("")
    latest = runs[0] if runs else None
    if any(c.state == "restoring" for c in archive.copies) or (latest and latest["state"] in RUNNING):
        return RestoreView("restoring", run_id=latest["dag_run_id"] if latest else None)
    since = max(c.uploaded or c.updated_at for c in archived)
    restored = [c for c in archive.present if c.uploaded and c.uploaded >= since]
    if restored:
        return RestoreView("restored", copy=max(restored, key=lambda c: c.uploaded))
    if archive.present:
        return RestoreView("")
    if latest and latest["state"] == "failed":
        return RestoreView("failed", run_id=latest["dag_run_id"])
    return RestoreView("archived")


def restore_runs(api: AirflowApi, sha256s: list[str]) -> dict[str, list[dict]]:
    """Each archive's restore runs started from the view, newest first (one call for the page)."""
    prefix = run_prefix(sha256s[0]) if len(sha256s) == 1 else RUN_PREFIX
    runs = api.runs(RESTORE_DAG, prefix)
    return {sha: [r for r in runs if r["dag_run_id"].startswith(run_prefix(sha))] for sha in sha256s}


def archive_of(catalog: Catalog, sha256: str) -> Archive:
    archive = catalog.archive(sha256)
    if archive is None:
        raise ActionRefused(404, f"no archive with sha256 {sha256[:12]} in the catalog")
    return archive


def start_restore(api: AirflowApi, catalog: Catalog, sha256: str) -> tuple[RestoreView, bool]:
    """Trigger storage_restore for the archive unless one runs already; (where it stands, started)."""
    archive = archive_of(catalog, sha256)
    view = restore_view(archive, restore_runs(api, [archive.sha256])[archive.sha256])
    if view.state == "restoring":
        return view, False
    if view.state not in ("archived", "failed"):
        why = "is present already" if archive.present else "has no archived copy to restore from"
        raise ActionRefused(409, f"archive {archive.sha256[:12]} of simulation {archive.simulation_id} {why}")
    run_id = run_prefix(archive.sha256) + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    api.trigger(RESTORE_DAG, run_id, {"sha256": archive.sha256})
    log.info("results view: %s started for archive %s", run_id, archive.sha256[:12])
    return RestoreView("restoring", run_id=run_id), True


@dataclass(frozen=True)
class FreshLink:
    backend: str
    link: str
    expires_at: datetime


class LinkSigner:
    """Fresh links for copies whose links expire; each backend's connection is read once."""

    def __init__(self):
        self._signers: dict[str, object | None] = {}

    def renews(self, backend_id: str) -> bool:
        if backend_id not in self._signers:
            self._signers[backend_id] = _signer(backend_id)
        return self._signers[backend_id] is not None

    def fresh(self, copy: Copy, now: datetime | None = None) -> FreshLink | None:
        """A new link to a present copy on a backend whose links expire; None for any other copy."""
        if copy.state != "present" or not copy.remote_id or not self.renews(copy.backend):
            return None
        link, until = self._signers[copy.backend].fresh_link(copy.remote_id, copy.expires,
                                                             now or datetime.now(timezone.utc))
        return FreshLink(copy.backend, link, until)


def _signer(backend_id: str):
    """The service that signs the backend's links when they expire (s3 without a public base URL);
    None for any other, and for a connection that is gone or wrong (the catalog's link stays)."""
    from airflow.sdk.exceptions import AirflowNotFoundException
    from simpost_airflow.backends import open_storage_backend
    from storage_backends.base import BackendError
    from storage_backends.s3_backend import link_signer

    try:
        backend = open_storage_backend(backend_id)
    except AirflowNotFoundException:
        return None
    except BackendError as err:  # a SettingsError names the connection and field, never a secret
        log.warning("results view: no fresh links for %s: %s", backend_id, err)
        return None
    return link_signer(backend)
