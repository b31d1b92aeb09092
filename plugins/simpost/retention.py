"""Retention: which uploads are past their backend's keep days, and removing them (or only saying so)."""
from __future__ import annotations

import json
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path


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


def clean(backend, keep_days: int, now: datetime, dry_run: bool, log=print, on_deleted=None) -> dict:
    """Delete what is older than keep days on one backend; a failed delete is reported, the rest go on.
    `on_deleted(remote_file)` is told of each deletion (the catalog records the copy deleted)."""
    files = backend.list_uploads()
    old, kept = expired(files, keep_days, now)
    summary = {"keep_days": keep_days, "listed": len(files), "kept": len(kept), "dry_run": dry_run,
               "deleted": [], "deleted_bytes": 0, "errors": []}
    for f in old:
        if dry_run:
            log(f"retention: would delete {f.name} ({f.size} bytes, modified {f.modified_at.isoformat()})")
        else:
            try:
                backend.delete(f.remote_id)
            except Exception as err:  # noqa: BLE001 - one stuck file must not keep the others
                summary["errors"].append(f"{f.name}: {type(err).__name__}: {err}")
                log(f"retention: could not delete {f.name}: {err}")
                continue
            log(f"retention: deleted {f.name} ({f.size} bytes, modified {f.modified_at.isoformat()})")
            if on_deleted:
                on_deleted(f)
        summary["deleted"].append(f.name)
        summary["deleted_bytes"] += f.size
    return summary


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
            catalog.transition(copy.archive_sha256, backend_id, ("present", "lost", "failed", "pending"), "deleted",
                               last_error="deleted by retention after its keep days")
    return deleted
