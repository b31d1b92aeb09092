"""The test harness of tests/cluster.py: Airflow components as real processes, on a trivial DAG
(SQLite + LocalExecutor), so that a broken harness shows here and not as a broken DAG. Its Celery
topology (PostgreSQL, Redis, two workers, nothing left behind) is what test_distributed.py runs on and
checks; a trivial Celery deployment here would cost a minute of CPU to show the same.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cluster import AirflowCluster

TRIVIAL_DAG = textwrap.dedent(
    '''
    from airflow.sdk import dag, task


    @dag(dag_id="harness_smoke", schedule=None, is_paused_upon_creation=False, tags=["test"])
    def harness_smoke():
        @task
        def first(**context):
            return context["params"].get("n", 0) + 1

        @task
        def second(value):
            import os
            return {"value": value, "hostname": os.environ.get("SIMPOST_TEST_HOSTNAME")}

        second(first())


    harness_smoke()
    '''
)


@pytest.fixture
def trivial_dags(tmp_path) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "harness_smoke.py").write_text(TRIVIAL_DAG)
    return folder


@pytest.mark.airflow
@pytest.mark.timeout(300)
def test_harness_local_executor(tmp_path, trivial_dags):
    with AirflowCluster(tmp_path / "home", dags_folder=trivial_dags) as cluster:
        cluster.wait_dag("harness_smoke")
        run_id = cluster.trigger("harness_smoke", {"n": 41})
        assert cluster.wait("harness_smoke", run_id, timeout=120) == "success"
        tis = {ti["task_id"]: ti for ti in cluster.task_instances("harness_smoke", run_id)}
        assert set(tis) == {"first", "second"}
        assert all(ti["state"] == "success" for ti in tis.values())
        assert all(ti["hostname"] for ti in tis.values())
        assert cluster.peak_rss > 0
    assert not cluster.leftover_processes()

