"""storage_retention: delete uploads older than each backend's keep days; wiring only."""
from __future__ import annotations

import logging
import os
import re
import shutil

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from simpost.limits import housekeeping_schedule, task_timeout

log = logging.getLogger(__name__)
STALE_WORK_DIR_DAYS = 2

DOC = """
### storage_retention
For every `storage_backend` connection (listed through the REST API on the `airflow_api` HTTP
connection, united with the ids in the Variable `storage_backends`), deletes the uploads this project
made that are older than the backend's **keep days** (0 keeps forever), using the service's own
timestamps, and records each deletion in the catalog. A backend whose config names
`"archive_to": "<backend id>"` keeps its archives: an expiring copy is first copied to that backend
(SHA-256 checked on download, the service's size and checksum after upload) and recorded `archived`,
and only then deleted; a copy whose archive copy fails is kept, reported (the task fails) and tried
again next run. A restored copy (see storage_restore) is deleted when its own expiry passes. One mapped task per backend: a failing backend fails only its own task, and the run fails
at the end once all others are cleaned. Also removes work dirs of crashed post-processing runs.

Params: `dry_run` lists what would go and deletes nothing; `backends` limits the run to some ids;
`older_than_days` overrides every backend's keep days for a manual purge; `reference_time` (ISO-8601)
replaces "now" (for audits and tests).
"""


def _archive_tier(archive_to: str | None):
    """The backend's archive tier, opened (None without `archive_to`)."""
    if archive_to is None:
        return None
    from simpost.archiving import ArchiveTier
    from storage_backends.hook import StorageBackendHook

    hook = StorageBackendHook(archive_to)
    return ArchiveTier(archive_to, hook.get_backend(), hook.settings.keep_days)


def _reference_time(params: dict) -> pendulum.DateTime:
    return pendulum.parse(params["reference_time"]) if params.get("reference_time") else pendulum.now("UTC")


@dag(
    dag_id="storage_retention",
    schedule=housekeeping_schedule("SIMPOST_RETENTION_SCHEDULE"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,  # users rely on it; keep days 0 (the default) deletes nothing
    max_active_runs=1,
    default_args={"execution_timeout": task_timeout()},
    tags=["simpost", "storage", "retention"],
    doc_md=DOC,
    params={
        # every type admits null, so the trigger form marks none required: a default run needs no input
        "dry_run": Param(False, type=["null", "boolean"], description="List what would be archived and deleted; change nothing."),
        "backends": Param([], type=["null", "array"], items={"type": "string", "minLength": 1},
                          description="Only these storage_backend connection ids (empty: all)."),
        "older_than_days": Param(None, type=["null", "integer"], minimum=0,
                                 description="Override every backend's keep days (manual purge)."),
        "reference_time": Param(None, type=["null", "string"],
                                description="ISO-8601 time to count ages from instead of now."),
        "stale_work_dir_days": Param(STALE_WORK_DIR_DAYS, type=["null", "number"], minimum=0,
                                     description="Remove post-processing work dirs older than this."),
    },
)
def storage_retention():
    @task
    def list_backends():
        from simpost_airflow.backends import storage_backend_ids

        return storage_backend_ids(get_current_context()["params"]["backends"], "retention")

    @task(map_index_template="{{ backend_id }}")
    def clean_backend(backend_id: str):
        from simpost.paths import work_root
        from simpost.retention import Catalogued, clean, record_deleted
        from simpost_airflow.catalog import open_catalog
        from storage_backends.hook import StorageBackendHook

        context = get_current_context()
        params = context["params"]
        hook = StorageBackendHook(backend_id)
        keep_days = hook.settings.keep_days if params["older_than_days"] is None else params["older_than_days"]
        work = work_root() / re.sub(r"[^A-Za-z0-9._-]+", "_", f"storage_retention-{context['run_id']}-{backend_id}")
        try:
            with open_catalog() as catalog:
                catalogued = Catalogued(catalog, backend_id, _archive_tier(hook.settings.archive_to), work)
                summary = clean(hook.get_backend(), keep_days, _reference_time(params), bool(params["dry_run"]),
                                log.info, record_deleted(catalog, backend_id), catalogued)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log.info("retention %s: archived %d, deleted %d (%d bytes), kept %d (%d not archived), errors %d", backend_id,
                 len(summary["archived"]), len(summary["deleted"]), summary["deleted_bytes"], summary["kept"],
                 len(summary["not_archived"]), len(summary["errors"]))
        problems = summary["errors"] + summary["not_archived"]
        if problems:
            raise RuntimeError(f"{backend_id}: {len(summary['errors'])} deletes failed, {len(summary['not_archived'])}"
                               f" expired copies kept because their archive copy failed: {problems[:3]}")
        return {"backend": backend_id, **summary}

    @task
    def clean_work_dirs():
        from simpost.paths import work_root
        from simpost.retention import remove_stale_work_dirs

        params = get_current_context()["params"]
        days = STALE_WORK_DIR_DAYS if params["stale_work_dir_days"] is None else params["stale_work_dir_days"]
        return remove_stale_work_dirs(work_root(), days,
                                      _reference_time(params).timestamp(), log.info)

    @task(trigger_rule="all_done")
    def report(backend_ids: list | None, summaries):
        if backend_ids is None:
            raise RuntimeError("retention: listing the backends failed (see list_backends); nothing was cleaned")
        done = {s["backend"]: s for s in summaries or []}
        if not backend_ids:
            log.info("retention: no backend, nothing cleaned")
        for backend_id in backend_ids:
            s = done.get(backend_id)
            log.info("retention %s: %s", backend_id,
                     "FAILED (see its mapped task)" if s is None else
                     f"deleted {len(s['deleted'])} ({s['deleted_bytes']} bytes), kept {s['kept']}")
        failed = sorted(set(backend_ids) - set(done))
        if failed:
            raise RuntimeError(f"retention failed on backends {failed}; the others were cleaned")
        return list(done.values())

    backend_ids = list_backends()
    summaries = clean_backend.expand(backend_id=backend_ids)
    report(backend_ids, summaries)
    clean_work_dirs()


storage_retention()
