"""Retention: which uploads are past their backend's keep days, and removing them (or only saying so)."""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

from simpost.archiving import archive_copy, archived_elsewhere


def backend_ids_from_variable(value: str | None) -> list[str]:
    """The Variable `storage_backends`: a JSON list of connection ids (for env/secrets-backend connections)."""
    if not value:
        return []
    ids = json.loads(value)
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise ValueError('Variable storage_backends must be a JSON list of connection ids, e.g. ["dropbox_lab"]')
    return ids


def choose(from_api: list[str], from_variable: list[str], only: list[str] | None) -> list[str]:
    """The ids to clean: both sources united, limited to `only` when given (each must exist)."""
    ids = sorted(set(from_api) | set(from_variable))
    if only:
        unknown = sorted(set(only) - set(ids))
        if unknown:
            raise ValueError(f"backends {unknown} are not storage_backend connections (known: {ids})")
        ids = [i for i in ids if i in only]
    return ids


def none_found(api_asked: bool, variable_set: bool) -> str:
    """Why a retention run has nothing to clean, and how to make it see the backends."""
    api = ("the REST API (airflow_api connection) lists no storage_backend connection" if api_asked else
           "there is no airflow_api connection, so connections made in the UI are not listed")
    variable = "the Variable storage_backends " + ("names none" if variable_set else "is not set")
    return (f"no storage backend found: {api}, and {variable}; add an airflow_api HTTP connection (api-server URL,"
            " login, password) or list connection ids in the Variable storage_backends")


def expired(files, keep_days: int, now: datetime) -> tuple[list, list]:
    """Split into (to delete, to keep); keep days 0 keeps everything."""
    if keep_days == 0:
        return [], list(files)
    cutoff = now - timedelta(days=keep_days)
    old = [f for f in files if f.modified_at < cutoff]
    return old, [f for f in files if f.modified_at >= cutoff]


@dataclasses.dataclass(frozen=True)
class Catalogued:
    """What retention needs besides the service: the catalog, this backend's id, its archive tier
    (None: delete as before) and a work dir for the archive copies."""

    catalog: object
    backend_id: str
    tier: object | None = None
    work: Path | None = None


def _due(f, copy, archive, catalogued, old: set, now) -> bool:
    """A restored copy (its archive has an archived copy elsewhere) lives until its own keep-until
    (`expires`, never its link's end: an S3 signed link stops after 7 days, the copy stays);
    every other file until the backend's keep days pass (`old`: the ids past them)."""
    if archive is not None and copy.expires and archived_elsewhere(archive, catalogued.backend_id):
        return copy.expires <= now
    return f.remote_id in old


def clean(backend, keep_days: int, now: datetime, dry_run: bool, log=print, on_deleted=None,
          catalogued: Catalogued | None = None) -> dict:
    """Delete what is older than keep days on one backend; a failed delete is reported, the rest go
    on. `on_deleted(remote_file)` is told of each deletion (the catalog records the copy deleted).
    With the catalog, a restored copy lives until its own expiry, and with an archive tier an
    expiring archive is first copied there and verified: a hot copy whose archive copy failed is
    kept (`not_archived`)."""
    files = backend.list_uploads()
    old = {f.remote_id for f in expired(files, keep_days, now)[0]}
    catalog = catalogued.catalog if catalogued else None
    known = {c.remote_id: c for c in catalog.copies(backend=catalogued.backend_id, states=("present", "archived"))
             } if catalog else {}
    summary = {"keep_days": keep_days, "listed": len(files), "kept": 0, "dry_run": dry_run,
               "deleted": [], "deleted_bytes": 0, "errors": [], "archived": [], "not_archived": []}
    archives = catalog.archives_by_sha256({c.archive_sha256 for c in known.values()}) if catalog else {}
    for f in files:
        copy = known.get(f.remote_id)
        archive = archives.get(copy.archive_sha256) if copy else None
        if not _due(f, copy, archive, catalogued, old, now):
            summary["kept"] += 1
            continue
        if catalogued and catalogued.tier and not (archive and archived_elsewhere(archive, catalogued.backend_id)):
            why = _archive_first(f, copy, archive, backend, catalogued, dry_run, log)
            if why:
                summary["kept"] += 1
                summary["not_archived"].append(f"{f.name}: {why}")
                log(f"retention: kept {f.name}: {why}; tried again next run")
                continue
            summary["archived"].append(f.name)
        _delete(f, backend, on_deleted, dry_run, summary, log)
    return summary


def _archive_first(f, copy, archive, backend, catalogued: Catalogued, dry_run: bool, log) -> str | None:
    """None once the archive is safe on the archive tier (or, in a dry run, would be), else why not."""
    tier = catalogued.tier
    if copy is None or copy.state != "present":
        return "not in the catalog as present, so it cannot be archived (storage_verify adopts it)"
    if dry_run:
        log(f"retention: would archive {f.name} to {tier.backend_id}")
        return None
    return archive_copy(catalogued.catalog, archive, copy, backend, tier, catalogued.work, log)


def _delete(f, backend, on_deleted, dry_run: bool, summary: dict, log) -> None:
    if dry_run:
        log(f"retention: would delete {f.name} ({f.size} bytes, modified {f.modified_at.isoformat()})")
    else:
        try:
            backend.delete(f.remote_id)
        except Exception as err:  # noqa: BLE001 - one stuck file must not keep the others
            summary["errors"].append(f"{f.name}: {type(err).__name__}: {err}")
            log(f"retention: could not delete {f.name}: {err}")
            return
        log(f"retention: deleted {f.name} ({f.size} bytes, modified {f.modified_at.isoformat()})")
        if on_deleted:
            on_deleted(f)
    summary["deleted"].append(f.name)
    summary["deleted_bytes"] += f.size


def remove_stale_work_dirs(root: Path, max_age_days: float, now: float | None = None, log=print) -> list[str]:
    """Work dirs of runs that died without their cleanup task (killed workers, cleared runs)."""
    if not root.is_dir():
        return []
    cutoff = (now or time.time()) - max_age_days * 86400
    removed = []
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
            log(f"retention: removed stale work dir {entry}")
    return removed


def record_deleted(catalog, backend_id: str):
    """An on_deleted for clean(): the catalog's copy at that remote id becomes `deleted`, so verify
    neither calls it lost nor copies it again."""
    def deleted(remote) -> None:
        copy = catalog.copy_at(backend_id, remote.remote_id)
        if copy is not None:
            catalog.transition(copy.archive_sha256, backend_id, ("present", "lost", "failed", "pending", "archived"),
                               "deleted", last_error="deleted by retention after its keep days")
    return deleted
