"""The archive tier (storage_restore: test_restore.py), as Airflow runs it (`airflow dags test`), on two
local_cloud servers started for real and the Seafile emulator, with a SQLite catalog.

A run goes to `hot` (keep days 1, `archive_to` the archive backend); storage_retention with the
clock moved past the keep days archives it, verifies the archive copy, and only then deletes the
hot copy; with the archive backend down the hot copy stays and the next run archives it.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
import requests
from emulators.fixtures import _seafile_server, seafile_conn_json, seafile_emulator, settings_of  # noqa: F401
from local_cloud.testing import LocalCloudServer

from helpers import dags_test
from simpost.catalog import Catalog
from storage_backends import open_backend
from storage_backends.settings import SettingsError

# several whole DAG runs (or Airflow starts) per test: on a loaded 2-core machine one took 677 s
pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1800)]


def local_conn(url: str, key: str, keep_days: int, archive_to: str | None = None) -> dict:
    config = {"server": url, **({"archive_to": archive_to} if archive_to else {})}
    return {"conn_type": "storage_backend", "password": key,
            "extra": {"storage_backend_id": "local", "storage_backend_config": json.dumps(config),
                      "storage_backend_keep_days": keep_days}}


def test_archive_to_names_another_connection():
    settings = settings_of("hot", local_conn("http://127.0.0.1:1", "k", 1, "cold"))
    assert settings.archive_to == "cold" and settings.config.server == "http://127.0.0.1:1"
    assert settings_of("hot", local_conn("http://127.0.0.1:1", "k", 1)).archive_to is None
    seafile = seafile_conn_json("http://127.0.0.1:1")
    config = {**json.loads(seafile["extra"]["storage_backend_config"]), "archive_to": "cold"}
    seafile["extra"]["storage_backend_config"] = json.dumps(config)
    assert settings_of("sea", seafile).archive_to == "cold"  # a key of every service's config
    with pytest.raises(SettingsError, match="names this connection itself"):
        settings_of("hot", local_conn("http://127.0.0.1:1", "k", 1, "hot"))
    bad = local_conn("http://127.0.0.1:1", "k", 1)
    bad["extra"]["storage_backend_config"] = json.dumps({"server": "http://127.0.0.1:1", "archive_to": ["x"]})
    with pytest.raises(SettingsError, match="connection id of another storage backend"):
        settings_of("hot", bad)


def later(days: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(days=days)).isoformat()


@contextmanager
def running_world(tmp_path, seafile=None):
    """hot (a local_cloud, keep 1, archive_to cold) and cold (keep 0: a second local_cloud, or the
    Seafile emulator when given), one catalog. `cold` is the second server (None for Seafile)."""
    key = secrets.token_urlsafe(24)
    hot, cold = LocalCloudServer(tmp_path / "hot", key), LocalCloudServer(tmp_path / "cold", key)
    hot.start()
    if seafile is None:
        cold_conn = local_conn(cold.start(), key, 0)
    else:
        cold, cold_conn = None, seafile_conn_json(seafile.base_url, keep_days=0)
    try:
        path = tmp_path / "catalog.db"
        env = {"AIRFLOW_CONN_HOT": json.dumps(local_conn(hot.url, key, 1, "cold")),
               "AIRFLOW_CONN_COLD": json.dumps(cold_conn),
               "AIRFLOW_VAR_STORAGE_BACKENDS": json.dumps(["hot", "cold"]),
               "AIRFLOW_CONN_SIMPOST_CATALOG": json.dumps({"conn_type": "sqlite", "host": str(path)}),
               "SIMPOST_UPLOAD_RETRY_BUDGET": "1", "SIMPOST_RETRY_DELAY": "0",
               "LOCAL_CLOUD_RETRY_BUDGET": "10"}  # a stopped archive server fails in 10 s of retrying, not 120
        with Catalog.open(f"sqlite:///{path}") as catalog:
            yield env, catalog, hot, cold, key
    finally:
        hot.stop()
        if cold is not None:
            cold.stop()


@pytest.fixture
def world(airflow_db, tmp_path):
    """The archive backend is a second local_cloud."""
    with running_world(tmp_path) as parts:
        yield parts


@pytest.fixture(params=["local_cloud", "seafile"])
def any_world(request, airflow_db, tmp_path):
    """The archive backend is a second local_cloud, then the Seafile emulator."""
    seafile = request.getfixturevalue("seafile_emulator") if request.param == "seafile" else None
    with running_world(tmp_path, seafile) as parts:
        yield parts


def archived_sha256(env: dict, catalog: Catalog, sha256: str) -> str:
    """The SHA-256 of the archive copy's bytes, downloaded through its backend."""
    import tempfile

    copy = catalog.copy(sha256, "cold")
    backend = open_backend(settings_of("cold", json.loads(env["AIRFLOW_CONN_COLD"])))
    with tempfile.TemporaryDirectory() as tmp:
        backend.download(copy.remote_id, f"{tmp}/a.zip")
        return hashlib.sha256(open(f"{tmp}/a.zip", "rb").read()).hexdigest()


def postprocess(env: dict, simulation_id: str) -> str:
    return dags_test("simulation_postprocess", {"simulation_id": simulation_id, "results_dir": "aloha-PureAloha1",
                                                "storage_backend": "hot", "graphs": "none"}, env)


def states(catalog: Catalog, sha256: str) -> dict:
    return {c.backend: c.state for c in catalog.archive(sha256).copies}


def test_retention_archives_verifies_then_deletes_the_hot_copy(any_world):
    env, catalog, hot, cold, key = any_world
    postprocess(env, "archive-me")
    [archive] = catalog.archives(simulation_id="archive-me")
    first = catalog.copy(archive.sha256, "hot")
    assert requests.get(first.link, timeout=10).status_code == 200

    dry = dags_test("storage_retention", {"dry_run": True, "reference_time": later(2)}, env)
    assert f"would archive {first.remote_name} to cold" in dry and f"would delete {first.remote_name}" in dry
    assert states(catalog, archive.sha256) == {"hot": "present"}

    assert dags_test("storage_retention", {"reference_time": later(0.5)}, env)  # not yet past keep days 1
    assert states(catalog, archive.sha256) == {"hot": "present"}

    output = dags_test("storage_retention", {"reference_time": later(2)}, env)
    assert f"{archive.sha256[:12]} archived to cold" in output
    assert states(catalog, archive.sha256) == {"hot": "deleted", "cold": "archived"}
    assert requests.get(first.link, timeout=10).status_code == 404
    assert archived_sha256(env, catalog, archive.sha256) == archive.sha256
    assert catalog.copy(archive.sha256, "cold").checksum  # the service's checksum, as stat() saw it
    assert key not in output


def test_archive_backend_down_keeps_the_hot_copy_until_the_next_run(world):
    env, catalog, hot, cold, key = world
    postprocess(env, "cold-down")
    [archive] = catalog.archives(simulation_id="cold-down")
    first = catalog.copy(archive.sha256, "hot")
    cold.stop()
    output = dags_test("storage_retention", {"reference_time": later(2), "backends": ["hot"]}, env, ok=False)
    assert f"kept {first.remote_name}: archive copy to cold failed" in output
    assert "expired copies kept because their archive copy failed" in output
    assert catalog.copy(archive.sha256, "hot").state == "present"
    assert requests.get(first.link, timeout=10).status_code == 200

    cold.start()
    dags_test("storage_retention", {"reference_time": later(2)}, env)
    assert states(catalog, archive.sha256) == {"hot": "deleted", "cold": "archived"}
    assert requests.get(first.link, timeout=10).status_code == 404
