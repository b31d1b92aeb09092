"""The Airflow side of simulation_postprocess's tasks: the run's conf, stage bookkeeping (timeout,
cancel, figures), progress and final callbacks, the failure mail, and the share link on the run's page.

The DAG file stays wiring; the work itself lives in the plain modules (omnetpp_results, simpost,
storage_backends) that know nothing of Airflow.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
from contextlib import contextmanager

from airflow.sdk import BaseHook, BaseOperatorLink, get_current_context
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

log = logging.getLogger(__name__)

#: steps that are part of a stage without being one (the schema names stages only)
STAGE_OF_TASK = {"copies": "upload"}
STAGE_FIGURES = "stage_figures"  # XCom key: each stage's seconds and peak RSS, for the run-wide figures


class ShareLink(BaseOperatorLink):
    """The upload's share link as a button on the task; evaluated on the worker, read back from XCom."""

    name = "Share link"
    xcom_key = "share_link"

    def get_link(self, operator, *, ti_key):
        uploaded = ti_key.xcom_pull(task_ids=ti_key.task_id, map_indexes=ti_key.map_index)
        return (uploaded or {}).get("link") or ""


def note_share_link(context, link: str, problems: list[str], copies: str | None = None) -> None:
    """The link as the run's note, the first thing on the run's page (Airflow 3.3 shows a task's links
    only under its Details tab), with the input problems of a run that ended with warnings."""
    line = f"**Share link:** [{link}]({link})"
    if problems:  # Airflow has no warning state for a run: its page says it here
        line += f" · **Warning: {len(problems)} input problem(s)**, the rest was exported: {_markdown_text(problems[0])}"
    if copies:
        line += f"\n\n**Copies:** {copies}"
    _note(context, line)


def note_failure(context, stage: str, reason: str) -> None:
    """A failed run's page says which stage failed and why, in the words the mail and callback use,
    so nobody has to find the red task and read its log."""
    from simpost.notify import FAIL_NOW

    reason = reason.removeprefix(f"{FAIL_NOW}: ")  # how a stage fails at once: no news to a person, as in the mail
    _note(context, f"**Failed at stage {stage}:** {_markdown_text(reason)}")


def cancel_reason(context) -> str:
    """The reason a cancelled run gives, with who cancelled it when Airflow's audit log says."""
    who = _api_call(lambda api: api.marked_failed_by(context["dag_run"].dag_id, context["run_id"]))
    by = f" by {who}" if who else ""
    return f"cancelled{by}: the run was marked failed (simpost cancel, the REST API or the UI)"


def _markdown_text(text: str) -> str:
    """Text from an error shown literally in the note, which the UI renders as Markdown."""
    return re.sub(r"([\\`*_{}\[\]()<>#+|!~-])", r"\\\1", text)


def _note(context, line: str) -> None:
    """Put `line` first in the run's note; never fails the task."""
    _api_call(lambda api: api.add_run_note(context["dag_run"].dag_id, context["run_id"], line))


def _api_call(call):
    """One call to this Airflow's REST API through the airflow_api connection, or None: the note and
    the canceller's name are conveniences, and the task's own outcome stands without them."""
    from simpost.airflow_api import AirflowApi
    from simpost.notify import one_line

    try:
        return call(AirflowApi.from_connection(BaseHook.get_connection("airflow_api"), timeout=10))
    except AirflowNotFoundException:
        log.info("no airflow_api connection: the run's page shows no note")
    except Exception as err:
        log.warning("the run's note: %s", one_line(err))
    return None


@contextmanager
def final(*errors):
    """Bad input does not get better on retry: fail at once, so the failure mail goes out now.

    Every other error (a worker lost, a backend down) is retried; all stages are safe to rerun.
    """
    try:
        yield
    except errors as err:
        raise AirflowFailException(str(err)) from None


def params_of(context) -> dict:
    """The run's conf, optional fields left empty in the form given their defaults."""
    from simpost.conf import with_defaults

    return with_defaults(context["params"])


def work_dir():
    from simpost.paths import run_work_dir

    return run_work_dir(get_current_context()["run_id"])


def run_info(context):
    from simpost.result import RunInfo

    run = context["dag_run"]
    return RunInfo(context["params"]["simulation_id"], run.run_id, context["params"]["title"], run.start_date)


def stage_figures(ti) -> list[dict]:
    from simpost.stage import STAGES

    found = [ti.xcom_pull(task_ids=s, key=STAGE_FIGURES) for s in STAGES]  # a list for a mapped stage
    return [f for value in found for f in (value if isinstance(value, list) else [value]) if f]


def _still_running(ti) -> bool:
    """Whether Airflow still has this task running. A run marked failed (a cancel) kills its running
    stage only at the next heartbeat, seconds later: a stage ending meanwhile must not count."""
    states = ti.get_task_states(dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id])
    key = ti.task_id if ti.map_index is None or ti.map_index < 0 else f"{ti.task_id}_{ti.map_index}"
    return states.get(ti.run_id, {}).get(key) == "running"


@contextmanager
def stage(name: str, *bad_input: type[Exception], timed: bool = True):
    """One stage of the run: bad input and the run's timeout fail it at once, SIGTERM (a cancel) stops
    it; its figures go to XCom and, with callback_events "all", the simulator hears its end."""
    from simpost.stage import STAGES, Deadline, RunTimeout, StageStopped, bounded

    context = get_current_context()
    params, run = params_of(context), run_info(context)
    deadline = Deadline(run.started_at, float(params["run_timeout"])) if timed else None
    with final(RunTimeout, *bad_input), bounded(name, deadline) as figures:
        if name == STAGES[0]:
            _progress(params, run.start().as_dict())
        yield
    if not _still_running(context["ti"]):
        shutil.rmtree(work_dir(), ignore_errors=True)  # cleanup may have run already
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


def run_page(context) -> str | None:
    """The run's page in the Airflow UI, when the deployment says where that is ([api] base_url)."""
    from urllib.parse import quote

    from airflow.sdk.configuration import conf

    base = conf.get("api", "base_url", fallback=None)
    if not base:
        return None
    return f"{base.rstrip('/')}/dags/{quote(context['dag_run'].dag_id)}/runs/{quote(context['run_id'], safe='')}"


def send(params: dict, final: dict, context=None) -> None:
    """Call the simulator back with the run's final event, then mail the user, as the conf asked.

    The callback goes first: if the task is retried, the simulator (idempotent by simulation_id)
    may hear twice, but the user never gets a second mail.
    """
    if params.get("callback_endpoint"):
        _post(params, final, attempts=3)
        log.info("notify: called back %s", params["callback_endpoint"])
    if params.get("notification_email"):
        _mail(params["notification_email"], final, run_page(context or get_current_context()))
        log.info("notify: mailed %s", params["notification_email"])


def _mail(to: str, final: dict, page: str | None) -> None:
    from simpost.notify import content

    mail(to, content(final, page))


def mail(to: str, mail_content) -> None:
    """A multipart/alternative mail (plain text and HTML, from a simpost.mailbody.MailContent)
    through the smtp_default connection.

    SmtpHook.send_email_smtp can only build an HTML part (its MIMEText is always "html"), so the
    message is built here and sent on the client the hook opened and logged in (TLS, auth as the
    connection says). One attempt: the calling task's retries are the outer layer."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook
    from simpost.mailbody import message

    with SmtpHook(smtp_conn_id="smtp_default") as smtp:
        sender = os.environ.get("SIMPOST_MAIL_FROM") or smtp.from_email or "simpost@localhost"
        smtp._smtp_client.send_message(message(mail_content, sender, to), sender, [to])


ADMIN_MAIL_VARIABLE = "simpost_admin_email"


def mail_admin_no_copy_left(context, archives: list[str], summary: str) -> str | None:
    """storage_verify's one admin mail of a run that found archives with no copy left, to the
    address in the Variable `simpost_admin_email`; the address mailed, or None (no Variable, or
    the mail failed: logged, for the run fails naming the archives all the same)."""
    from airflow.sdk import Variable
    from simpost.notify import no_copy_left, one_line

    admin = Variable.get(ADMIN_MAIL_VARIABLE, default=None)
    if not admin:
        log.warning("verify: no Variable %s: nobody is mailed about the archives with no copy left",
                    ADMIN_MAIL_VARIABLE)
        return None
    try:
        mail(admin, no_copy_left(archives, summary, run_page(context)))
    except Exception as err:  # noqa: BLE001 - the run's failure names the archives; the mail is extra
        log.error("verify: the admin mail was not sent: %s", one_line(err))
        return None
    log.info("verify: mailed the admin (%s) about %d archive(s) with no copy left", admin, len(archives))
    return admin


def announce_failure(context, stage: str, reason: str) -> dict:
    """The run's one failure event: kept as its result XCom, then sent; a send error is only logged."""
    from simpost.notify import one_line
    from simpost.result import RESULT_KEY, stage_seconds

    final = run_info(context).failed(stage, reason, stage_seconds(stage_figures(context["ti"]))).as_dict()
    context["ti"].xcom_push(key=RESULT_KEY, value=final)
    note_failure(context, stage, final["reason"])
    try:
        send(params_of(context), final, context)
    except Exception as err:  # the run has already failed; do not mask that with a notify error
        log.error("failure notification not sent: %s", one_line(err))
    return final


def on_failure(context) -> None:
    """A failed run still tells the user and the simulator, with the stage and a one-line reason."""
    from simpost.notify import one_line
    from simpost.stage import StageStopped

    error = context.get("exception")
    if isinstance(error, StageStopped):
        return  # a cancel: cleanup tells them, once, whichever stage was running
    task_id = context["ti"].task_id
    announce_failure(context, STAGE_OF_TASK.get(task_id, task_id), one_line(error or "failed"))
