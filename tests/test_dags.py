"""The DAG files as Airflow itself loads them: ids, order, params, UI metadata."""
from __future__ import annotations

import copy

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.exceptions import ParamValidationError

from conftest import REPO

GOOD = {"simulation_id": "sim-1", "results_dir": "aloha-PureAloha1", "storage_backend": "local_cloud"}


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(REPO / "dags"))


def test_both_dags_load_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"simulation_postprocess", "storage_retention", "storage_verify", "storage_restore"} <= set(dagbag.dag_ids)


def test_postprocess_stages_in_order(dagbag):
    dag = dagbag.dags["simulation_postprocess"]
    order = [t.task_id for t in dag.topological_sort()]
    assert order[:8] == ["check_backend", "collect", "parse", "stats", "zip", "upload", "copies", "notify"]
    chain = ["check_backend", "collect", "parse", "stats", "zip", "upload", "copies", "notify"]
    for upstream, downstream in zip(chain, chain[1:]):
        assert dag.get_task(downstream).upstream_task_ids >= {upstream}
    cleanup = dag.get_task("cleanup")
    assert cleanup.is_teardown and cleanup.upstream_task_ids == {"upload"}  # runs after anything, a cancel too
    assert cleanup.trigger_rule == "all_done_setup_success" and cleanup.on_failure_fail_dagrun
    assert {t.task_id for t in dag.leaves} == {"notify", "cleanup"}  # failures upstream fail the run


def test_postprocess_ui_metadata(dagbag):
    dag = dagbag.dags["simulation_postprocess"]
    assert dag.schedule is None and not dag.is_paused_upon_creation
    assert dag.doc_md and "simpost" in dag.tags
    for name in dag.params:
        assert dag.params.get_param(name).description, f"param {name} has no description for the form"
    upload = dag.get_task("upload")
    assert upload.pool == "storage_uploads" and upload.retries >= 1
    assert type(upload).__name__.endswith("MappedOperator")  # one task instance per backend
    assert [link.name for link in dag.get_task("copies").operator_extra_links] == ["Share link"]
    assert dag.get_task("parse").pool == "results_parsing"
    assert all(t.retries >= 1 for t in dag.tasks)  # a lost worker must not lose the run


def test_the_trigger_form_speaks_in_words_required_fields_first(dagbag):
    params = dagbag.dags["simulation_postprocess"].params
    schemas = {name: params.get_param(name).schema for name in params}
    titles = [s.get("title") for s in schemas.values()]
    assert all(titles) and len(set(titles)) == len(titles)
    assert all("_" not in t for t in titles)  # words, not field names
    required = [name for name, s in schemas.items() if "null" not in s.get("type", ["null"])]
    assert list(schemas)[:3] == required == ["simulation_id", "results_dir", "storage_backend"]
    assert all("section" not in schemas[name] for name in required)  # the form's first section
    assert {s.get("section") for name, s in schemas.items() if name not in required} == {
        "Results", "Delivery", "Simulator"}
    assert schemas["summarizing_precision"]["title"] == "Resampling step (s)"
    assert schemas["run_timeout"]["title"] == "Run timeout (s)"


def _validate(dag, conf):
    params = copy.deepcopy(dag.params)  # Param objects are shared with the DAG; never mutate them
    params.update(conf)
    return params.validate()


def test_good_conf_takes_defaults(dagbag):
    resolved = _validate(dagbag.dags["simulation_postprocess"], GOOD)
    assert resolved["summarizing_precision"] == 100 and resolved["statistics"] == "all"
    assert resolved["notification_email"] is None and resolved["title"] is None


@pytest.mark.parametrize("bad, param", [
    ({"simulation_id": "../etc"}, "simulation_id"),
    ({"simulation_id": ""}, "simulation_id"),
    ({"summarizing_precision": 0}, "summarizing_precision"),
    ({"summarizing_precision": "fast"}, "summarizing_precision"),
    ({"statistics": "some"}, "statistics"),
    ({"statistics": []}, "statistics"),
    ({"notification_email": "not-an-address"}, "notification_email"),
    ({"results_dir": ""}, "results_dir"),
    ({"results_dir": "run\x00/etc"}, "results_dir"),
    ({"results_dir": "run\nINFO"}, "results_dir"),
    ({"results_dir": "x" * 4097}, "results_dir"),
])
def test_bad_conf_is_refused_naming_the_param(dagbag, bad, param):
    with pytest.raises(ParamValidationError, match=param):
        _validate(dagbag.dags["simulation_postprocess"], {**GOOD, **bad})


@pytest.mark.parametrize("backends, min_copies", [("local_cloud", None), (["a"], 1), (["a", "b", "c"], 2)])
def test_one_backend_or_a_list_and_min_copies(dagbag, backends, min_copies):
    resolved = _validate(dagbag.dags["simulation_postprocess"],
                         {**GOOD, "storage_backend": backends, "min_copies": min_copies})
    assert resolved["storage_backend"] == backends and resolved["min_copies"] == min_copies


@pytest.mark.parametrize("bad", [{"storage_backend": []}, {"storage_backend": ["a", "a"]},
                                 {"storage_backend": ["a", ""]}, {"storage_backend": ""},
                                 {"storage_backend": 3}, {"min_copies": 0}, {"min_copies": 1.5}])
def test_bad_backends_or_min_copies_are_refused(dagbag, bad):
    with pytest.raises(ParamValidationError, match=next(iter(bad))):
        _validate(dagbag.dags["simulation_postprocess"], {**GOOD, **bad})


def test_min_copies_beyond_the_backends_is_refused_by_check_backend():
    from simpost.copies import CopiesError, backend_ids, min_copies

    assert min_copies(None, ["a"]) == 1 and min_copies(2, ["a", "b"]) == 2
    with pytest.raises(CopiesError, match=r"min_copies 3 asks for more copies than the 2 backend\(s\) given \(a, b\)"):
        min_copies(3, backend_ids(["a", "b"]))
    with pytest.raises(CopiesError, match="names a more than once"):
        backend_ids(["a", "b", "a"])


def test_missing_required_param_is_refused(dagbag):
    conf = dict(GOOD)
    del conf["storage_backend"]
    with pytest.raises(ParamValidationError, match="storage_backend"):
        _validate(dagbag.dags["simulation_postprocess"], conf)


def test_retention_is_scheduled_with_its_params(dagbag):
    dag = dagbag.dags["storage_retention"]
    assert dag.schedule == "@daily" and dag.max_active_runs == 1 and not dag.is_paused_upon_creation
    assert {"dry_run", "backends", "older_than_days", "reference_time"} <= set(dag.params)
    assert type(dag.get_task("clean_backend")).__name__.endswith("MappedOperator")  # one task per backend


def test_verify_is_scheduled_by_environment_with_its_params(dagbag, monkeypatch):
    dag = dagbag.dags["storage_verify"]
    assert dag.schedule == "@daily" and dag.max_active_runs == 1 and not dag.is_paused_upon_creation
    assert set(dag.params) == {"backend", "dry_run"} and all(t.retries >= 1 for t in dag.tasks)
    monkeypatch.setenv("SIMPOST_VERIFY_SCHEDULE", "0 3 * * *")
    assert DagBag(dag_folder=str(REPO / "dags" / "storage_verify.py")).dags["storage_verify"].schedule == "0 3 * * *"
    monkeypatch.setenv("SIMPOST_VERIFY_SCHEDULE", "None")  # on request only
    assert DagBag(dag_folder=str(REPO / "dags" / "storage_verify.py")).dags["storage_verify"].schedule is None


def test_restore_is_on_request_with_titled_params(dagbag):
    dag = dagbag.dags["storage_restore"]
    assert dag.schedule is None and not dag.is_paused_upon_creation
    assert set(dag.params) == {"simulation_id", "sha256", "storage_backend", "keep_days", "notification_email",
                               "callback_endpoint"}
    assert all(dag.params.get_param(name).schema.get("title") for name in dag.params)
    _validate(dag, {"simulation_id": "sim-1", "keep_days": 3})
    for bad, param in [({"sha256": "abc"}, "sha256"), ({"simulation_id": "../x"}, "simulation_id"),
                       ({"simulation_id": "s", "keep_days": 0}, "keep_days"),
                       ({"simulation_id": "s", "notification_email": "nobody"}, "notification_email")]:
        with pytest.raises(ParamValidationError, match=param):
            _validate(dag, bad)


def test_every_task_of_both_dags_has_a_time_limit(dagbag):
    """Issue 13 item 2: a task stuck on hostile input must free its worker and pool slot."""
    from simpost.limits import task_timeout

    for dag_id in ("simulation_postprocess", "storage_retention", "storage_verify", "storage_restore"):
        for t in dagbag.dags[dag_id].tasks:
            assert t.execution_timeout == task_timeout(), f"{dag_id}.{t.task_id}"


def test_the_task_time_limit_is_configurable(monkeypatch):
    from simpost.limits import task_timeout

    monkeypatch.setenv("SIMPOST_TASK_TIMEOUT", "90")
    assert task_timeout().total_seconds() == 90
    monkeypatch.setenv("SIMPOST_TASK_TIMEOUT", "0")
    with pytest.raises(ValueError, match="SIMPOST_TASK_TIMEOUT"):
        task_timeout()
