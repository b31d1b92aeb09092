"""The test harness of tests/cluster.py: Airflow components as real processes, on a trivial DAG.

- test_harness_local_executor: SQLite + LocalExecutor.
- test_celery_topology_trivial_dag: PostgreSQL metadata DB, Redis broker (its own DB number, apart
  from test_distributed.py's, as the two files may run at the same time), two Celery workers.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cluster import AirflowCluster, Worker, postgres_database, postgres_database_exists, redis_database

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


@pytest.mark.distributed
@pytest.mark.timeout(400)
def test_celery_topology_trivial_dag(tmp_path, trivial_dags):
    with postgres_database() as db_url, redis_database(8) as broker:
        with AirflowCluster(
            tmp_path / "home",
            dags_folder=trivial_dags,
            executor="CeleryExecutor",
            sql_alchemy_conn=db_url,
            broker_url=broker,
            workers=[Worker("worker-a"), Worker("worker-b")],
        ) as cluster:
            cluster.wait_dag("harness_smoke")
            runs = [cluster.trigger("harness_smoke", {"n": i}) for i in range(4)]
            states = cluster.wait_all("harness_smoke", runs, timeout=240)
            assert set(states.values()) == {"success"}, states
            hosts = {ti["hostname"] for r in runs for ti in cluster.task_instances("harness_smoke", r)}
            assert hosts <= {"worker-a", "worker-b"}, hosts
        assert not cluster.leftover_processes()
    assert not postgres_database_exists(db_url)


