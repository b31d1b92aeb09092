"""simulation_postprocess run in-process (dag.test) on OMNeT++'s own files, uploading to a real local_cloud."""
from __future__ import annotations

import secrets

import pytest
import requests
from airflow.dag_processing.dagbag import DagBag
from local_cloud.client import LocalCloudClient
from local_cloud.testing import running_server

from conftest import REPO
from helpers import ARCHIVE_LAYOUT, local_backend_conn, verified_archive

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def dag():
    return DagBag(dag_folder=str(REPO / "dags")).dags["simulation_postprocess"]


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    key = secrets.token_urlsafe(24)
    with running_server(tmp_path / "cloud", key) as url:
        monkeypatch.setenv("AIRFLOW_CONN_PIPELINE_LOCAL", local_backend_conn(url, key))
        yield LocalCloudClient(url, key)


def _states(run):
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


@pytest.mark.parametrize("results_dir", ["aloha-PureAloha1", "aloha-PureAloha2-sqlite"])
def test_run_uploads_an_archive_with_the_design_layout(airflow_db, dag, cloud, results_dir, tmp_path):
    run = dag.test(run_conf={"simulation_id": f"e2e-{results_dir}", "title": "End to end",
                             "results_dir": results_dir, "storage_backend": "pipeline_local",
                             "summarizing_precision": 60})
    assert run.state == "success", _states(run)
    uploads = cloud.list()
    assert len(uploads) == 1 and f"e2e-{results_dir}" in uploads[0]["name"]
    names = verified_archive(requests.get(uploads[0]["link"], timeout=30).content)
    assert ARCHIVE_LAYOUT <= names
    assert any(n.startswith("csv/vectors/") for n in names) and any(n.startswith("graphs/") for n in names)


def test_results_dir_outside_the_root_fails_collect_and_uploads_nothing(airflow_db, dag, cloud):
    run = dag.test(run_conf={"simulation_id": "escape", "results_dir": "../../etc",
                             "storage_backend": "pipeline_local"})
    states = _states(run)
    assert run.state == "failed" and states["collect"] == "failed"
    assert states["upload"] == "upstream_failed" and states["cleanup"] == "success"
    assert cloud.list() == []
