"""storage_retention: ages by the service's own timestamps, keep days per backend, dry runs that tell the truth."""
from __future__ import annotations

import json
import os
import secrets
from datetime import datetime, timedelta, timezone

import pytest
from airflow.sdk import Connection
from local_cloud.client import LocalCloudClient
from local_cloud.testing import running_server
from omnetpp_results import sha256_file

from helpers import dags_test, local_backend_conn
from simpost.retention import backend_ids_from_variable, choose, clean, expired, remove_stale_work_dirs
from storage_backends import open_backend, remote_name
from storage_backends.base import RemoteFile
from storage_backends.settings import from_connection

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _file(name: str, age_days: float) -> RemoteFile:
    return RemoteFile(remote_id=name, name=name, size=10, modified_at=T0 - timedelta(days=age_days))


def test_expired_splits_on_keep_days_and_zero_keeps_all():
    files = [_file("old", 8), _file("edge", 7), _file("new", 1)]
    old, kept = expired(files, 7, T0)
    assert [f.name for f in old] == ["old"] and [f.name for f in kept] == ["edge", "new"]
    assert expired(files, 0, T0) == ([], files)


def test_backend_ids_from_variable_and_api_are_united_and_filtered():
    assert choose(["b", "a"], backend_ids_from_variable('["c", "a"]'), None) == ["a", "b", "c"]
    assert choose(["b", "a"], [], ["b"]) == ["b"]
    with pytest.raises(ValueError, match="not storage_backend connections"):
        choose(["a"], [], ["zzz"])
    with pytest.raises(ValueError, match="JSON list"):
        backend_ids_from_variable('{"a": 1}')


def test_stale_work_dirs_go_fresh_ones_stay(tmp_path):
    (tmp_path / "old-run").mkdir()
    (tmp_path / "new-run").mkdir()
    now = (tmp_path / "new-run").stat().st_mtime
    os.utime(tmp_path / "old-run", (now - 3 * 86400, now - 3 * 86400))
    assert remove_stale_work_dirs(tmp_path, 2, now, log=lambda m: None) == ["old-run"]
    assert [p.name for p in tmp_path.iterdir()] == ["new-run"]


@pytest.fixture
def cloud(tmp_path):
    key = secrets.token_urlsafe(24)
    with running_server(tmp_path / "cloud", key) as url:
        yield url, key


def _local_backend(url: str, key: str):
    conn = Connection(conn_id="retention_local", **json.loads(local_backend_conn(url, key)))
    return open_backend(from_connection(conn))


def _upload(tmp_path, backend, simulation_ids):
    """Archives named as the pipeline names them; returns {simulation_id: RemoteFile}."""
    for simulation_id in simulation_ids:
        path = tmp_path / f"{simulation_id}.zip"
        path.write_bytes(secrets.token_bytes(1000))
        backend.upload(str(path), remote_name("retention", simulation_id, sha256_file(path)), 7)
    return {f.name.split("_")[1]: f for f in backend.list_uploads()}


def _foreign_file(tmp_path, url, key) -> str:
    """A file on the same server that this project did not upload: retention must never touch it."""
    path = tmp_path / "lab-notes.txt"
    path.write_text("not ours")
    return LocalCloudClient(url, key).upload(path, "lab-notes.txt")["id"]


def test_clean_on_local_cloud_deletes_only_what_is_older_than_keep_days(tmp_path, cloud):
    backend = _local_backend(*cloud)
    foreign = _foreign_file(tmp_path, *cloud)
    files = _upload(tmp_path, backend, ["first", "second", "third"])
    newest = max(f.modified_at for f in files.values())
    oldest = min(f.modified_at for f in files.values())

    inside = clean(backend, 7, oldest + timedelta(days=7, seconds=-1), dry_run=False, log=lambda m: None)
    assert inside["deleted"] == [] and inside["kept"] == 3

    past = newest + timedelta(days=7, seconds=1)
    planned = clean(backend, 7, past, dry_run=True, log=lambda m: None)
    assert sorted(planned["deleted"]) == sorted(f.name for f in files.values()) and planned["kept"] == 0
    assert len(backend.list_uploads()) == 3  # the dry run deleted nothing

    assert clean(backend, 0, past + timedelta(days=3650), dry_run=False, log=lambda m: None)["deleted"] == []
    assert len(backend.list_uploads()) == 3  # keep days 0 keeps forever

    done = clean(backend, 7, past, dry_run=False, log=lambda m: None)
    assert done["deleted"] == planned["deleted"] and done["deleted_bytes"] == 3000 and done["errors"] == []
    assert backend.list_uploads() == []
    assert LocalCloudClient(*cloud).get(foreign)["name"] == "lab-notes.txt"


@pytest.mark.airflow
def test_dag_cleans_every_backend_and_fails_only_for_the_one_that_is_down(airflow_db, tmp_path, cloud):
    url, key = cloud
    backend = _local_backend(url, key)
    foreign = _foreign_file(tmp_path, url, key)
    names = [f.name for f in _upload(tmp_path, backend, ["a", "b"]).values()]
    env = {
        "AIRFLOW_CONN_KEEP7": local_backend_conn(url, key, keep_days=7),
        "AIRFLOW_CONN_KEEP_FOREVER": local_backend_conn(url, key, keep_days=0),
        "AIRFLOW_CONN_DOWN": local_backend_conn("127.0.0.1:9", key, keep_days=1),
        "AIRFLOW_VAR_STORAGE_BACKENDS": json.dumps(["keep7", "keep_forever", "down"]),
        "LOCAL_CLOUD_RETRY_BUDGET": "10",  # the down backend gives up after 10 s of retrying, not 120
    }
    future = (datetime.now(timezone.utc) + timedelta(days=8)).isoformat()

    dry = dags_test("storage_retention", {"dry_run": True, "reference_time": future,
                                          "backends": ["keep7", "keep_forever"]}, env)
    assert len(backend.list_uploads()) == 2
    assert all(f"would delete {name}" in dry for name in names)

    output = dags_test("storage_retention", {"reference_time": future}, env, ok=False)
    assert "retention failed on backends ['down']" in output
    assert backend.list_uploads() == []  # keep7 deleted both; keep_forever (same server) deleted none
    assert LocalCloudClient(url, key).get(foreign)["name"] == "lab-notes.txt"
    assert key not in output
