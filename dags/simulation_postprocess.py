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
from simpost.conf import DEFAULTS
from simpost.limits import task_timeout

log = logging.getLogger(__name__)

UPLOADS = Asset("simpost_uploads")
UPLOAD_QUEUE = os.environ.get("SIMPOST_UPLOAD_QUEUE", "default")
PARSE_QUEUE = os.environ.get("SIMPOST_PARSE_QUEUE", "default")
RETRY_DELAY = timedelta(seconds=float(os.environ.get("SIMPOST_RETRY_DELAY", "30")))
STAGE_FIGURES = "stage_figures"  # XCom key: each stage's seconds and peak RSS, for the run-wide figures

DOC = """
### simulation_postprocess
Post-processes one OMNeT++ simulation: **collect** the result folder, **parse** `.vec`/`.vci`/`.sca`,
compute **stats** and graphs, **zip** them with a SHA-256 manifest, **upload** the archive to a storage
backend and **notify** the user (e-mail) and the simulator (HTTP callback) with the share link.
`cleanup` removes the run's work dir whatever happened; a failure mails and calls back too, once.
With `callback_events: "all"` the simulator also hears the start and the end of every stage.
Every callback body and the run's `result` XCom follow `plugins/simpost/data/result.schema.json`.
A run that takes longer than `run_timeout` fails at the stage it reached; a run marked failed
(`simpost cancel`, the REST API, the UI) stops, and `cleanup` tells user and simulator.

Trigger conf (see the form): `simulation_id`, `results_dir` (relative to `SIMPOST_RESULTS_ROOT`) and
`storage_backend` (a `storage_backend` connection id) are required.

Archive: `report.html` (the run at a glance, one chart per result name; opens offline) and
`report.pdf`, `INFO.txt`, `omnetpp.ini`, `csv/` (scalars, statistics, histograms, vector summaries,
vectors resampled every `summarizing_precision` s, also in one long-format CSV), `graphs/` (PNG, as
the `graphs` Param says), `simrun/simrun-stats.csv`, `MANIFEST.sha256`. `check_backend` first refuses
a `storage_backend` that does not exist, is invalid or is inactive. The share link is the run's note
(top of the run's page, when the `airflow_api` connection exists) and the `upload` task's **Details**
tab: **Extra Links > Share link** (Airflow 3.3 shows task links only there); the `upload` and `notify`
logs and the `upload` XCom hold it too.
"""

PARAMS = {
    "simulation_id": Param(
        type="string", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="The simulator's id of the run: letters, digits, '.', '_', '-' (at most 128).",
    ),
    "title": Param(None, type=["null", "string"],
                   description="Human title; slugified into the archive name (optional)."),
    "results_dir": Param(
        type="string", minLength=1, maxLength=4096, pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Folder of the run's files, relative to the results root (or absolute inside it).",
    ),
    "runconfig": Param(None, type=["null", "string"],
                       description='OMNeT++ config to keep when the folder holds several; "Config X" '
                                   "(as OPS stores it) works too."),
    "summarizing_precision": Param(DEFAULTS["summarizing_precision"], type=["null", "number"], exclusiveMinimum=0,
                                   description="Seconds between resampled vector points."),
    "statistics": Param(
        DEFAULTS["statistics"],
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
    "callback_events": Param(DEFAULTS["callback_events"], type=["null", "string"], enum=[None, "final", "all"],
                             description='"final": one callback at the end; "all": also at the start and '
                                         "when each stage ends (stage, percent, seconds so far)."),
    "graphs": Param(DEFAULTS["graphs"], type=["null", "string"], enum=[None, "statistic", "vector", "none"],
                    description="PNG graphs per result name, per vector, or none (the report is always written)."),
    "resources": Param(
        None, type=["null", "object"], additionalProperties=False,
        properties={k: {"type": "number", "minimum": 0}
                    for k in ("peak_sim_ram_bytes", "peak_disk_bytes", "sim_wall_seconds")},
        description="What the simulator measured (optional numbers peak_sim_ram_bytes, peak_disk_bytes, "
                    "sim_wall_seconds); reported with the run figures, in the callback and the mail.",
    ),
    "run_timeout": Param(DEFAULTS["run_timeout"], type=["null", "number"], exclusiveMinimum=0,
                         description="Seconds the whole run may take (default 12 h, as OPS); "
                                     "past it the run fails with the failure mail and callback."),
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


def _params(context) -> dict:
    """The run's conf, optional fields left empty in the form given their defaults."""
    from simpost.conf import with_defaults

    return with_defaults(context["params"])


def _work_dir():
    from simpost.paths import run_work_dir

    return run_work_dir(get_current_context()["run_id"])


def _run_info(context):
    from simpost.result import RunInfo

    run = context["dag_run"]
    return RunInfo(context["params"]["simulation_id"], run.run_id, context["params"]["title"], run.start_date)


def _stage_figures(ti) -> list[dict]:
    from simpost.stage import STAGES

    return [f for f in (ti.xcom_pull(task_ids=s, key=STAGE_FIGURES) for s in STAGES) if f]


def _still_running(ti) -> bool:
    """Whether Airflow still has this task running. A run marked failed (a cancel) kills its running
    stage only at the next heartbeat, seconds later: a stage ending meanwhile must not count."""
    states = ti.get_task_states(dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id])
    return states.get(ti.run_id, {}).get(ti.task_id) == "running"


@contextmanager
def _stage(name: str, *bad_input: type[Exception], timed: bool = True):
    """One stage of the run: bad input and the run's timeout fail it at once, SIGTERM (a cancel) stops
    it; its figures go to XCom and, with callback_events "all", the simulator hears its end."""
    from simpost.stage import STAGES, Deadline, RunTimeout, StageStopped, bounded

    context = get_current_context()
    params, run = _params(context), _run_info(context)
    deadline = Deadline(run.started_at, float(params["run_timeout"])) if timed else None
    with _final(RunTimeout, *bad_input), bounded(name, deadline) as figures:
        if name == STAGES[0]:
            _progress(params, run.start().as_dict())
        yield
    if not _still_running(context["ti"]):
        shutil.rmtree(_work_dir(), ignore_errors=True)  # cleanup may have run already
        raise StageStopped(f"stage {name} ended after its run was marked failed; its results are dropped")
    context["ti"].xcom_push(key=STAGE_FIGURES, value=figures.as_dict())
    if name != STAGES[-1]:  # the last stage's end is the final event
        _progress(params, run.stage_ended(name).as_dict())


def _post(params: dict, body: dict, attempts: int) -> None:
    import requests
    from airflow.providers.http.hooks.http import HttpHook
    from tenacity import retry_if_exception_type, stop_after_attempt, wait_exponential

    HttpHook(method="POST", http_conn_id="simulator_api").run_with_advanced_retry(
        _retry_args={"stop": stop_after_attempt(attempts), "wait": wait_exponential(min=1, max=10),
                     "retry": retry_if_exception_type(requests.exceptions.ConnectionError),
                     "reraise": True},
        endpoint=params["callback_endpoint"], json=body,
    )


def _progress(params: dict, event: dict) -> None:
    """A progress callback is news, not the result: a simulator that misses one still gets the final."""
    if params["callback_events"] != "all" or not params.get("callback_endpoint"):
        return
    from simpost.notify import one_line

    try:
        _post(params, event, attempts=1)
    except Exception as err:
        log.warning("progress callback (%s %s) not delivered: %s", event["event"], event.get("stage", ""),
                    one_line(err))


def _send(params: dict, final: dict) -> None:
    """Call the simulator back with the run's final event, then mail the user, as the conf asked.

    The callback goes first: if the task is retried, the simulator (idempotent by simulation_id)
    may hear twice, but the user never gets a second mail.
    """
    from simpost.notify import mail

    if params.get("callback_endpoint"):
        _post(params, final, attempts=3)
        log.info("notify: called back %s", params["callback_endpoint"])
    if params.get("notification_email"):
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        subject, body = mail(final)
        with SmtpHook(smtp_conn_id="smtp_default") as smtp:
            sender = os.environ.get("SIMPOST_MAIL_FROM") or smtp.from_email or "simpost@localhost"
            smtp.send_email_smtp(to=params["notification_email"], subject=subject, html_content=body,
                                 from_email=sender)
        log.info("notify: mailed %s", params["notification_email"])


def _announce_failure(context, stage: str, reason: str) -> dict:
    """The run's one failure event: kept as its result XCom, then sent; a send error is only logged."""
    from simpost.notify import one_line
    from simpost.result import RESULT_KEY, stage_seconds

    final = _run_info(context).failed(stage, reason, stage_seconds(_stage_figures(context["ti"]))).as_dict()
    context["ti"].xcom_push(key=RESULT_KEY, value=final)
    try:
        _send(_params(context), final)
    except Exception as err:  # the run has already failed; do not mask that with a notify error
        log.error("failure notification not sent: %s", one_line(err))
    return final


def _on_failure(context) -> None:
    """A failed run still tells the user and the simulator, with the stage and a one-line reason."""
    from simpost.notify import one_line
    from simpost.stage import StageStopped

    error = context.get("exception")
    if isinstance(error, StageStopped):
        return  # a cancel: cleanup tells them, once, whichever stage was running
    _announce_failure(context, context["ti"].task_id, one_line(error or "failed"))


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
                  "execution_timeout": task_timeout(), "on_failure_callback": _on_failure},
)
def simulation_postprocess():
    @task
    def check_backend():
        """A backend that is missing, invalid or inactive fails the run now, not after the parse."""
        from storage_backends.hook import StorageBackendHook
        from storage_backends.settings import SettingsError

        name = _params(get_current_context())["storage_backend"]
        with _final(SettingsError):
            settings = StorageBackendHook(name).upload_settings()
        log.info("check_backend: uploads will go to %s", settings.describe())

    @task
    def collect():
        from omnetpp_results import ResultsError
        from simpost.collect import collect as collect_files
        from simpost.paths import PathError

        params = _params(get_current_context())
        work = _work_dir()
        shutil.rmtree(work, ignore_errors=True)  # a retried or cleared run starts from its sources again
        with _stage("collect", PathError, ResultsError):
            collected = collect_files(params["results_dir"], work / "input", log.info)
        return {"work_dir": str(work), **collected.as_dict()}

    @task(pool="results_parsing", queue=PARSE_QUEUE)
    def parse(collected: dict):
        import omnetpp_results
        from simpost.conf import runconfig_name

        params = _params(get_current_context())
        parsed_dir = os.path.join(collected["work_dir"], "parsed")
        with _stage("parse", omnetpp_results.ResultsError):
            summary = omnetpp_results.parse(collected["input_dir"], parsed_dir,
                                            runconfig=runconfig_name(params["runconfig"]),
                                            statistics=params["statistics"], progress=log.info).as_dict()
        return {"work_dir": collected["work_dir"], "parsed_dir": parsed_dir, "summary": summary}

    @task(pool="results_parsing", queue=PARSE_QUEUE)
    def stats(parsed: dict):
        import omnetpp_results
        from simpost.result import problem_lines
        from simpost.scalar_stats import scalar_stats

        params = _params(get_current_context())
        content_dir = os.path.join(parsed["work_dir"], "archive")
        with _stage("stats", omnetpp_results.ResultsError):
            summary = omnetpp_results.stats(parsed["parsed_dir"], content_dir,
                                            precision=float(params["summarizing_precision"]),
                                            statistics=params["statistics"], graphs=params["graphs"],
                                            resources=params["resources"], progress=log.info).as_dict()
            found = scalar_stats(content_dir, params["statistics"], summary["runs"])
        return {"work_dir": parsed["work_dir"], "content_dir": content_dir, "summary": summary,
                "scalar_stats": found.as_dict(), "problems": problem_lines(summary["problems"])}

    @task(task_id="zip")
    def zip_archive(computed: dict):
        import omnetpp_results

        with _stage("zip"):
            archive = omnetpp_results.write_archive(computed["content_dir"],
                                                    os.path.join(computed["work_dir"], "results.zip")).as_dict()
        log.info("zip: %s files, %s bytes, sha256 %s", archive["files"], archive["size"], archive["sha256"])
        return archive

    @task(pool="storage_uploads", queue=UPLOAD_QUEUE, retries=4, outlets=[UPLOADS])
    def upload(archive: dict):
        from storage_backends import remote_name
        from storage_backends.hook import StorageBackendHook
        from storage_backends.settings import SettingsError

        context = get_current_context()
        params = _params(context)
        with _stage("upload", SettingsError, AirflowNotFoundException):  # a backend defined wrong, or not at all
            hook = StorageBackendHook(params["storage_backend"])
            name = remote_name(params["title"], params["simulation_id"], archive["sha256"])
            uploaded = hook.get_backend().upload(archive["path"], name, hook.settings.keep_days).as_dict()
        log.info("upload: %s -> %s", name, uploaded["link"])
        _note_share_link(context, uploaded["link"])
        context["outlet_events"][UPLOADS].extra = {"simulation_id": params["simulation_id"],
                                                   "backend": params["storage_backend"], **uploaded}
        return uploaded

    @task
    def notify(uploaded: dict, computed: dict):
        from simpost import result
        from simpost.stage import peak_rss_bytes

        context = get_current_context()
        params, run = _params(context), _run_info(context)
        with _stage("notify", timed=False):  # once uploaded, the results are delivered
            figures, summary = _stage_figures(context["ti"]), computed["summary"]
            peak = max([f["peak_rss_bytes"] for f in figures] + [peak_rss_bytes()])
            delivery = result.Delivery(
                link=uploaded["link"], size=uploaded["size"], sha256=uploaded["sha256"],
                expires_at=uploaded.get("expires_at"), scalar_stats=computed["scalar_stats"],
                sim_runtime_stats=result.sim_runtime_stats(summary.get("simrun")),
                resources=result.resources(summary["resources"], peak, run.seconds()),
                stage_seconds=result.stage_seconds(figures), problems=computed["problems"])
            final = run.succeeded(delivery).as_dict()
            context["ti"].xcom_push(key=result.RESULT_KEY, value=final)  # a retry clears it again
            log.info("notify: share link %s", uploaded["link"])
            _send(params, final)

    @task(on_failure_callback=None)
    def cleanup():
        """Remove the work dir whatever happened. A run marked failed from outside (a cancel) skips
        the stages not yet run and kills the running one, so no stage could tell anyone: cleanup does,
        once, and fails so that the run ends failed."""
        from simpost.stage import cancelled_at

        context = get_current_context()
        work = _work_dir()
        shutil.rmtree(work, ignore_errors=True)
        log.info("cleanup: removed %s", work)
        states = context["ti"].get_task_states(dag_id=context["dag"].dag_id, run_ids=[context["run_id"]])
        stage = cancelled_at(states.get(context["run_id"], {}))
        if stage is not None:
            final = _announce_failure(context, stage, "cancelled: the run was marked failed "
                                                      "(simpost cancel, the REST API or the UI)")
            raise AirflowFailException(final["reason"])

    collected = collect()
    check_backend() >> collected
    computed = stats(parse(collected))
    uploaded = upload(zip_archive(computed))
    uploaded.operator.operator_extra_links = (ShareLink(),)
    notify(uploaded, computed)  # a leaf, so a failure anywhere upstream fails the run
    # the work dir is needed up to the upload, not by notify; a teardown also runs after a cancel, and
    # its failure (a cancel) fails the run
    uploaded >> cleanup().as_teardown(on_failure_fail_dagrun=True)


simulation_postprocess()
