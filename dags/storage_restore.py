"""storage_restore: an archived archive copied back for some days, then its link sent; wiring only
(the work is simpost.restore: begin, ready, finish)."""
from __future__ import annotations

import logging
import re
import shutil
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException
from simpost.limits import FIRST_RESTORE_POKE_S, THAW_TIMEOUT, restore_poke_seconds, retry_delay, task_timeout

log = logging.getLogger(__name__)
DEFAULT_KEEP_DAYS = 7
# Airflow 3.3 fails a reschedule-mode sensor whose poke's executor event reaches the scheduler after its
# next poke was queued (apache/airflow#71172, open); a retry of `wait` only asks again, so it absorbs that
WAIT_RETRIES = 3

DOC = """
### storage_restore
Brings an archive that storage_retention moved to the archive tier (a backend's `archive_to`) back
to a backend people download from: copied from its archived copy (SHA-256 checked), verified on the
target, recorded `present` in the catalog until **keep days** pass ("restored until"; then
storage_retention deletes it again, the archived copy stays). The new share link is mailed and
called back as a `restored` event of the run result JSON; a failed restore is mailed and called
back with its one-line reason.

An archived copy in a cold S3 class (`archive_storage_class`, e.g. GLACIER) is first thawed by S3
(RestoreObject, in the backend's `restore_tier` for `restore_days`): **wait** asks S3 after some seconds,
then at doubling intervals up to `SIMPOST_RESTORE_POKE_SECONDS` (default 300), and gives its worker
back in between (reschedule mode), for at most 3 days; a request that joined a running restore
asks the same way whether it ended. While it runs the catalog says `restoring` ("ready in about N hours"):
a second request for the same archive joins the first instead of copying twice; a restore whose
worker was killed is taken over by the next request once it has been silent for longer than the
task timeout. An archive with no copy left fails at once.
Params: `simulation_id` (its newest archive) or the archive's `sha256`; `storage_backend` (default:
where it was first uploaded); `keep_days`; `notification_email`; `callback_endpoint`.
"""


def _backends(*ids):
    from storage_backends.hook import StorageBackendHook

    return {b: StorageBackendHook(b).get_backend() for b in set(ids) if b}


def _plan(context):
    from simpost.restore import Plan

    return Plan.from_dict(context["ti"].xcom_pull(task_ids="begin"))


def _failed(context) -> None:
    """A restore that failed for good: its claim released, the user and the simulator told why."""
    from simpost.notify import FAIL_NOW, RESTORE_STAGE, one_line
    from simpost.restore import abandon
    from simpost.result import RESULT_KEY, RunInfo
    from simpost_airflow.catalog import open_catalog
    from simpost_airflow.run import send

    reason = one_line(context.get("exception") or "failed").removeprefix(f"{FAIL_NOW}: ")
    about = context["ti"].xcom_pull(task_ids="begin", key="archive") or {}
    if context["ti"].task_id != "begin" and context["ti"].xcom_pull(task_ids="begin"):
        with open_catalog() as catalog:
            abandon(catalog, _plan(context), reason)
    simulation_id = about.get("simulation_id") or context["params"]["simulation_id"]
    if not simulation_id:
        log.error("restore failed (not announced: no simulation id known): %s", reason)
        return
    run = context["dag_run"]
    info = RunInfo(simulation_id, run.run_id, about.get("title"), run.start_date)
    body = info.failed(RESTORE_STAGE, reason).as_dict()
    context["ti"].xcom_push(key=RESULT_KEY, value=body)
    try:
        send(context["params"], body, context)
    except Exception as err:  # the restore has failed already; a notify error must not mask that
        log.error("failure notification not sent: %s", one_line(err))


@dag(
    dag_id="storage_restore",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,
    default_args={"execution_timeout": task_timeout(), "on_failure_callback": _failed},
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
    def begin():
        from simpost.restore import RestoreFailed, RestoreRefused, begin, default_target, find_archive, source_of
        from simpost_airflow.catalog import open_catalog

        context = get_current_context()
        params = context["params"]
        try:
            with open_catalog() as catalog:
                archive = find_archive(catalog, params["simulation_id"], params["sha256"])
                context["ti"].xcom_push(key="archive", value={"simulation_id": archive.simulation_id,
                                                              "title": archive.title})
                target = params["storage_backend"] or default_target(archive)
                backends = _backends(target, source_of(archive, target).backend)
                plan = begin(catalog, archive, target, backends, f"storage_restore/{context['run_id']}", log.info)
        except RestoreRefused as err:
            raise AirflowFailException(f"restore refused: {err}") from None
        except RestoreFailed as err:
            raise AirflowFailException(str(err)) from None
        return plan.as_dict()

    @task.sensor(poke_interval=min(FIRST_RESTORE_POKE_S, restore_poke_seconds()), exponential_backoff=True,
                 max_wait=timedelta(seconds=restore_poke_seconds()), timeout=THAW_TIMEOUT.total_seconds(),
                 mode="reschedule", retries=WAIT_RETRIES, retry_delay=retry_delay())
    def wait(plan: dict) -> bool:
        """Whether the archived copy is readable (S3 thawing it) or the joined restore ended."""
        from simpost.restore import Plan, RestoreFailed, ready
        from simpost_airflow.catalog import open_catalog

        plan = Plan.from_dict(plan)
        try:
            with open_catalog() as catalog:
                return ready(catalog, plan, _backends(plan.source) if plan.step == "thaw" else {}, log.info)
        except RestoreFailed as err:
            raise AirflowFailException(str(err)) from None

    @task
    def finish(plan: dict) -> dict:
        from simpost.paths import work_root
        from simpost.restore import Plan, RestoreFailed, finish
        from simpost.result import RESULT_KEY, Restored, RunInfo
        from simpost_airflow.catalog import open_catalog

        context = get_current_context()
        plan, run = Plan.from_dict(plan), context["dag_run"]
        work = work_root() / re.sub(r"[^A-Za-z0-9._-]+", "_", f"storage_restore-{context['run_id']}")
        try:
            with open_catalog() as catalog:
                backends = _backends(plan.target, plan.source) if plan.source else {}
                outcome = finish(catalog, plan, backends, context["params"]["keep_days"] or DEFAULT_KEEP_DAYS,
                                 work, log.info)
        except RestoreFailed as err:
            raise AirflowFailException(str(err)) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        archive, copy = outcome.archive, outcome.copy
        info = RunInfo(archive.simulation_id, run.run_id, archive.title, run.start_date)
        link_until = copy.link_until.isoformat() if copy.link_until else None
        body = info.restored(Restored(copy.link, archive.size, archive.sha256, link_until, copy.backend)).as_dict()
        context["ti"].xcom_push(key=RESULT_KEY, value=body)
        log.info("restore: %s %s on %s until %s (its link until %s): %s", archive.sha256[:12],
                 "joined a running restore, present" if outcome.joined else "restored", copy.backend,
                 copy.expires.isoformat() if copy.expires else "kept", link_until or "kept", copy.link)
        return body

    @task(on_failure_callback=None)  # the restore succeeded: a mail that failed is no failed restore
    def notify(body: dict) -> None:
        """Apart from finish, so a retried notify never copies again (and never mails twice)."""
        from simpost_airflow.run import send

        send(get_current_context()["params"], body)

    plan = begin()
    done = wait(plan)
    body = finish(plan)
    done >> body
    notify(body)


storage_restore()
