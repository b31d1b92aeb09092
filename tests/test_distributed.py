"""The distributed deployment of docker-compose.yaml as real processes (tests/cluster.py): PostgreSQL
metadata DB and catalog, Redis broker, api-server, scheduler, dag-processor and Celery workers
running simulation_postprocess and storage_verify, each with a worker killed in the middle. The
deployment is started once for the module (the slowest setup of the suite). The harness itself is
tested in test_cluster_harness.py, so that the two files run side by side on parallel workers.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from simpost.catalog import Catalog

from cluster import AirflowCluster, ClusterError, Worker, postgres_database, postgres_database_exists, redis_database
from helpers import ARCHIVE_LAYOUT, verified_archive

# ------------------------------------------------------------------------------------------------
# The distributed deployment of docker-compose.yaml, as real processes on this machine.

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "simulation_postprocess"
BACKEND = "local_cloud"
STORAGE_HOST = "storage-host"  # serves default, parsing and uploads (local_cloud lives there)
COMPUTE_HOST = "compute-host"  # serves default and parsing; the one that gets killed
RESULT_DIRS = ["aloha-PureAloha1", "routing-Net10", "aloha-SlottedAloha2", "routing-Net5SaturatedQueue",
               "routing-Net60CutThrough"]
# every result set once and one twice: on 2 workers the queues still hold more runs than slots. The suite
# shares 2 cores, so the throughput figures of the deployment guide come from SIMPOST_DIST_RUNS=10.
RUNS_PER_BATCH = int(os.environ.get("SIMPOST_DIST_RUNS", "6"))


def _conf(sim_id: str, results_dir: str) -> dict:
    return {"simulation_id": sim_id, "title": f"Distributed {sim_id}", "results_dir": results_dir,
            "storage_backend": BACKEND, "summarizing_precision": 100}


def _batch(cluster: AirflowCluster, prefix: str, n: int, timeout: float = 900) -> tuple[float, dict]:
    """Trigger n runs at once, wait for all; returns (wall seconds, {run_id: simulation_id})."""
    t0 = time.monotonic()
    runs = {}
    for i in range(n):
        sim_id = f"{prefix}-{i:02d}"
        runs[cluster.trigger(DAG_ID, _conf(sim_id, RESULT_DIRS[i % len(RESULT_DIRS)]), run_id=sim_id)] = sim_id
    states = cluster.wait_all(DAG_ID, list(runs), timeout=timeout)
    wall = time.monotonic() - t0
    failed = {r: s for r, s in states.items() if s != "success"}
    assert not failed, f"runs lost: {failed}\n" + _failure_report(cluster, failed)
    return wall, runs


def _failure_report(cluster: AirflowCluster, runs) -> str:
    out = []
    for run_id in runs:
        for ti in cluster.task_instances(DAG_ID, run_id):
            if ti["state"] not in ("success", "skipped"):
                out.append(f"{run_id}.{ti['task_id']}: {ti['state']} on {ti['hostname']} try {ti['try_number']}")
                if ti["state"] in ("failed", "upstream_failed") and ti["try_number"]:
                    out.append(cluster.task_log(DAG_ID, run_id, ti["task_id"], ti["try_number"])[-3000:])
    return "\n".join(out)


def _hosts(cluster: AirflowCluster, runs) -> dict[str, set[str]]:
    """task_id -> hostnames that ran it (final tries)."""
    seen: dict[str, set[str]] = {}
    for run_id in runs:
        for ti in cluster.task_instances(DAG_ID, run_id):
            seen.setdefault(ti["task_id"], set()).add(ti["hostname"])
    return seen


def _wait_for_task_on(cluster: AirflowCluster, runs, hostname: str, timeout: float = 300) -> list[tuple[str, str]]:
    """Poll until `hostname` runs a `stats` task of `runs`; return [(run_id, task_id)] of what it holds.

    `stats` is the longest stage (seconds), so the kill lands while it runs; a one-second task may
    finish between this poll and the SIGKILL.
    """
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        held = [(r, ti["task_id"]) for r in runs for ti in cluster.task_instances(DAG_ID, r)
                if ti["state"] == "running" and ti["hostname"] == hostname]
        if not any(task_id == "stats" for _, task_id in held):
            held = []
        if held:
            return held
        if all(cluster.run_state(DAG_ID, r) in ("success", "failed") for r in runs):
            break
        time.sleep(0.05)  # polling interval
    raise ClusterError(f"{hostname} never held a task of {list(runs)}")


@dataclasses.dataclass
class Topology:
    """The module's one deployment: the cluster, its local_cloud and its catalog (PostgreSQL)."""

    cluster: AirflowCluster
    cloud_url: str
    api_key: str
    catalog_url: str
    tmp: Path


@pytest.fixture(scope="module")
def topology(tmp_path_factory, shared_results) -> Iterator[Topology]:
    """Started once for the module's tests (the slowest setup of the suite), in file order: the
    batches and the kill during a run, then storage_verify's worker killed."""
    from local_cloud.testing import running_server

    tmp = tmp_path_factory.mktemp("distributed")
    api_key = secrets.token_urlsafe(24)
    with running_server(tmp / "cloud", api_key) as cloud_url, postgres_database() as db_url, \
            postgres_database(prefix="simpost_catalog") as catalog_db, redis_database(7) as broker:
        connection = {
            "conn_type": "storage_backend", "password": cloud_url.removeprefix("http://"),
            "description": "local_cloud of the distributed test",
            "extra": {"storage_backend": "Local cloud", "storage_backend_id": "local",
                      "storage_backend_config": json.dumps({"api_key": api_key}),
                      "storage_backend_keep_days": 7, "storage_backend_active": True},
        }
        env = {
            "SIMPOST_RESULTS_ROOT": str(shared_results),
            "SIMPOST_WORK_DIR": str(tmp / "shared-work"),  # the shared volume every worker mounts
            "SIMPOST_UPLOAD_QUEUE": "uploads",
            "SIMPOST_PARSE_QUEUE": "parsing",
            "SIMPOST_RETRY_DELAY": "2",
            f"AIRFLOW_CONN_{BACKEND.upper()}": json.dumps(connection),
            # the catalog in its own PostgreSQL database, as in docker-compose.yaml
            "AIRFLOW_CONN_SIMPOST_CATALOG": json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": 5432,
                                                        "login": "postgres", "schema": catalog_db.rsplit("/", 1)[1]}),
            "AIRFLOW_VAR_STORAGE_BACKENDS": json.dumps([BACKEND]),
            # a lost worker is noticed by its task instances' missing heartbeats
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            # messages the dead worker had prefetched stay unacked in Redis: their task instances
            # are requeued (without using a try) once queued for longer than this
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "60",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "5",
        }
        cluster = AirflowCluster(
            # plugins/.airflowignore keeps Airflow's plugin loader off our packages
            tmp / "airflow", dags_folder=REPO / "dags", plugins_folder=REPO / "plugins",
            env_overrides=env, executor="CeleryExecutor", sql_alchemy_conn=db_url, broker_url=broker,
            workers=[Worker(STORAGE_HOST, ["default", "parsing", "uploads"])],
            pools={"storage_uploads": 2, "results_parsing": 2},
        )
        with cluster:
            cluster.wait_dag(DAG_ID)
            yield Topology(cluster, cloud_url, api_key, catalog_db.replace("postgresql+psycopg2", "postgresql+psycopg"),
                           tmp)
        assert not cluster.leftover_processes()
    assert not postgres_database_exists(db_url) and not postgres_database_exists(catalog_db)


@pytest.mark.distributed
@pytest.mark.timeout(2400)
def test_distributed_celery_topology(topology, capsys):
    """RUNS_PER_BATCH runs on 1 worker, as many on 2 workers (both used), then a worker SIGKILLed while it
    holds a task."""

    metrics: dict = {}
    try:
        _distributed(topology, metrics)
    finally:
        with capsys.disabled():
            print("\ndistributed topology:", json.dumps(metrics, indent=1, default=str))
        if os.environ.get("SIMPOST_DIST_METRICS"):
            Path(os.environ["SIMPOST_DIST_METRICS"]).write_text(json.dumps(metrics, indent=1, default=str))


def _distributed(topology: Topology, metrics: dict) -> None:
    from local_cloud.client import LocalCloudClient

    cluster, tmp_path = topology.cluster, topology.tmp
    assert cluster.api("GET", f"/api/v2/dags/{DAG_ID}").json()["is_paused"] is False

    # 1 worker
    metrics["wall_1_worker_s"], runs1 = _batch(cluster, "one", RUNS_PER_BATCH)
    assert _hosts(cluster, runs1).keys() >= {"collect", "parse", "stats", "zip", "upload", "notify"}

    # 2 workers: the second one on another "host", without the uploads queue
    cluster.add_worker(COMPUTE_HOST, ["default", "parsing"])
    metrics["wall_2_workers_s"], runs2 = _batch(cluster, "two", RUNS_PER_BATCH)
    seen = _hosts(cluster, runs2)
    all_hosts = set().union(*seen.values())
    assert all_hosts == {STORAGE_HOST, COMPUTE_HOST}, f"tasks not seen on both workers: {seen}"
    assert seen["upload"] == {STORAGE_HOST}, f"uploads left their queue: {seen['upload']}"
    metrics["peak_rss_mb"] = round(cluster.peak_rss / 2**20)
    metrics["peak_pss_mb"] = round(cluster.peak_pss / 2**20)
    metrics["peak_rss_by_component_mb"] = {k: round(v / 2**20) for k, v in cluster.peak_by_component.items()}

    # a worker dies (SIGKILL to its whole tree) while it holds a task
    kill_runs = {}
    for i in range(4):
        sim_id = f"kill-{i:02d}"
        kill_runs[cluster.trigger(DAG_ID, _conf(sim_id, RESULT_DIRS[-1 - i % 2]), run_id=sim_id)] = sim_id
    held = _wait_for_task_on(cluster, kill_runs, COMPUTE_HOST)
    cluster.kill_worker(COMPUTE_HOST, signal.SIGKILL)
    metrics["killed_while_holding"] = held
    states = cluster.wait_all(DAG_ID, list(kill_runs), timeout=600)
    failed = {r: s for r, s in states.items() if s != "success"}
    assert not failed, f"runs lost with {COMPUTE_HOST} (held {held}): {failed}\n" + \
        _failure_report(cluster, failed)
    interrupted = 0
    for run_id, task_id in held:
        tries = cluster.task_tries(DAG_ID, run_id, task_id)
        final = [t for t in tries if t["state"] == "success"]
        assert len(final) == 1, (run_id, task_id, tries)
        if final[0]["hostname"] == COMPUTE_HOST:
            continue  # it finished in the instant between the poll and the kill
        assert final[0]["hostname"] == STORAGE_HOST, (run_id, task_id, tries)
        interrupted += 1
    assert interrupted, f"the kill interrupted none of the tasks it held: {held}"

    # every run uploaded exactly once, with a correct archive
    all_runs = {**runs1, **runs2, **kill_runs}
    (tmp_path / "downloads").mkdir()
    with LocalCloudClient(topology.cloud_url, topology.api_key) as client:
        records = [r for r in client.list() if not r["name"].startswith(VERIFY_TITLE)]  # the next test's
        for sim_id in all_runs.values():
            mine = [r for r in records if f"_{sim_id}_" in r["name"]]
            assert len(mine) == 1, f"{sim_id}: {len(mine)} uploads: {[r['name'] for r in mine]}"
            dest = client.download(mine[0]["link"], tmp_path / "downloads" / mine[0]["name"])
            assert ARCHIVE_LAYOUT <= verified_archive(Path(dest).read_bytes()), sim_id
        assert len(records) == len(all_runs), f"{len(records)} uploads for {len(all_runs)} runs"
    with Catalog.open(topology.catalog_url) as catalog:  # and each recorded, present where it is
        remote_ids = {r["name"]: r["id"] for r in records}
        for sim_id in all_runs.values():
            [archive] = catalog.archives(simulation_id=sim_id)
            assert [(c.backend, c.state, c.remote_id) for c in archive.copies] == \
                [(BACKEND, "present", remote_ids[archive.copies[0].remote_name])], sim_id


# ------------------------------------------------------------------------------------------------
# storage_verify's worker killed in the middle of a pass

VERIFY_DAG = "storage_verify"
VERIFY_TITLE = "verify-kill"  # the slug that starts this test's remote names
VERIFY_HOST = "verify-host"  # a second worker on the default queue: one of the two is killed
VERIFY_COPIES = 400  # four chunks of verify's writes: the kill lands after the first
FILLERS = 4  # uploads at once while the copies are made


def _catalogue(topology: Topology, n: int) -> None:
    """n small archives on the local_cloud, recorded present and never verified (as if adopted)."""
    from concurrent.futures import ThreadPoolExecutor

    with Catalog.open(topology.catalog_url) as catalog, ThreadPoolExecutor(FILLERS) as pool:
        list(pool.map(lambda k: _catalogue_some(topology, catalog, range(k, n, FILLERS)), range(FILLERS)))


def _catalogue_some(topology: Topology, catalog: Catalog, numbers: range) -> None:
    from local_cloud.client import LocalCloudClient

    from storage_backends import remote_name

    path = topology.tmp / f"verify-archive-{numbers.start}.zip"
    with LocalCloudClient(topology.cloud_url, topology.api_key) as client:
        for i in numbers:
            path.write_bytes(secrets.token_bytes(2048))
            sha, sim_id = hashlib.sha256(path.read_bytes()).hexdigest(), f"verify-{i:04d}"
            name = remote_name(VERIFY_TITLE, sim_id, sha)
            record = client.upload(path, name)
            catalog.record_archive(sha, 2048, sim_id, VERIFY_TITLE)
            catalog.record_copy(sha, BACKEND, "present", remote_id=record["id"], remote_name=name, link=record["link"])


def _run_started(cluster: AirflowCluster, run_id: str) -> datetime | None:
    started = cluster.api("GET", f"/api/v2/dags/{VERIFY_DAG}/dagRuns/{run_id}").json().get("start_date")
    return datetime.fromisoformat(started) if started else None


def _kill_while_verifying(topology: Topology, run_id: str, timeout: float = 300) -> tuple[str, int]:
    """Poll until the verify task runs and has written some (not all) copies, then SIGKILL its
    worker; returns (the worker, how many copies were still unverified just after the kill)."""
    cluster, end, started = topology.cluster, time.monotonic() + timeout, None
    with Catalog.open(topology.catalog_url) as catalog:
        total = len(catalog.copies(states=["present"]))
        while time.monotonic() < end:
            started = started or _run_started(cluster, run_id)
            [ti] = [t for t in cluster.task_instances(VERIFY_DAG, run_id) if t["task_id"] == "verify"] or [None]
            if ti and ti["state"] == "running" and ti["hostname"] and started:
                left = len(catalog.copies_to_verify(started, limit=total + 1))
                assert left > 0, "the pass ended before the kill could land in its middle"
                if left < total:  # a chunk is written: the pass is under way
                    cluster.kill_worker(ti["hostname"], signal.SIGKILL)
                    return ti["hostname"], len(catalog.copies_to_verify(started, limit=total + 1))
            time.sleep(0.05)  # polling interval
    raise ClusterError(f"storage_verify's task never ran: {cluster.task_instances(VERIFY_DAG, run_id)}")


@pytest.mark.distributed
@pytest.mark.timeout(900)
def test_a_worker_killed_in_the_middle_of_storage_verify_loses_nothing(topology, capsys):
    """The task's retry on the other worker goes on where the killed one stopped: every copy ends
    present and verified in this run, none lost, none uploaded or recorded twice."""
    from local_cloud.client import LocalCloudClient

    cluster, t0 = topology.cluster, time.monotonic()
    _catalogue(topology, VERIFY_COPIES)
    filled = time.monotonic() - t0
    with Catalog.open(topology.catalog_url) as catalog:
        before = {(c.archive_sha256, c.backend): c for c in catalog.copies()}
    with LocalCloudClient(topology.cloud_url, topology.api_key) as client:
        files = sorted(r["id"] for r in client.list())
    cluster.add_worker(VERIFY_HOST, ["default"])
    cluster.wait_dag(VERIFY_DAG)
    run_id = cluster.trigger(VERIFY_DAG, {}, run_id="verify-kill")
    victim, left = _kill_while_verifying(topology, run_id)
    state = cluster.wait(VERIFY_DAG, run_id, timeout=600)
    tries = cluster.task_tries(VERIFY_DAG, run_id, "verify")
    assert state == "success", tries
    [final] = [t for t in tries if t["state"] == "success"]
    assert final["hostname"] != victim and final["try_number"] >= 2, tries
    report = cluster.api("GET", f"/api/v2/dags/{VERIFY_DAG}/dagRuns/{run_id}/taskInstances/verify/xcomEntries/"
                                "return_value", params={"deserialize": "true"}).json()["value"]
    started = _run_started(cluster, run_id)
    with capsys.disabled():
        print(f"\nstorage_verify killed on {victim} with {left} of {len(before)} copies to verify; the retry on"
              f" {final['hostname']} verified {report['verified']}; {filled:.0f} s to catalogue the copies, "
              f"{time.monotonic() - t0 - filled:.0f} s from the new worker to the run's end")
    # the retry went on where the kill stopped: what was written before it is not asked again
    assert 0 < report["verified"] <= left < len(before), report
    assert report["lost"] == report["errors"] == report["repaired"] == report["adopted"] == [], report
    with Catalog.open(topology.catalog_url) as catalog:
        after = {(c.archive_sha256, c.backend): c for c in catalog.copies()}
    assert after.keys() == before.keys()
    assert all(c.state == "present" and c.last_verified >= started for c in after.values())
    assert all(after[k].remote_id == c.remote_id for k, c in before.items())
    with LocalCloudClient(topology.cloud_url, topology.api_key) as client:
        assert sorted(r["id"] for r in client.list()) == files  # nothing uploaded again, nothing removed
    if victim == STORAGE_HOST:  # the module's topology stays whole for whatever runs after
        cluster.add_worker(STORAGE_HOST, ["default", "parsing", "uploads"])
