"""simulation_postprocess: one run per finished simulation; wiring only, the work lives in plugins/."""
from __future__ import annotations

import logging
import os
import shutil

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException
from simpost.conf import DEFAULTS
from simpost.limits import retry_delay, task_timeout
from simpost_airflow.run import (ShareLink, announce_failure, cancel_reason, final, note_share_link, on_failure, params_of,
                                 run_info, send, stage, stage_figures, work_dir)

log = logging.getLogger(__name__)

UPLOADS = Asset("simpost_uploads")
UPLOAD_QUEUE = os.environ.get("SIMPOST_UPLOAD_QUEUE", "default")
PARSE_QUEUE = os.environ.get("SIMPOST_PARSE_QUEUE", "default")

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
`storage_backend` (a `storage_backend` connection id, or a list of them: one copy on each) are
required. `upload` runs once per backend (its own retries and log); a copy still failing on its last
try is recorded `failed` in the catalog and the `copies` step fails the run only when fewer than
`min_copies` (default 1) are present; `storage_verify` completes the failed ones later.

Archive: `report.html` (the run at a glance, one chart per result name; opens offline) and
`report.pdf`, `INFO.txt`, `omnetpp.ini`, `csv/` (scalars, statistics, histograms, vector summaries,
vectors resampled every `summarizing_precision` s, also in one long-format CSV), `graphs/` (PNG, as
the `graphs` Param says), `simrun/simrun-stats.csv`, `MANIFEST.sha256`. `check_backend` first refuses
a `storage_backend` that does not exist, is invalid or is inactive. The share link is the run's note
(top of the run's page, when the `airflow_api` connection exists, with every copy) and the `copies`
task's **Details** tab: **Extra Links > Share link** (Airflow 3.3 shows task links only there); the
`upload` (one per backend), `copies` and `notify` logs and XComs hold it too.
"""

#: the trigger form's sections (Airflow's Param `section`); the three required fields stand first, unsectioned,
#: under the form's own "Run Parameters"
RESULTS, DELIVERY, SIMULATOR = "Results", "Delivery", "Simulator"

PARAMS = {
    "simulation_id": Param(
        type="string", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", title="Simulation id",
        description="The simulator's id of the run: letters, digits, '.', '_', '-' (at most 128).",
    ),
    "results_dir": Param(
        type="string", minLength=1, maxLength=4096, pattern=r"^[^\x00-\x1f\x7f]+$", title="Results folder",
        description="Folder of the run's files, relative to the results root (or absolute inside it).",
    ),
    "storage_backend": Param(type=["string", "array"], minLength=1, title="Storage backend(s)",
                             items={"type": "string", "minLength": 1}, minItems=1, uniqueItems=True,
                             description='Id of the storage_backend connection to upload to, or a list of ids '
                                         '(["a", "b"]) for one copy on each.'),
    "title": Param(None, type=["null", "string"], title="Title", section=RESULTS,
                   description="Human title; slugified into the archive name (optional)."),
    "runconfig": Param(None, type=["null", "string"], title="OMNeT++ config", section=RESULTS,
                       description='OMNeT++ config to keep when the folder holds several; "Config X" '
                                   "(as OPS stores it) works too."),
    "statistics": Param(
        DEFAULTS["statistics"], title="Statistics", section=RESULTS,
        anyOf=[{"type": "string", "enum": ["all", "ops"]},
               {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}],
        description='What to summarize and plot: "all", "ops" (the OPS list) or glob patterns on result names.',
    ),
    "summarizing_precision": Param(DEFAULTS["summarizing_precision"], type=["null", "number"], exclusiveMinimum=0,
                                   title="Resampling step (s)", section=RESULTS,
                                   description="Seconds between resampled vector points."),
    "graphs": Param(DEFAULTS["graphs"], type=["null", "string"], enum=[None, "statistic", "vector", "none"],
                    title="Graphs", section=RESULTS,
                    values_display={"statistic": "One per result name", "vector": "One per vector", "none": "None"},
                    description="PNG graphs per result name, per vector, or none (the report is always written)."),
    "min_copies": Param(None, type=["null", "integer"], minimum=1, title="Minimum copies", section=DELIVERY,
                        description="Copies that must be present for the run to succeed (default 1); "
                                    "storage_verify completes the others later."),
    "notification_email": Param(None, type=["null", "string"], pattern=r"^[^@\s]+@[^@\s]+$",
                                title="E-mail to", section=DELIVERY,
                                description="Who gets the link by e-mail (optional)."),
    "callback_endpoint": Param(None, type=["null", "string"], title="Callback path", section=DELIVERY,
                               description="Path POSTed on the simulator_api connection (optional)."),
    "callback_events": Param(DEFAULTS["callback_events"], type=["null", "string"], enum=[None, "final", "all"],
                             title="Callbacks", section=DELIVERY,
                             values_display={"final": "Only at the end", "all": "At the start, per stage, at the end"},
                             description='"final": one callback at the end; "all": also at the start and '
                                         "when each stage ends (stage, percent, seconds so far)."),
    "run_timeout": Param(DEFAULTS["run_timeout"], type=["null", "number"], exclusiveMinimum=0,
                         title="Run timeout (s)", section=DELIVERY,
                         description="Seconds the whole run may take (default 12 h, as OPS); "
                                     "past it the run fails with the failure mail and callback."),
    # an object: Airflow 3.3's form draws every object Param as one JSON editor (no field per key), and
    # the simulator sends it as one object, so it stays one (the REST contract is unchanged)
    "resources": Param(
        None, type=["null", "object"], additionalProperties=False, title="Simulator resources", section=SIMULATOR,
        properties={k: {"type": "number", "minimum": 0}
                    for k in ("peak_sim_ram_bytes", "peak_disk_bytes", "sim_wall_seconds")},
        description='What the simulator measured, a JSON object, every key optional: {"peak_sim_ram_bytes": '
                    '2000000000, "peak_disk_bytes": 5000000000, "sim_wall_seconds": 3600}; shown with the run '
                    "figures in the report, the callback and the mail.",
    ),
}


@dag(
    dag_id="simulation_postprocess",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params=PARAMS,
    is_paused_upon_creation=False,
    max_active_runs=16,
    tags=["simpost", "omnetpp", "postprocess"],
    doc_md=DOC,
    default_args={"retries": 2, "retry_delay": retry_delay(), "retry_exponential_backoff": True,
                  "execution_timeout": task_timeout(), "on_failure_callback": on_failure},
)
def simulation_postprocess():
    @task
    def check_backend():
        """A backend that is missing, invalid or inactive fails the run now, not after the parse; so does
        a min_copies no list of backends could reach. Returns the backends, one upload each."""
        from simpost.copies import CopiesError, backend_ids, min_copies
        from storage_backends.hook import StorageBackendHook
        from storage_backends.settings import SettingsError

        params = params_of(get_current_context())
        with final(SettingsError, CopiesError):
            names = backend_ids(params["storage_backend"])
            min_copies(params["min_copies"], names)
            for name in names:
                settings = StorageBackendHook(name).upload_settings()
                log.info("check_backend: a copy will go to %s", settings.describe())
        return names

    @task
    def collect():
        from omnetpp_results import ResultsError
        from simpost.collect import collect as collect_files
        from simpost.paths import PathError

        params = params_of(get_current_context())
        work = work_dir()
        shutil.rmtree(work, ignore_errors=True)  # a retried or cleared run starts from its sources again
        with stage("collect", PathError, ResultsError):
            collected = collect_files(params["results_dir"], work / "input", log.info)
        return {"work_dir": str(work), **collected.as_dict()}

    @task(pool="results_parsing", queue=PARSE_QUEUE)
    def parse(collected: dict):
        import omnetpp_results
        from simpost.conf import runconfig_name

        params = params_of(get_current_context())
        parsed_dir = os.path.join(collected["work_dir"], "parsed")
        with stage("parse", omnetpp_results.ResultsError):
            summary = omnetpp_results.parse(collected["input_dir"], parsed_dir,
                                            runconfig=runconfig_name(params["runconfig"]),
                                            statistics=params["statistics"], progress=log.info).as_dict()
        return {"work_dir": collected["work_dir"], "parsed_dir": parsed_dir, "summary": summary}

    @task(pool="results_parsing", queue=PARSE_QUEUE)
    def stats(parsed: dict):
        import omnetpp_results
        from simpost.result import problem_lines
        from simpost.scalar_stats import scalar_stats

        params = params_of(get_current_context())
        content_dir = os.path.join(parsed["work_dir"], "archive")
        with stage("stats", omnetpp_results.ResultsError):
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

        with stage("zip"):
            archive = omnetpp_results.write_archive(computed["content_dir"],
                                                    os.path.join(computed["work_dir"], "results.zip")).as_dict()
        log.info("zip: %s files, %s bytes, sha256 %s", archive["files"], archive["size"], archive["sha256"])
        return archive

    @task(pool="storage_uploads", queue=UPLOAD_QUEUE, retries=4, outlets=[UPLOADS],
          map_index_template="{{ backend_id }}")
    def upload(backend_id: str, archive: dict):
        """One copy: recorded in the catalog; on its last try a failure is recorded and the task ends
        without raising, so the run's other copies decide (see `copies`)."""
        from simpost.copies import backend_ids, upload_copy
        from simpost_airflow.catalog import open_catalog
        from storage_backends import remote_name
        from storage_backends.hook import StorageBackendHook
        from storage_backends.settings import SettingsError

        context = get_current_context()
        params, ti = params_of(context), context["ti"]
        with stage("upload", SettingsError, AirflowNotFoundException):  # a backend defined wrong, or not at all
            hook = StorageBackendHook(backend_id)
            name = remote_name(params["title"], params["simulation_id"], archive["sha256"])
            with open_catalog() as catalog:
                catalog.record_archive(archive["sha256"], archive["size"], params["simulation_id"], params["title"],
                                       context["run_id"], copies_wanted=len(backend_ids(params["storage_backend"])))
                copy = upload_copy(catalog, hook.get_backend(), backend_id, archive["path"], archive["sha256"], name,
                                   hook.settings.keep_days, last_try=ti.try_number > ti.max_tries,
                                   secrets=hook.settings.secrets, log=log.warning)
        log.info("upload: %s -> %s: %s", name, backend_id, copy.link or copy.state)
        if copy.state == "present":
            context["outlet_events"][UPLOADS].extra = {"simulation_id": params["simulation_id"],
                                                       "backend": backend_id, **copy.as_dict()}
        return copy.as_dict()

    @task
    def copies(uploaded, computed: dict):
        """min_copies present, or the run fails here naming each failed copy (announced as the upload
        stage's failure); the note shows the first present link and every copy."""
        from simpost.copies import Copies, backend_ids, min_copies

        context = get_current_context()
        params = params_of(context)
        found = Copies(list(uploaded), min_copies(params["min_copies"], backend_ids(params["storage_backend"])))
        if not found.enough:
            raise AirflowFailException(found.shortfall())
        delivery = found.delivery()
        log.info("copies: %s", found.note())
        note_share_link(context, delivery["link"], computed["problems"],
                        found.note() if len(found.results) > 1 else None)
        return delivery

    @task
    def notify(delivered: dict, computed: dict):
        from simpost import result
        from simpost.stage import peak_rss_bytes

        context = get_current_context()
        params, run = params_of(context), run_info(context)
        with stage("notify", timed=False):  # once uploaded, the results are delivered
            figures, summary = stage_figures(context["ti"]), computed["summary"]
            peak = max([f["peak_rss_bytes"] for f in figures] + [peak_rss_bytes()])
            delivery = result.Delivery(
                link=delivered["link"], size=delivered["size"], sha256=delivered["sha256"],
                expires_at=delivered.get("expires_at"), copies=delivered["copies"], scalar_stats=computed["scalar_stats"],
                sim_runtime_stats=result.sim_runtime_stats(summary.get("simrun")),
                resources=result.resources(summary["resources"], peak, run.seconds()),
                stage_seconds=result.stage_seconds(figures), problems=computed["problems"])
            final = run.succeeded(delivery).as_dict()
            context["ti"].xcom_push(key=result.RESULT_KEY, value=final)  # a retry clears it again
            log.info("notify: share link %s", delivered["link"])
            send(params, final)

    @task(on_failure_callback=None)
    def cleanup():
        """Remove the work dir whatever happened. A run marked failed from outside (a cancel) skips
        the stages not yet run and kills the running one, so no stage could tell anyone: cleanup does,
        once, and fails so that the run ends failed."""
        from simpost.stage import cancelled_at

        context = get_current_context()
        work = work_dir()
        shutil.rmtree(work, ignore_errors=True)
        log.info("cleanup: removed %s", work)
        states = context["ti"].get_task_states(dag_id=context["dag"].dag_id, run_ids=[context["run_id"]])
        stage = cancelled_at(states.get(context["run_id"], {}))
        if stage is not None:
            final = announce_failure(context, stage, cancel_reason(context))
            raise AirflowFailException(final["reason"])

    collected = collect()
    backends = check_backend()
    backends >> collected
    computed = stats(parse(collected))
    uploaded = upload.partial(archive=zip_archive(computed)).expand(backend_id=backends)
    delivered = copies(uploaded, computed)
    delivered.operator.operator_extra_links = (ShareLink(),)  # the first present copy's link
    notify(delivered, computed)  # a leaf, so a failure anywhere upstream fails the run
    # the work dir is needed up to the upload, not by notify; a teardown also runs after a cancel, and
    # its failure (a cancel) fails the run
    uploaded >> cleanup().as_teardown(on_failure_fail_dagrun=True)


simulation_postprocess()
