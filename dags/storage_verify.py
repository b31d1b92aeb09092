"""storage_verify: every catalogued copy checked against its service, lost and failed ones copied
again, unknown uploads adopted; wiring only (the work is simpost.verify)."""
from __future__ import annotations

import logging
import os
import re
import shutil

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException
from simpost.limits import housekeeping_schedule, retry_delay, task_timeout

log = logging.getLogger(__name__)

DOC = """
### storage_verify
Checks that every archive is where the catalog says it is (git-annex's `fsck` and `copy --auto`):
1. **adopt**: uploads of this project the catalog does not know (made before it existed) become
   copies of their archive (the name carries the simulation id and the SHA-256's first 12 digits);
2. **verify**: each copy the catalog calls `present` is asked of its service (local_cloud re-hashes
   the stored bytes; Dropbox gives its content_hash, Seafile its file id, all their size): a copy
   that is gone or changed becomes `lost`; a present S3 copy whose signed link has ended or ends
   within a day (at most 7 days, while the copy is kept its keep days) gets a fresh one in the catalog;
3. **repair**: `failed` and `lost` copies, and archives with fewer copies than their run asked for,
   are copied again from a present copy (downloaded into the work dir, SHA-256 checked, uploaded).

An archive with no present copy left fails the run, naming it, and mails the admin once per run
(the address in the Variable `simpost_admin_email`, through the `smtp_default` connection; none
in a dry run). At most `SIMPOST_VERIFY_BATCH`
(default 1000) copies and archives per run, the longest unverified first: the catalog keeps the
state, written copy by copy (verified ones a chunk of 100 at a time), so a killed worker loses
nothing: the task's retry or the next run goes on. Schedule:
`SIMPOST_VERIFY_SCHEDULE` (default `@daily`). Params: `backend` (only that backend: its copies are
verified and repaired, from any other), `dry_run` (say what would change, change nothing).
Backends are listed as storage_retention lists them (`airflow_api` connection, Variable
`storage_backends`); the catalog is the `simpost_catalog` connection.
"""


def _batch() -> int:
    value = os.environ.get("SIMPOST_VERIFY_BATCH", "1000")
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"SIMPOST_VERIFY_BATCH must be a whole number >= 1, not {value!r}")
    return int(value)


@dag(
    dag_id="storage_verify",
    schedule=housekeeping_schedule("SIMPOST_VERIFY_SCHEDULE"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,
    max_active_runs=1,
    default_args={"execution_timeout": task_timeout(), "retries": 2, "retry_delay": retry_delay()},
    tags=["simpost", "storage", "verify"],
    doc_md=DOC,
    params={
        "backend": Param(None, type=["null", "string"], minLength=1,
                         description="Only this storage_backend connection id (empty: all)."),
        "dry_run": Param(False, type=["null", "boolean"],
                         description="Say what is lost and what would be copied; change nothing."),
    },
)
def storage_verify():
    @task
    def list_backends():
        from simpost_airflow.backends import storage_backend_ids

        only = get_current_context()["params"]["backend"]
        return storage_backend_ids([only] if only else None, "verify")

    @task
    def verify(backend_ids: list):
        from simpost.paths import work_root
        from simpost.verify import verify_pass
        from simpost_airflow.catalog import open_catalog
        from simpost_airflow.run import mail_admin_no_copy_left
        from storage_backends.hook import StorageBackendHook

        context = get_current_context()
        params = context["params"]
        backends = {}
        for backend_id in backend_ids:
            try:
                hook = StorageBackendHook(backend_id)
                backends[backend_id] = hook.get_backend()
            except Exception as err:  # noqa: BLE001 - one wrong connection must not stop the others
                log.warning("verify: skipping %s: %s", backend_id, err)
        work = work_root() / re.sub(r"[^A-Za-z0-9._-]+", "_", f"storage_verify-{context['run_id']}")
        try:
            with open_catalog() as catalog:
                report = verify_pass(catalog, backends, work, batch=_batch(), dry_run=bool(params["dry_run"]),
                                     only=params["backend"], since=context["dag_run"].start_date, log=log.info)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if report.unrecoverable:
            if not report.dry_run:
                mail_admin_no_copy_left(context, report.unrecoverable, report.summary())
            raise AirflowFailException(f"verify: {len(report.unrecoverable)} archive(s) have no present copy left:"
                                       f" {', '.join(report.unrecoverable[:20])}")
        return report.as_dict()

    verify(list_backends())


storage_verify()
