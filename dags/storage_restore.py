"""storage_restore: an archived archive copied back for some days, then its link sent; wiring only
(the work is simpost.restore)."""
from __future__ import annotations

import logging
import re
import shutil

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException
from simpost.limits import task_timeout

log = logging.getLogger(__name__)
DEFAULT_KEEP_DAYS = 7

DOC = """
### storage_restore
Brings an archive that storage_retention moved to the archive tier (a backend's `archive_to`) back
to a backend people download from: copied from its archived copy (SHA-256 checked), verified on the
target, recorded `present` in the catalog until **keep days** pass ("restored until"; then
storage_retention deletes it again, the archived copy stays). The new share link is mailed and
called back as a `restored` event of the run result JSON.

While it runs the catalog says `restoring`: a second request for the same archive waits for the
first and reports its link instead of copying twice. An archive with no copy left fails at once.
Params: `simulation_id` (its newest archive) or the archive's `sha256`; `storage_backend` (default:
where it was first uploaded); `keep_days`; `notification_email`; `callback_endpoint`.
"""


@dag(
    dag_id="storage_restore",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,
    default_args={"execution_timeout": task_timeout()},
    tags=["simpost", "storage", "restore"],
    doc_md=DOC,
    params={
        "simulation_id": Param(None, type=["null", "string"], pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
                               title="Simulation id", description="Restore this simulation's newest archive."),
        "sha256": Param(None, type=["null", "string"], pattern=r"^[0-9a-fA-F]{64}$", title="Archive SHA-256",
                        description="Or: restore the archive with this SHA-256."),
        "storage_backend": Param(None, type=["null", "string"], minLength=1, title="Restore to backend",
                                 description="storage_backend connection id (empty: where it was first uploaded)."),
        "keep_days": Param(DEFAULT_KEEP_DAYS, type=["null", "integer"], minimum=1, maximum=3650,
                           title="Keep days", description="How long the restored copy stays."),
        "notification_email": Param(None, type=["null", "string"], pattern=r"^[^@\s]+@[^@\s]+$",
                                    title="Notification e-mail", description="Who gets the new link (optional)."),
        "callback_endpoint": Param(None, type=["null", "string"], title="Callback endpoint",
                                   description="Path POSTed on the simulator_api connection (optional)."),
    },
)
def storage_restore():
    @task
    def restore():
        from simpost.paths import work_root
        from simpost.restore import RestoreRefused, default_target, find_archive, restore, source_of
        from simpost.result import RESULT_KEY, Restored, RunInfo
        from simpost_airflow.catalog import open_catalog
        from simpost_airflow.run import send
        from storage_backends.hook import StorageBackendHook

        context = get_current_context()
        params, run = context["params"], context["dag_run"]
        work = work_root() / re.sub(r"[^A-Za-z0-9._-]+", "_", f"storage_restore-{context['run_id']}")
        keep_days = params["keep_days"] or DEFAULT_KEEP_DAYS
        try:
            with open_catalog() as catalog:
                archive = find_archive(catalog, params["simulation_id"], params["sha256"])
                target = params["storage_backend"] or default_target(archive)
                backends = {b: StorageBackendHook(b).get_backend() for b in {target, source_of(archive, target).backend}}
                outcome = restore(catalog, archive, target, backends, keep_days, work, log.info)
        except RestoreRefused as err:
            raise AirflowFailException(f"restore refused: {err}") from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        copy = outcome.copy
        info = RunInfo(archive.simulation_id, run.run_id, archive.title, run.start_date)
        body = info.restored(Restored(copy.link, archive.size, archive.sha256,
                                      copy.expires.isoformat() if copy.expires else None, copy.backend)).as_dict()
        context["ti"].xcom_push(key=RESULT_KEY, value=body)
        log.info("restore: %s %s on %s until %s: %s", archive.sha256[:12],
                 "joined a running restore, present" if outcome.joined else "restored", copy.backend,
                 body["expires_at"] or "kept", copy.link)
        send(params, body)
        return body

    restore()


storage_restore()
