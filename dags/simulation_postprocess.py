"""simulation_postprocess: one run per finished simulation; wiring only, the work lives in plugins/."""
from __future__ import annotations

import logging
import os
import shutil
from contextlib import contextmanager
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, BaseHook, BaseOperatorLink, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

log = logging.getLogger(__name__)

UPLOADS = Asset("simpost_uploads")
UPLOAD_QUEUE = os.environ.get("SIMPOST_UPLOAD_QUEUE", "default")
PARSE_QUEUE = os.environ.get("SIMPOST_PARSE_QUEUE", "default")
RETRY_DELAY = timedelta(seconds=float(os.environ.get("SIMPOST_RETRY_DELAY", "30")))
PRECISION_S = 100  # default summarizing precision; the form may send null (only three params are required)

DOC = """
### simulation_postprocess
Post-processes one OMNeT++ simulation: **collect** the result folder, **parse** `.vec`/`.vci`/`.sca`,
compute **stats** and graphs, **zip** them with a SHA-256 manifest, **upload** the archive to a storage
backend and **notify** the user (e-mail) and the simulator (HTTP callback) with the share link.
`cleanup` removes the run's work dir whatever happened; a failure mails and calls back too.

Trigger conf (see the form): `simulation_id`, `results_dir` (relative to `SIMPOST_RESULTS_ROOT`) and
`storage_backend` (a `storage_backend` connection id) are required.

Archive: `INFO.txt`, `omnetpp.ini`, `csv/scalars.csv`, `csv/statistics.csv`, `csv/vectors.csv`,
`csv/vectors/*` (resampled every `summarizing_precision` s), `graphs/`, `simrun/simrun-stats.csv`,
`MANIFEST.sha256`. `check_backend` first refuses a `storage_backend` that does not exist, is invalid or
is inactive. The share link is the run's note (top of the run's page, when the `airflow_api`
connection exists) and the `upload` task's **Details** tab: **Extra Links > Share link** (Airflow 3.3
shows task links only there); the `upload` and `notify` logs and the `upload` XCom hold it too.
"""

PARAMS = {
    "simulation_id": Param(
        type="string", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="The simulator's id of the run: letters, digits, '.', '_', '-' (at most 128).",
    ),
    "title": Param(None, type=["null", "string"],
                   description="Human title; slugified into the archive name (optional)."),
    "results_dir": Param(
        type="string", minLength=1,
        description="Folder of the run's files, relative to the results root (or absolute inside it).",
    ),
    "runconfig": Param(None, type=["null", "string"],
                       description="OMNeT++ config to keep when the folder holds several."),
    "summarizing_precision": Param(PRECISION_S, type=["null", "number"], exclusiveMinimum=0,
                                   description="Seconds between resampled vector points."),
    "statistics": Param(
        "all",
        anyOf=[{"type": "string", "enum": ["all", "ops"]},
               {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}],
        description='What to summarize and plot: "all", "ops" (the OPS list) or glob patterns on result names.',
    ),
    "storage_backend": Param(type="string", minLength=1,
                             description="Id of the storage_backend connection to upload to."),
    "notification_email": Param(None, type=["null", "string"], pattern=r"^[^@\s]+@[^@\s]+$",
                                description="Who gets the link by e-mail (optional)."),
    "callback_endpoint": Param(None, type=["null", "string"],
                               description="Path POSTed on the simulator_api connection (optional)."),
}


class ShareLink(BaseOperatorLink):
    """The upload's share link as a button on the task; evaluated on the worker, read back from XCom."""

    name = "Share link"
    xcom_key = "share_link"

    def get_link(self, operator, *, ti_key):
        uploaded = ti_key.xcom_pull(task_ids=ti_key.task_id)
        return uploaded["link"] if uploaded else ""


def _note_share_link(context, link: str) -> None:
    """The link as the run's note, the first thing on the run's page (Airflow 3.3 shows a task's links
    only under its Details tab). Needs the airflow_api connection; never fails the upload."""
    from simpost.airflow_api import AirflowApi
    from simpost.notify import one_line

    try:
        api = AirflowApi.from_connection(BaseHook.get_connection("airflow_api"), timeout=10)
        api.add_run_note(context["dag_run"].dag_id, context["run_id"], f"**Share link:** [{link}]({link})")
    except AirflowNotFoundException:
        log.info("upload: no airflow_api connection, so the run's note does not show the share link")
    except Exception as err:  # the archive is uploaded; the note is a convenience
        log.warning("upload: could not put the share link in the run's note: %s", one_line(err))


@contextmanager
def _final(*errors):
    """Bad input does not get better on retry: fail at once, so the failure mail goes out now.

    Every other error (a worker lost, a backend down) is retried; all stages are safe to rerun.
    """
    try:
        yield
    except errors as err:
        raise AirflowFailException(str(err)) from None


def _work_dir():
    from simpost.paths import run_work_dir

    return run_work_dir(get_current_context()["run_id"])


def _send(params: dict, payload: dict) -> None:
    """Call the simulator back, then mail the user, whichever of the two the conf asked for.

    The callback goes first: if the task is retried, the simulator (idempotent by simulation_id)
    may hear twice, but the user never gets a second mail.
    """
    from simpost.notify import mail

    if params.get("callback_endpoint"):
        import requests
        from airflow.providers.http.hooks.http import HttpHook
        from tenacity import retry_if_exception_type, stop_after_attempt, wait_exponential

        HttpHook(method="POST", http_conn_id="simulator_api").run_with_advanced_retry(
            _retry_args={"stop": stop_after_attempt(3), "wait": wait_exponential(min=1, max=10),
                         "retry": retry_if_exception_type(requests.exceptions.ConnectionError),
                         "reraise": True},
            endpoint=params["callback_endpoint"], json=payload,
        )
        log.info("notify: called back %s", params["callback_endpoint"])
    if params.get("notification_email"):
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        subject, body = mail(params.get("title", ""), payload)
        with SmtpHook(smtp_conn_id="smtp_default") as smtp:
            sender = os.environ.get("SIMPOST_MAIL_FROM") or smtp.from_email or "simpost@localhost"
            smtp.send_email_smtp(to=params["notification_email"], subject=subject, html_content=body,
                                 from_email=sender)
        log.info("notify: mailed %s", params["notification_email"])


def _on_failure(context) -> None:
    """A failed run still tells the user and the simulator, with the task and a one-line reason."""
    from simpost.notify import failure_payload, one_line

    params = context["params"]
    payload = failure_payload(params["simulation_id"], context["ti"].task_id,
                              one_line(context.get("exception") or "failed"))
    try:
        _send(params, payload)
    except Exception as err:  # the run has already failed; do not mask that with a notify error
        log.error("failure notification not sent: %s", one_line(err))


@dag(
    dag_id="simulation_postprocess",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params=PARAMS,
    is_paused_upon_creation=False,
    max_active_runs=16,
    tags=["simpost", "omnetpp", "postprocess"],
    doc_md=DOC,
    default_args={"retries": 2, "retry_delay": RETRY_DELAY, "retry_exponential_backoff": True,
                  "on_failure_callback": _on_failure},
)
def simulation_postprocess():
    @task
    def check_backend():
        """A backend that is missing, invalid or inactive fails the run now, not after the parse."""
        from storage_backends.hook import StorageBackendHook
        from storage_backends.settings import SettingsError

        name = get_current_context()["params"]["storage_backend"]
        with _final(SettingsError):
            settings = StorageBackendHook(name).upload_settings()
        log.info("check_backend: uploads will go to %s", settings.describe())

    @task
    def collect():
        from omnetpp_results import ResultsError
        from simpost.collect import collect as collect_files
        from simpost.paths import PathError

        params = get_current_context()["params"]
        work = _work_dir()
        shutil.rmtree(work, ignore_errors=True)  # a retried or cleared run starts from its sources again
        with _final(PathError, ResultsError):
            return {"work_dir": str(work), **collect_files(params["results_dir"], work / "input", log.info)}

    @task(pool="results_parsing", queue=PARSE_QUEUE)
    def parse(collected: dict):
        import omnetpp_results

        params = get_current_context()["params"]
        parsed_dir = os.path.join(collected["work_dir"], "parsed")
        with _final(omnetpp_results.ResultsError):
            summary = omnetpp_results.parse(collected["input_dir"], parsed_dir, runconfig=params["runconfig"],
                                            statistics=params["statistics"], progress=log.info)
        return {"work_dir": collected["work_dir"], "parsed_dir": parsed_dir, "summary": summary}

    @task(pool="results_parsing", queue=PARSE_QUEUE)
    def stats(parsed: dict):
        import omnetpp_results

        params = get_current_context()["params"]
        content_dir = os.path.join(parsed["work_dir"], "archive")
        with _final(omnetpp_results.ResultsError):
            summary = omnetpp_results.stats(parsed["parsed_dir"], content_dir,
                                            precision=float(params["summarizing_precision"] or PRECISION_S),
                                            statistics=params["statistics"], progress=log.info)
        return {"work_dir": parsed["work_dir"], "content_dir": content_dir, "summary": summary}

    @task(task_id="zip")
    def zip_archive(computed: dict):
        import omnetpp_results

        archive = omnetpp_results.write_archive(computed["content_dir"],
                                                os.path.join(computed["work_dir"], "results.zip"))
        log.info("zip: %s files, %s bytes, sha256 %s", archive["files"], archive["size"], archive["sha256"])
        return archive

    @task(pool="storage_uploads", queue=UPLOAD_QUEUE, retries=4, outlets=[UPLOADS])
    def upload(archive: dict):
        from storage_backends import remote_name
        from storage_backends.hook import StorageBackendHook
        from storage_backends.settings import SettingsError

        context = get_current_context()
        params = context["params"]
        with _final(SettingsError, AirflowNotFoundException):  # a backend defined wrong, or not at all
            hook = StorageBackendHook(params["storage_backend"])
            keep_days = hook.settings.keep_days
        name = remote_name(params["title"], params["simulation_id"], archive["sha256"])
        uploaded = hook.get_backend().upload(archive["path"], name, keep_days).as_dict()
        log.info("upload: %s -> %s", name, uploaded["link"])
        _note_share_link(context, uploaded["link"])
        context["outlet_events"][UPLOADS].extra = {"simulation_id": params["simulation_id"],
                                                   "backend": params["storage_backend"], **uploaded}
        return uploaded

    @task
    def notify(uploaded: dict, computed: dict):
        from simpost.notify import success_payload

        params = get_current_context()["params"]
        payload = success_payload(params["simulation_id"], uploaded, computed["summary"].get("simrun"))
        log.info("notify: share link %s", uploaded["link"])
        _send(params, payload)
        return payload

    @task(trigger_rule="all_done", on_failure_callback=None)
    def cleanup():
        work = _work_dir()
        shutil.rmtree(work, ignore_errors=True)
        log.info("cleanup: removed %s", work)

    collected = collect()
    check_backend() >> collected
    computed = stats(parse(collected))
    uploaded = upload(zip_archive(computed))
    uploaded.operator.operator_extra_links = (ShareLink(),)
    notify(uploaded, computed)  # a leaf, so a failure anywhere upstream fails the run
    uploaded >> cleanup()  # the work dir is needed up to the upload, not by notify


simulation_postprocess()
